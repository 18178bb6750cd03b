"""The off-the-shelf comparison pipeline: Silero VAD + DNSMOS + level rules (bench and evaluation only).

Runs offline from the wheels' ONNX models with onnxruntime (no torch): ``silero-vad`` carries
``silero_vad/data/silero_vad.onnx``, ``speechmos`` carries DNSMOS ``dnsmos_models/sig_bak_ovr.onnx``.
Decisions (for a fair peer): the same decoder and the same level/duration/clipping rules as ours
(those are plain measurements, not what is compared); speech presence is Silero's (speech
probability >= 0.5 per 32 ms chunk, ``no_speech`` under 0.5 s of speech), noise is DNSMOS's
background score (``noisy`` when BAK < :data:`BAK_NOISY`, chosen on the dev split), DNSMOS over
non-overlapping 9.01 s windows (speechmos hops 1 s, ~9x the cost: the cheaper choice for the peer).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

SR = 16000
CHUNK = 512
CONTEXT = 64
DNSMOS_LEN = int(9.01 * SR)
SPEECH_PROB = 0.5
MIN_SPEECH_S = 0.5
BAK_NOISY = 2.6


@lru_cache(maxsize=1)
def _sessions() -> tuple[object, object]:
    import importlib.util

    import onnxruntime as ort

    def pkg_dir(name: str) -> Path:  # importing silero_vad would import torch: find its folder only
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"{name} is not installed: pip install --no-deps {name}")
        return Path(list(spec.submodule_search_locations)[0])

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    vad = ort.InferenceSession(
        str(pkg_dir("silero_vad") / "data" / "silero_vad.onnx"), so, providers=["CPUExecutionProvider"]
    )
    mos = ort.InferenceSession(
        str(pkg_dir("speechmos") / "dnsmos_models" / "sig_bak_ovr.onnx"),
        so,
        providers=["CPUExecutionProvider"],
    )
    return vad, mos


def vad_speech_seconds(x: np.ndarray) -> float:
    """Seconds of 32 ms chunks Silero calls speech (probability >= 0.5), streamed chunk by chunk."""
    vad, _ = _sessions()
    state = np.zeros((2, 1, 128), np.float32)
    ctx = np.zeros(CONTEXT, np.float32)
    sr = np.array(SR, dtype=np.int64)
    n = 0
    for a in range(0, x.size - CHUNK + 1, CHUNK):
        chunk = x[a : a + CHUNK].astype(np.float32)
        inp = np.concatenate([ctx, chunk])[None, :]
        out, state = vad.run(None, {"input": inp, "state": state, "sr": sr})  # type: ignore[attr-defined]
        ctx = chunk[-CONTEXT:]
        n += float(out[0][0]) >= SPEECH_PROB
    return n * CHUNK / SR


def dnsmos_bak(x: np.ndarray) -> float:
    """Mean DNSMOS background score (BAK, 1-5) over non-overlapping 9.01 s windows (looped if shorter)."""
    _, mos = _sessions()
    if x.size == 0:
        return 0.0
    while x.size < DNSMOS_LEN:
        x = np.concatenate([x, x])
    baks = []
    for a in range(0, x.size - DNSMOS_LEN + 1, DNSMOS_LEN):
        seg = x[a : a + DNSMOS_LEN].astype(np.float32)[None, :]
        sig, bak, ovr = mos.run(None, {"input_1": seg})[0][0]  # type: ignore[attr-defined]
        baks.append(-0.13166888 * bak**2 + 1.60915514 * bak - 0.39604546)  # speechmos's polyfit
    return float(np.mean(baks))


def screen(data: bytes) -> list[str]:
    """Reason codes of the peer pipeline for one file's bytes."""
    from anomaly_cli import errors
    from anomaly_cli.audio.decode import decode_bytes

    try:
        d = decode_bytes(data)
    except errors.DecodeError as e:
        return ["truncated" if e.code == "truncated" else "corrupt"]
    x = np.nan_to_num(d.samples.astype(np.float32))
    codes = ["truncated"] if d.truncated else []
    dur = x.size / SR
    frames = x[: x.size // 400 * 400].reshape(-1, 400) if x.size >= 400 else np.zeros((1, 400), np.float32)
    lv = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    p95 = float(np.percentile(lv, 95))
    if dur < 2.0:
        return codes + ["too_short"]
    if dur > 240.0:
        codes.append("too_long")
    if p95 < -60.0:
        return codes + ["silent"]
    if p95 < -42.0:
        codes.append("low_volume")
    a = np.abs(x) >= 0.995
    if a.mean() > 0.002:
        codes.append("clipped")
    if vad_speech_seconds(x) < MIN_SPEECH_S:
        codes.append("no_speech")
    elif "low_volume" not in codes and "clipped" not in codes and dnsmos_bak(x) < BAK_NOISY:
        codes.append("noisy")
    return codes


if __name__ == "__main__":
    import csv
    import json
    import sys

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = Path(sys.argv[1])
    rows = list(csv.DictReader((root / "manifest.csv").open()))
    out = [
        {
            "file": r["file"],
            "label": r["label"],
            "variant": r["variant"],
            "codes": screen((root / r["file"]).read_bytes()),
        }
        for r in rows
    ]
    json.dump(out, sys.stdout)
