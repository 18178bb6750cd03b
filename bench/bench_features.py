"""Feature extraction speed: ours vs librosa on the same 60 s of 16 kHz audio, one core.

Run: .venv/bin/python bench/bench_features.py [--quick]     (needs the ``bench`` extra: librosa)

Same run, same audio, same core (the process pins itself and BLAS/OpenMP to one thread before
numpy is imported, because the worker runs one item per process):
- ours: ``anomaly_cli.audio.features.extract`` -- all 57 features, a superset of what librosa
  computes below (the comparison is conservative);
- librosa feature by feature as its users write it (each call makes its own STFT): rms, zcr,
  spectral centroid / flatness / rolloff, 13 MFCC, then means and stds;
- librosa sharing one STFT (``S=`` everywhere, mel from the same power spectrum).
Same framing for all: n_fft 512, hop 160. Goals (issue 3): >= 3x faster than librosa feature by
feature, >= 1.5x faster than librosa with a shared STFT, >= 2000x realtime. librosa's cold start
(import + first call, numba JIT) is measured apart in a fresh process and not in the ratios.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_v] = "1"

import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import machine, write_section  # noqa: E402

SR = 16_000
N_FFT, HOP = 512, 160
COLD = (
    "import time; t = time.perf_counter(); import numpy as np, librosa; "
    "librosa.feature.mfcc(y=np.random.default_rng(0).standard_normal(16000).astype('float32'), sr=16000); "
    "librosa.feature.spectral_rolloff(y=np.zeros(16000, 'float32'), sr=16000); print(time.perf_counter() - t)"
)


def _stats(*feats: Any) -> list[float]:
    import numpy as np

    out: list[float] = []
    for f in feats:
        out += list(np.mean(f, axis=-1).ravel()) + list(np.std(f, axis=-1).ravel())
    return out


def librosa_by_feature(y: Any) -> list[float]:
    """What a librosa user writes: one call per feature, each computing its own STFT."""
    import librosa

    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)
    cen = librosa.feature.spectral_centroid(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP)
    flat = librosa.feature.spectral_flatness(y=y, n_fft=N_FFT, hop_length=HOP)
    roll = librosa.feature.spectral_rolloff(y=y, sr=SR, n_fft=N_FFT, hop_length=HOP)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=13, n_fft=N_FFT, hop_length=HOP, n_mels=40)
    return _stats(rms, zcr, cen, flat, roll, mfcc)


def librosa_shared_stft(y: Any) -> list[float]:
    """librosa used carefully: one STFT, every spectral feature from ``S=``."""
    import librosa
    import numpy as np

    S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=400))
    P = S**2
    rms = librosa.feature.rms(S=S, frame_length=N_FFT)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)
    cen = librosa.feature.spectral_centroid(S=S, sr=SR)
    flat = librosa.feature.spectral_flatness(S=S)
    roll = librosa.feature.spectral_rolloff(S=S, sr=SR)
    mel = librosa.feature.melspectrogram(S=P, sr=SR, n_mels=40)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
    return _stats(rms, zcr, cen, flat, roll, mfcc)


def _times(fn: Callable[[Any], Any], y: Any, runs: int) -> tuple[float, float]:
    """(median, best) seconds over ``runs`` calls after a warm-up (numba JIT, caches)."""
    fn(y)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(y)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    import numpy as np

    from anomaly_cli import synth
    from anomaly_cli.audio.features import FEATURE_NAMES, extract

    quick = "--quick" in sys.argv
    runs = 3 if quick else 15
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    cold = float(
        subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True, env={**os.environ})
        .stdout.strip()
        .splitlines()[-1]
    )
    y = synth.make_clip("normal", np.random.default_rng(7), variant="plain", duration_s=60.0).samples
    seconds = y.size / SR
    load_before = os.getloadavg()[0]
    # interleave the three so a burst of load on the shared machine hits them alike
    acc: dict[str, list[tuple[float, float]]] = {"ours": [], "by": [], "shared": []}
    for _ in range(3):
        acc["ours"].append(_times(lambda s: extract(s, SR), y, max(1, runs // 3)))
        acc["by"].append(_times(librosa_by_feature, y, max(1, runs // 3)))
        acc["shared"].append(_times(librosa_shared_stft, y, max(1, runs // 3)))
    (ours, ours_best), (by_feature, by_best), (shared, shared_best) = (
        (statistics.median(m for m, _ in acc[k]), min(b for _, b in acc[k])) for k in ("ours", "by", "shared")
    )
    import librosa

    goals = [("librosa feature by feature", by_feature, 3.0), ("librosa, one shared STFT", shared, 1.5)]
    rt, rt_best = seconds / ours, seconds / ours_best
    rows = [
        f"| ours: `features.extract` ({len(FEATURE_NAMES)} features) | {ours * 1000:.1f} ({ours_best * 1000:.1f}) | "
        f"{rt:.0f}x ({rt_best:.0f}x) | - | realtime >= 2000x: median {'met' if rt >= 2000 else 'NOT met'}, "
        f"best {'met' if rt_best >= 2000 else 'NOT met'} |"
    ]
    for name, t, best, goal in ((goals[0][0], by_feature, by_best, 3.0), (goals[1][0], shared, shared_best, 1.5)):
        ratio = t / ours
        rows.append(
            f"| {name} (rms, zcr, centroid, flatness, rolloff, 13 MFCC) | {t * 1000:.1f} ({best * 1000:.1f}) | "
            f"{seconds / t:.0f}x | {ratio:.2f}x (best/best {best / ours_best:.2f}x) | "
            f">= {goal:g}x: {'met' if ratio >= goal else 'NOT met'} |"
        )
    md = f"""## Feature extraction (ours vs librosa)

Machine: {machine()}; one core (affinity + BLAS/OpenMP/numba threads = 1); librosa {librosa.__version__}.
Command: `.venv/bin/python bench/bench_features.py{" --quick" if quick else ""}` (median of {runs} runs after a
warm-up; 60 s of synthetic 16 kHz reading, n_fft 512, hop 160 for all). Figures are medians, best run in
parentheses; the machine is shared (1-min load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end on
{os.cpu_count()} cores), so absolute times move with other work while the ratios, measured interleaved, hold.

| extractor | ms per 60 s (best) | x realtime (best) | ours faster by | goal |
|---|---:|---:|---:|---|
{chr(10).join(rows)}

librosa cold start (fresh process: import + first calls, numba JIT), not in the figures above:
{cold:.2f} s. Our module imports numpy/scipy only and has no JIT.
"""
    write_section("features", md)


if __name__ == "__main__":
    main()
