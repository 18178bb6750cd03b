#!/usr/bin/env bash
# The package as a user gets it: build the sdist and, from it, the wheel (`python -m build`), check
# the wheel carries the model, install the wheel into a clean venv, and screen recordings from an
# empty temporary folder with nothing of the project in sight (no MODEL_DIR, no .env, no clone).
# Run by `make wheel-check` (and so by .ci/run); pip's cache makes the second run fast.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== $(date +%T) build sdist + wheel (the wheel is built from the sdist, so both must be complete)"
"$PY" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; exit 1; }
ls -l "$WORK"/dist
WHEEL=$(ls "$WORK"/dist/*.whl)
SDIST=$(ls "$WORK"/dist/*.tar.gz)

echo "== $(date +%T) the wheel and the sdist carry the shipped model"
"$PY" - "$WHEEL" "$SDIST" <<'PYEOF'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = set(zipfile.ZipFile(wheel).namelist())
versions = {n.split("/")[2] for n in names if n.startswith("anomaly_cli/models/") and n.endswith("/metadata.json")}
assert versions, f"no model version in {wheel}"
for v in sorted(versions):
    for f in ("metadata.json", "model.npz"):
        assert f"anomaly_cli/models/{v}/{f}" in names, f"{wheel} lacks anomaly_cli/models/{v}/{f}"
assert "anomaly_cli/models/MODEL_CARD.md" in names, "the model card is not in the wheel"
import pathlib
shipped = {p.as_posix() for p in pathlib.Path("anomaly_cli/models").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
assert shipped <= names, f"files of anomaly_cli/models missing from the wheel: {sorted(shipped - names)}"
members = tarfile.open(sdist).getnames()
for v in sorted(versions):
    assert any(m.endswith(f"anomaly_cli/models/{v}/model.npz") for m in members), f"the sdist lacks model {v}"
print(f"model versions in the wheel: {', '.join(sorted(versions))}")
PYEOF

echo "== $(date +%T) install the wheel into a clean venv"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q -c constraints.txt "$WHEEL" >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log"; exit 1; }

echo "== $(date +%T) screen recordings from an empty folder, as a user would"
mkdir "$WORK/somewhere"
cd "$WORK/somewhere"
# a clean environment: no MODEL_DIR, no AWS_*, no PYTHONPATH pointing back at the clone
run() { env -i PATH="$WORK/venv/bin:/usr/bin:/bin" HOME="$WORK" LANG=C.UTF-8 "$@"; }
run python -c "
import numpy as np
from anomaly_cli import synth
from anomaly_cli.audio.formats import encode
for name, label, fmt in (('reading.m4a', 'normal', 'm4a'), ('silent.wav', 'silent', 'wav')):
    clip = synth.make_clip(label, np.random.default_rng(1), variant='plain' if label == 'normal' else None, duration_s=8)
    open(name, 'wb').write(encode(clip.samples, clip.sr, fmt))
"
run anomaly --version
run anomaly score reading.m4a silent.wav
run anomaly score reading.m4a silent.wav --json >"$WORK/score.jsonl"
run python - "$WORK/score.jsonl" "$ROOT" <<'PYEOF'
import json, sys
import anomaly_cli
rows = [json.loads(line) for line in open(sys.argv[1])]
assert [r["status"] for r in rows] == ["ok", "ok"], rows
assert all(r.get("model_version") for r in rows), rows
assert rows[1]["is_anomaly"] and "silent" in [r["code"] for r in rows[1]["reasons"]], rows[1]
assert not anomaly_cli.__file__.startswith(sys.argv[2]), f"imported from the clone: {anomaly_cli.__file__}"
print(f"wheel ok: {len(rows)} recordings screened by model {rows[0]['model_version']} from {anomaly_cli.__file__}")
PYEOF
