"""Quality of ours vs the off-the-shelf peer (Silero VAD + DNSMOS + level rules) on the same files.

Run: .venv/bin/python bench/peer_quality.py SET_DIR [--per-group N]
(SET_DIR: a labelled folder, e.g. the real-voice held-out split from
``python -m anomaly_cli.synth.voices build DIR --split heldout``). Takes the first N files of each
reading style and of each anomaly label (the peer costs seconds per file, so a stratified subset),
screens each with the shipped model and with :mod:`peer`, and prints one markdown table.
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import peer

    from anomaly_cli.model.engine import load_model, screen_bytes
    from anomaly_cli.model.evaluate import Report

    root = Path(sys.argv[1])
    n = int(sys.argv[sys.argv.index("--per-group") + 1]) if "--per-group" in sys.argv else 3
    rows = list(csv.DictReader((root / "manifest.csv").open()))
    picked, seen = [], {}
    for r in rows:
        key = r["variant"] if r["label"] == "normal" else r["label"]
        if seen.get(key, 0) < n:
            seen[key] = seen.get(key, 0) + 1
            picked.append(r)
    model = load_model(None)
    ours, theirs = Report(model.version), Report("silero+dnsmos")
    for r in picked:
        data = (root / r["file"]).read_bytes()
        ours.add(
            r["file"],
            r["label"],
            screen_bytes(data, model).reason_codes,
            r["variant"] if r["label"] == "normal" else "",
        )
        theirs.add(r["file"], r["label"], peer.screen(data), r["variant"] if r["label"] == "normal" else "")
    labels = sorted(k for k in ours.total if k != "normal")
    head = (
        "| pipeline | files | false alarms | worst style | "
        + " | ".join(f"recall {k}" for k in labels)
        + " | first reason right |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, rep in ((f"ours ({model.version})", ours), ("Silero VAD + DNSMOS + level rules", theirs)):
        worst = max(rep.style_false_alarms.items(), key=lambda kv: kv[1], default=("-", 0.0))
        cells = [f"{rep.recall[k]:.2f}" for k in labels]
        print(
            f"| {name} | {sum(rep.total.values())} | {rep.false_alarm_rate:.3f} ({rep.hits.get('normal', 0)}/{rep.total['normal']}) "
            f"| {worst[0]} {worst[1]:.2f} | " + " | ".join(cells) + f" | {rep.reason_accuracy:.3f} |"
        )
    for m in theirs.misses[:30]:
        print("peer miss:", m, file=sys.stderr)
    for m in ours.misses[:30]:
        print("our miss:", m, file=sys.stderr)


if __name__ == "__main__":
    main()
