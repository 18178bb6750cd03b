"""Signals of the generator: levels and mixing, noises and other non-speech sounds, a phone's colouring.

Levels are set on the 95th percentile of 32 ms frame RMS (the "active speech level" in dBFS), which is
also what the ``silent`` / ``low_volume`` rules measure, so labels and rules talk about the same quantity.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

#: The generator's own rate (the analysis rate of the pipeline).
SR = 16_000


# --- levels --------------------------------------------------------------------------------------
def frame_level_db(x: np.ndarray, sr: int, pct: float = 95.0) -> float:
    """The ``pct`` percentile of 32 ms frame RMS in dBFS (-120 for digital silence)."""
    n = max(1, int(0.032 * sr))
    k = len(x) // n
    if k == 0:
        rms = np.sqrt(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
        return float(20 * np.log10(max(rms, 1e-6)))
    fr = np.asarray(x[: k * n], dtype=np.float64).reshape(k, n)
    rms = np.sqrt(np.mean(fr * fr, axis=1))
    return float(20 * np.log10(max(np.percentile(rms, pct), 1e-6)))


def set_level(x: np.ndarray, sr: int, dbfs: float) -> np.ndarray:
    """Scale ``x`` so its active level (p95 frame RMS) is ``dbfs``."""
    cur = frame_level_db(x, sr)
    if cur <= -119:
        return x
    return (x * 10 ** ((dbfs - cur) / 20)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, sr: int = SR) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so the speech-to-noise power ratio is ``snr_db``.

    Both powers are measured in the speech band (300-3400 Hz), as a listener would judge
    intelligibility: rumble below 300 Hz (brown noise, traffic) masks little speech. Speech power
    is taken over its active frames (above -30 dB of its loudest), so pauses do not count.
    """
    sos = signal.butter(4, [300 / (sr / 2), 3400 / (sr / 2)], "band", output="sos")
    noise = np.resize(noise, len(speech))  # generators round durations differently
    sb, nb = signal.sosfilt(sos, speech), signal.sosfilt(sos, noise)
    n = 512
    k = len(sb) // n
    fr = sb[: k * n].reshape(k, n) if k else sb[None, :]
    e = np.mean(fr.astype(np.float64) ** 2, axis=1)
    active = e[e > e.max() * 1e-3] if e.size and e.max() > 0 else e
    ps = float(np.mean(active)) if active.size else 0.0
    pn = rms(nb) ** 2
    if pn <= 0 or ps <= 0:
        return speech + noise
    return (speech + noise * np.sqrt(ps / pn / 10 ** (snr_db / 10))).astype(np.float32)


# --- noises --------------------------------------------------------------------------------------
def coloured_noise(rng: np.random.Generator, n: int, colour: str = "white") -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise of unit RMS."""
    w = rng.standard_normal(n)
    if colour == "white":
        y = w
    else:
        spec = np.fft.rfft(w)
        f = np.arange(len(spec), dtype=float)
        f[0] = 1.0
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        spec[0] = 0.0
        y = np.fft.irfft(spec, n)
    return (y / max(rms(y), 1e-12)).astype(np.float32)


def hum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Mains hum: 50 Hz (or 60) with decaying harmonics and a little noise."""
    t = np.arange(n) / sr
    f0 = 50.0 if rng.random() < 0.8 else 60.0
    y = sum((0.7**k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 6.28)) for k in range(8))
    return (y + 0.01 * rng.standard_normal(n)).astype(np.float32)


