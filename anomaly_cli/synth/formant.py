"""The built-in voice: a source-filter (formant) synthesiser of reading-like speech, and babble.

Always available, no system package. A glottal source (sawtooth-like pulse train, child pitch 180-320 Hz
with jitter, shimmer and a slow intonation contour, plus aspiration noise) goes through a cascade of
formant resonators set per vowel; consonants are noise bursts (fricatives) or closures + bursts
(plosives). Syllables come at 2-6 Hz, grouped in words separated by short pauses, with occasional long
hesitations.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from anomaly_cli.synth.signals import SR, resonator, rms

# Adult vowel formants (F1, F2, F3); children's are scaled up by 1.15-1.35.
_VOWELS = np.array(
    [
        (730, 1090, 2440),
        (270, 2290, 3010),
        (300, 870, 2240),
        (530, 1840, 2480),
        (570, 840, 2410),
        (660, 1720, 2410),
        (440, 1020, 2240),
    ],
    dtype=float,
)


def formant_speech(
    rng: np.random.Generator,
    duration_s: float,
    sr: int = SR,
    *,
    child: bool = True,
    hesitations: float = 0.1,
    lead_s: float | None = None,
    base_f0: float | None = None,
) -> np.ndarray:
    """Reading-like speech: words of 1-4 syllables at 2-6 syllables/s, pauses, hesitations.

    ``hesitations`` is the chance that a pause between words is a long (1-3.5 s) hesitation.
    Output has unit-ish peak; set its level with :func:`set_level`.
    """
    n = int(duration_s * sr)
    out = np.zeros(n)
    base_f0 = base_f0 or (rng.uniform(180, 320) if child else rng.uniform(90, 220))
    scale = rng.uniform(1.15, 1.35) if child else rng.uniform(0.9, 1.1)
    rate = rng.uniform(2.0, 6.0)
    t = rng.uniform(0.05, 0.4) if lead_s is None else lead_s
    while t < duration_s - 0.25:
        f0_word = base_f0 * rng.uniform(0.85, 1.15)
        for _ in range(int(rng.integers(1, 5))):
            syl = rng.uniform(0.75, 1.25) / rate
            i = int(t * sr)
            # consonant onset
            kind = rng.random()
            if kind < 0.35:  # fricative
                m = int(rng.uniform(0.04, 0.11) * sr)
                b, a = signal.butter(2, min(0.95, rng.uniform(2500, 5500) / (sr / 2)), "high")
                fr = signal.lfilter(b, a, rng.standard_normal(m)) * rng.uniform(0.05, 0.25)
                fr *= np.hanning(m)
                out[i : i + m] += fr[: max(0, min(m, n - i))]
                i += m
            elif kind < 0.65:  # plosive: closure then burst
                i += int(rng.uniform(0.02, 0.05) * sr)
                m = int(rng.uniform(0.008, 0.02) * sr)
                burst = rng.standard_normal(m) * np.exp(-np.arange(m) / (0.3 * m)) * rng.uniform(0.1, 0.4)
                out[i : i + m] += burst[: max(0, min(m, n - i))]
                i += m
            consumed = (i - int(t * sr)) / sr
            vlen = min(int(max(0.05, syl - consumed) * rng.uniform(0.75, 0.95) * sr), n - i)
            if vlen < int(0.02 * sr):
                break
            tt = np.arange(vlen) / sr
            f0 = f0_word * (1 + 0.06 * np.sin(2 * np.pi * rng.uniform(1, 3) * tt + rng.uniform(0, 6)))
            f0 *= 1 + 0.01 * np.convolve(rng.standard_normal(vlen), np.ones(200) / 200**0.5, "same") / 2
            ph = np.cumsum(f0 / sr)
            src = 2 * (ph % 1.0) - 1.0
            src += 0.05 * rng.standard_normal(vlen)
            src *= 1 + 0.05 * rng.standard_normal(vlen).cumsum() / np.sqrt(np.arange(1, vlen + 1))
            v = _VOWELS[rng.integers(len(_VOWELS))] * scale * rng.uniform(0.95, 1.05, size=3)
            y = src
            for f, bw in zip(list(v) + [4000.0 * scale], (80, 100, 140, 250)):
                if f < sr / 2 - 200:
                    bb, aa = resonator(f, bw, sr)
                    y = signal.lfilter(bb, aa, y)
            env = np.ones(vlen)
            att, rel = min(int(0.02 * sr), vlen // 2), min(int(0.05 * sr), vlen // 2)
            env[:att] = np.linspace(0, 1, att)
            env[vlen - rel :] *= np.linspace(1, 0, rel)
            out[i : i + vlen] += y * env * rng.uniform(0.6, 1.0) / max(np.max(np.abs(y)), 1e-9)
            t += syl
        f0_word *= 0.97
        t += rng.uniform(1.0, 3.5) if rng.random() < hesitations else rng.uniform(0.08, 0.45)
    peak = np.max(np.abs(out))
    return (out / peak if peak > 0 else out).astype(np.float32)


def babble(rng: np.random.Generator, n: int, sr: int, voices: int | None = None) -> np.ndarray:
    """Other children and adults talking at once (4-8 voices), unit RMS."""
    k = int(voices or rng.integers(4, 9))
    dur = n / sr
    voices_ = (np.resize(formant_speech(rng, dur, sr, child=rng.random() < 0.6, hesitations=0.0), n) for _ in range(k))
    y = sum(voices_, start=np.zeros(n, dtype=np.float32))
    return (y / max(rms(y), 1e-12)).astype(np.float32)


def paced_reading(rng: np.random.Generator, duration_s: float, sr: int = SR, *, style: str = "syllable") -> np.ndarray:
    """A beginner's reading: isolated units with pauses, ``duration_s`` long, unit-ish peak.

    ``letter``: one syllable at a time, 0.4-1 units a second, pauses 0.5-2 s; ``syllable``: 1-3
    syllables sounded out together, then a 0.3-2 s pause (0.5-1.5 units a second); ``word``: one
    word of 1-3 syllables, then a 0.3-1.5 s pause. Each unit is one child's voice (same pitch range).
    """
    n = int(duration_s * sr)
    out = np.zeros(n, np.float32)
    t = float(rng.uniform(0.2, 1.5))
    f0 = float(rng.uniform(180, 320))
    while t < duration_s - 0.3:
        if style == "letter":
            unit, pause = rng.uniform(0.2, 0.5), rng.uniform(0.5, 2.0)
        elif style == "word":
            unit, pause = rng.uniform(0.4, 1.0), rng.uniform(0.3, 1.5)
        else:
            unit, pause = rng.uniform(0.2, 0.7), rng.uniform(0.3, 2.0)
        u = formant_speech(rng, float(unit) + 0.1, sr, lead_s=0.02, hesitations=0.0, base_f0=f0)
        i = int(t * sr)
        m = min(u.size, n - i)
        if m <= 0:
            break
        out[i : i + m] += u[:m] * np.float32(rng.uniform(0.7, 1.0))
        t += u.size / sr + float(pause)
    peak = float(np.max(np.abs(out)))
    return out / peak if peak > 0 else out