def tone(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A steady pure tone or a dual tone (test signal, dial tone)."""
    t = np.arange(n) / sr
    f = rng.uniform(300, 2000)
    y = np.sin(2 * np.pi * f * t)
    if rng.random() < 0.5:
        y = y + np.sin(2 * np.pi * rng.uniform(300, 2000) * t)
    return y.astype(np.float32)


def music(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Music with a beat: kick and hi-hat at 80-140 BPM under chords that change every bar."""
    t = np.arange(n) / sr
    beat = 60.0 / rng.uniform(80, 140)
    y = np.zeros(n)
    root = rng.uniform(110, 220)
    notes = np.array([1.0, 1.26, 1.5, 2.0])
    bar = 4 * beat
    for b0 in np.arange(0, n / sr, bar):
        i0, i1 = int(b0 * sr), min(n, int((b0 + bar) * sr))
        shift = 2 ** (rng.integers(-5, 7) / 12)
        tt = t[i0:i1]
        y[i0:i1] += 0.2 * sum(np.sin(2 * np.pi * root * shift * m * tt) for m in notes)
        mel = root * 2 * 2 ** (rng.integers(0, 12, size=8) / 12)
        seg = np.array_split(np.arange(i0, i1), 8)
        for f, idx in zip(mel, seg):
            if len(idx):
                y[idx] += 0.3 * np.sin(2 * np.pi * f * t[idx]) * np.hanning(len(idx))
    kick_len = int(0.12 * sr)
    kt = np.arange(kick_len) / sr
    kick = np.sin(2 * np.pi * (60 + 80 * np.exp(-kt * 30)) * kt) * np.exp(-kt * 25)
    hat = rng.standard_normal(int(0.03 * sr)) * np.exp(-np.arange(int(0.03 * sr)) / (0.005 * sr))
    for b in np.arange(0, n / sr, beat / 2):
        i = int(b * sr)
        src = kick if int(round(b / (beat / 2))) % 2 == 0 else 0.3 * hat
        m = min(len(src), n - i)
        y[i : i + m] += src[:m]
    return y.astype(np.float32)


def chime(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Notification chimes: 2-3 decaying bell notes, repeated every 0.5-2 s, silence between."""
    y = np.zeros(n)
    period = rng.uniform(0.5, 2.0)
    nl = int(0.4 * sr)
    tt = np.arange(nl) / sr
    freqs = rng.uniform(600, 2400, size=rng.integers(2, 4))
    pattern = np.zeros(int(len(freqs) * 0.12 * sr) + nl)
    for j, f in enumerate(freqs):
        note = (np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(2 * np.pi * 2.76 * f * tt)) * np.exp(-tt * 9)
        i = int(j * 0.12 * sr)
        pattern[i : i + nl] += note
    for s in np.arange(0, n / sr, period):
        i = int(s * sr)
        m = min(len(pattern), n - i)
        y[i : i + m] += pattern[:m]
    return y.astype(np.float32)


# --- colouring -----------------------------------------------------------------------------------
def resonator(f: float, bw: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.exp(-np.pi * bw / sr)
    a = np.array([1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r])
    return np.array([1.0 - r]), a


def mic_colour(rng: np.random.Generator, x: np.ndarray, sr: int, strong: bool = False) -> np.ndarray:
    """A phone microphone: high-pass 60-300 Hz, a presence peak, a low-pass 4.5-7.5 kHz."""
    b, a = signal.butter(2, rng.uniform(60, 300 if strong else 150) / (sr / 2), "high")
    y = signal.lfilter(b, a, x)
    lp = rng.uniform(4500, 7500)
    if lp < sr / 2 - 100:
        b, a = signal.butter(2, lp / (sr / 2), "low")
        y = signal.lfilter(b, a, y)
    bb, aa = resonator(rng.uniform(1500, 4000), rng.uniform(500, 1500), sr)
    y = y + rng.uniform(0.0, 1.5 if strong else 0.6) * signal.lfilter(bb, aa, y) * 10
    return y.astype(np.float32)


def bumps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Handling noise: a few low-frequency thumps (phone picked up, table knocked)."""
    y = np.zeros(n)
    for _ in range(int(rng.integers(2, 6))):
        i = int(rng.integers(0, max(1, n - sr // 4)))
        m = int(rng.uniform(0.03, 0.15) * sr)
        tt = np.arange(m) / sr
        y[i : i + m] += np.sin(2 * np.pi * rng.uniform(30, 120) * tt) * np.exp(-tt * rng.uniform(20, 60))
    return y.astype(np.float32)
