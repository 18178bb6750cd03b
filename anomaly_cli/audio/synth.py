"""A deterministic generator of reading-like speech and of every anomaly kind.

No real recordings of children reading can be had here, so training, tests, benchmarks and the
demo use this generator. Everything is driven by a seeded ``numpy.random.Generator``: the same
seed gives the same samples and the same files.

Speech sources:
- ``formant`` (always available, no system package): a source-filter synthesiser. A glottal
  source (sawtooth-like pulse train, child pitch 180-320 Hz with jitter, shimmer and a slow
  intonation contour, plus aspiration noise) goes through a cascade of formant resonators set
  per vowel; consonants are noise bursts (fricatives) or closures + bursts (plosives). Syllables
  come at 2-6 Hz, grouped in words separated by short pauses, with occasional long hesitations.
- ``espeak``: Marathi text spoken by ``espeak-ng -v mr`` (a different synthesis), if installed.
- ``alsa``: real human speech from ``/usr/share/sounds/alsa/*.wav`` (alsa-utils), if present,
  words concatenated with pauses into a reading-length recording.

Levels are set on the 95th percentile of 32 ms frame RMS (the "active speech level" in dBFS),
which is also what the ``silent`` / ``low_volume`` rules measure, so labels and rules talk about
the same quantity. Decision: normal speech sits at -32..-10 dBFS, quiet-but-audible children at
-38..-32, ``low_volume`` at -55..-45 and ``silent`` below -65, leaving gaps around the rule
thresholds (-60 and -42) so labels are unambiguous.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import signal

SR = 16_000
#: Labels of the generator; ``normal`` plus one per per-recording anomaly reason code.
LABELS: tuple[str, ...] = (
    "normal",
    "silent",
    "low_volume",
    "no_speech",
    "noisy",
    "clipped",
    "dc_offset",
    "too_short",
    "too_long",
    "truncated",
    "corrupt",
)
#: Variants of each label (hard-but-fine normals, anomalies that fool simple rules).
VARIANTS: dict[str, tuple[str, ...]] = {
    "normal": ("plain", "quiet", "babble", "classroom", "hesitation", "late_start", "bumps", "telephone", "mic"),
    "silent": ("zero", "hiss"),
    "low_volume": ("far",),
    "no_speech": ("white", "pink", "brown", "hum", "tone", "music", "chime"),
    "noisy": ("white", "pink", "babble"),
    "clipped": ("hard", "lossy"),
    "dc_offset": ("offset",),
    "too_short": ("short",),
    "too_long": ("long",),
    "truncated": ("cut",),
    "corrupt": ("random", "html", "empty", "header"),
}
DEFAULT_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3", "m4a", "3gp", "webm", "opus")
#: Relative frequency of each label in :func:`make_dataset` (normals are half the set).
WEIGHTS: dict[str, float] = {
    "normal": 10.0,
    "silent": 1.0,
    "low_volume": 1.0,
    "no_speech": 1.6,
    "noisy": 1.0,
    "clipped": 1.0,
    "dc_offset": 0.6,
    "too_short": 0.8,
    "too_long": 0.25,
    "truncated": 0.8,
    "corrupt": 0.8,
}
ALSA_DIR = Path("/usr/share/sounds/alsa")
MARATHI_LINES = (
    "एक होता राजा. त्याला तीन मुले होती.",
    "आज शाळेत आम्ही नवीन गाणे शिकलो.",
    "माझे नाव राम आहे. मी तिसरीत शिकतो.",
    "पाऊस पडला आणि सगळी झाडे हिरवी झाली.",
    "आई बाजारात गेली आणि तिने भाजी आणली.",
    "आमच्या गावात एक मोठी नदी आहे.",
    "ससा आणि कासव यांची शर्यत लागली.",
    "मला आंबा खूप आवडतो.",
    "शिक्षक वर्गात गोष्ट सांगत होते.",
    "सकाळी लवकर उठून मी शाळेत जातो.",
)

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


@dataclass(frozen=True)
class Clip:
    """Generated samples before encoding."""

    samples: np.ndarray  # float32 mono
    sr: int
    label: str
    variant: str


@dataclass(frozen=True)
class Item:
    """One generated recording as file bytes."""

    data: bytes
    fmt: str
    label: str
    variant: str
    source: str = "formant"


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


def _rms(x: np.ndarray) -> float:
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
    pn = _rms(nb) ** 2
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
    return (y / max(_rms(y), 1e-12)).astype(np.float32)


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


# --- speech --------------------------------------------------------------------------------------
def _resonator(f: float, bw: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.exp(-np.pi * bw / sr)
    a = np.array([1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r])
    return np.array([1.0 - r]), a


def formant_speech(
    rng: np.random.Generator,
    duration_s: float,
    sr: int = SR,
    *,
    child: bool = True,
    hesitations: float = 0.1,
    lead_s: float | None = None,
) -> np.ndarray:
    """Reading-like speech: words of 1-4 syllables at 2-6 syllables/s, pauses, hesitations.

    ``hesitations`` is the chance that a pause between words is a long (1-3.5 s) hesitation.
    Output has unit-ish peak; set its level with :func:`set_level`.
    """
    n = int(duration_s * sr)
    out = np.zeros(n)
    base_f0 = rng.uniform(180, 320) if child else rng.uniform(90, 220)
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
                    bb, aa = _resonator(f, bw, sr)
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
    y = sum(np.resize(formant_speech(rng, dur, sr, child=rng.random() < 0.6, hesitations=0.0), n) for _ in range(k))
    return (y / max(_rms(y), 1e-12)).astype(np.float32)


def espeak_available() -> bool:
    """True when ``espeak-ng`` is on PATH (optional)."""
    return shutil.which("espeak-ng") is not None


def espeak_speech(rng: np.random.Generator, duration_s: float, sr: int = SR) -> np.ndarray:
    """Marathi sentences by espeak-ng (``-v mr`` voices) joined with pauses, resampled to ``sr``."""
    import soundfile as sf

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed")
    parts: list[np.ndarray] = []
    total = 0.0
    voice = str(rng.choice(["mr", "mr+f3", "mr+f4", "mr+m3", "mr+f2"]))
    speed = int(rng.integers(110, 160))
    pitch = int(rng.integers(50, 90))
    while total < duration_s:
        text = str(rng.choice(MARATHI_LINES))
        wav = subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        x, rate = sf.read(io.BytesIO(wav), dtype="float32")
        x = _resample(x if x.ndim == 1 else x.mean(axis=1), rate, sr)
        pause = np.zeros(int(rng.uniform(0.2, 0.9) * sr), dtype=np.float32)
        parts += [x, pause]
        total += (len(x) + len(pause)) / sr
    y = np.concatenate(parts)[: int(duration_s * sr)]
    return (y / max(np.max(np.abs(y)), 1e-9)).astype(np.float32)


def alsa_files() -> list[Path]:
    """Real human speech shipped by alsa-utils, if present."""
    # Noise.wav is the speaker-test pink noise, not speech.
    return sorted(p for p in ALSA_DIR.glob("*.wav") if p.stem != "Noise") if ALSA_DIR.is_dir() else []


def alsa_speech(rng: np.random.Generator, duration_s: float, sr: int = SR) -> np.ndarray:
    """Real words from ``/usr/share/sounds/alsa`` in random order with reading-like pauses."""
    import soundfile as sf

    files = alsa_files()
    if not files:
        raise RuntimeError(f"no wav files in {ALSA_DIR}")
    parts: list[np.ndarray] = []
    total = 0.0
    while total < duration_s:
        x, rate = sf.read(str(files[int(rng.integers(len(files)))]), dtype="float32")
        x = _resample(x if x.ndim == 1 else x.mean(axis=1), rate, sr) * rng.uniform(0.5, 1.0)
        pause = np.zeros(int(rng.uniform(0.15, 0.8) * sr), dtype=np.float32)
        parts += [x, pause]
        total += (len(x) + len(pause)) / sr
    y = np.concatenate(parts)[: int(duration_s * sr)]
    return (y / max(np.max(np.abs(y)), 1e-9)).astype(np.float32)


def speech(
    rng: np.random.Generator, duration_s: float, sr: int = SR, *, source: str = "formant", hesitations: float = 0.1
) -> np.ndarray:
    """Speech from one of the sources (``formant``, ``espeak``, ``alsa``)."""
    if source == "espeak":
        return espeak_speech(rng, duration_s, sr)
    if source == "alsa":
        return alsa_speech(rng, duration_s, sr)
    return formant_speech(rng, duration_s, sr, hesitations=hesitations)


def _resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return x.astype(np.float32)
    from fractions import Fraction

    fr = Fraction(target, rate)
    return signal.resample_poly(x, fr.numerator, fr.denominator).astype(np.float32)


def _mic_colour(rng: np.random.Generator, x: np.ndarray, sr: int, strong: bool = False) -> np.ndarray:
    """A phone microphone: high-pass 60-300 Hz, a presence peak, a low-pass 4.5-7.5 kHz."""
    b, a = signal.butter(2, rng.uniform(60, 300 if strong else 150) / (sr / 2), "high")
    y = signal.lfilter(b, a, x)
    lp = rng.uniform(4500, 7500)
    if lp < sr / 2 - 100:
        b, a = signal.butter(2, lp / (sr / 2), "low")
        y = signal.lfilter(b, a, y)
    bb, aa = _resonator(rng.uniform(1500, 4000), rng.uniform(500, 1500), sr)
    y = y + rng.uniform(0.0, 1.5 if strong else 0.6) * signal.lfilter(bb, aa, y) * 10
    return y.astype(np.float32)


def _bumps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Handling noise: a few low-frequency thumps (phone picked up, table knocked)."""
    y = np.zeros(n)
    for _ in range(int(rng.integers(2, 6))):
        i = int(rng.integers(0, max(1, n - sr // 4)))
        m = int(rng.uniform(0.03, 0.15) * sr)
        tt = np.arange(m) / sr
        y[i : i + m] += np.sin(2 * np.pi * rng.uniform(30, 120) * tt) * np.exp(-tt * rng.uniform(20, 60))
    return y.astype(np.float32)


# --- clips ---------------------------------------------------------------------------------------
def make_clip(
    label: str,
    rng: np.random.Generator,
    *,
    variant: str | None = None,
    source: str = "formant",
    duration_s: float | None = None,
) -> Clip:
    """Generate the samples of one recording of ``label`` (and ``variant``, random if None).

    File-level kinds (``truncated``, ``corrupt``) return the underlying (normal) samples; their
    damage is applied when encoding, see :func:`make_item`.
    """
    if label not in VARIANTS:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(LABELS)}")
    variant = variant or str(rng.choice(VARIANTS[label]))
    sr = SR
    dur = duration_s or float(rng.uniform(6, 30))
    hiss_db = rng.uniform(-72, -58)

    def sp(d: float = dur, hes: float = 0.1) -> np.ndarray:
        return _mic_colour(rng, speech(rng, d, sr, source=source, hesitations=hes), sr)

    def floor(n: int) -> np.ndarray:
        return coloured_noise(rng, n, str(rng.choice(["white", "pink"]))) * 10 ** (hiss_db / 20)

    n = int(dur * sr)
    if label in ("normal", "truncated", "corrupt"):
        level = rng.uniform(-32, -10)
        if variant == "quiet":
            x = set_level(sp(), sr, rng.uniform(-38, -32))
        elif variant in ("babble", "classroom"):
            s = sp()
            noise = babble(rng, len(s), sr)
            if variant == "classroom":
                noise = noise + 0.5 * coloured_noise(rng, len(s), "pink") + _bumps(rng, len(s), sr)
            x = set_level(mix_at_snr(s, noise, rng.uniform(10, 20)), sr, level)
        elif variant == "hesitation":
            x = set_level(sp(hes=0.35), sr, level)
        elif variant == "late_start":
            lead = rng.uniform(2, 5)
            s = sp(dur - lead)
            x = set_level(np.concatenate([np.zeros(int(lead * sr), np.float32), s]), sr, level)
            x = x + 0.3 * babble(rng, len(x), sr, voices=6) * 10 ** ((level - 25) / 20)
        elif variant == "bumps":
            s = set_level(sp(), sr, level)
            x = s + _bumps(rng, len(s), sr) * 10 ** ((level + rng.uniform(0, 6)) / 20)
        elif variant == "telephone":
            s = sp()
            b, a = signal.butter(4, [300 / (sr / 2), 3400 / (sr / 2)], "band")
            x8 = _resample(signal.lfilter(b, a, s), sr, 8000)
            x8 = set_level(x8, 8000, level)
            x8 = x8 + floor(len(x8))
            return Clip(np.clip(x8, -1, 1).astype(np.float32), 8000, label, variant)
        elif variant == "mic":
            x = set_level(_mic_colour(rng, speech(rng, dur, sr, source=source), sr, strong=True), sr, level)
        else:
            x = set_level(sp(), sr, level)
        x = x + floor(len(x))
    elif label == "silent":
        x = np.zeros(n, np.float32) if variant == "zero" else floor(n) * 10 ** (rng.uniform(-25, -5) / 20)
        if variant == "hiss" and rng.random() < 0.5:  # a click or two from the recorder starting
            x[int(rng.integers(0, n))] += rng.uniform(0.0005, 0.002)
    elif label == "low_volume":
        x = set_level(sp(), sr, rng.uniform(-55, -45)) + floor(n) * 10 ** (-10 / 20)
    elif label == "no_speech":
        gen = {
            "white": lambda: coloured_noise(rng, n, "white"),
            "pink": lambda: coloured_noise(rng, n, "pink"),
            "brown": lambda: coloured_noise(rng, n, "brown"),
            "hum": lambda: hum(rng, n, sr),
            "tone": lambda: tone(rng, n, sr),
            "music": lambda: music(rng, n, sr),
            "chime": lambda: chime(rng, n, sr),
        }[variant]
        x = set_level(gen(), sr, rng.uniform(-30, -12)) + floor(n)
    elif label == "noisy":
        s = sp()
        noise = babble(rng, len(s), sr, voices=8) if variant == "babble" else coloured_noise(rng, len(s), variant)
        x = set_level(mix_at_snr(s, noise, rng.uniform(-6, 0)), sr, rng.uniform(-30, -12))
    elif label == "clipped":
        s = set_level(sp(), sr, rng.uniform(-20, -10))
        gain = 1.0 / max(np.percentile(np.abs(s), rng.uniform(90, 98)), 1e-6)
        x = np.clip(s * gain, -1.0, 1.0)
    elif label == "dc_offset":
        x = set_level(sp(), sr, rng.uniform(-30, -14)) + floor(n)
        x = x + rng.choice([-1, 1]) * rng.uniform(0.05, 0.25)
    elif label == "too_short":
        d = rng.uniform(0.3, 1.7)
        x = set_level(sp(d), sr, rng.uniform(-30, -12)) + floor(int(d * sr))
    else:  # too_long
        d = duration_s or rng.uniform(250, 290)
        x = set_level(formant_speech(rng, d, sr, hesitations=0.1), sr, rng.uniform(-30, -12))
    return Clip(np.clip(x, -1.0, 1.0).astype(np.float32), sr, label, variant)


def _html_page(rng: np.random.Generator) -> bytes:
    code = int(rng.choice([403, 404, 500, 502]))
    return (
        f"<!DOCTYPE html><html><head><title>{code} Error</title></head><body><h1>{code}</h1>"
        f"<p>The requested audio could not be served.</p><!-- {rng.integers(1 << 30)} --></body></html>"
    ).encode()


def make_item(
    label: str, rng: np.random.Generator, *, fmt: str = "wav", variant: str | None = None, source: str = "formant"
) -> Item:
    """One recording of ``label`` encoded as ``fmt`` (some kinds force a suitable format).

    Forced formats (decisions): ``dc_offset`` is lossless (lossy codecs strip DC); ``clipped``
    ``lossy`` is MP3 or m4a (clipping after re-encoding); ``truncated`` is WAV, FLAC or MP3, where
    the file itself says it was cut; ``telephone`` normals are 3gp (AMR) or WAV at 8 kHz.
    """
    from anomaly_cli.audio.formats import encode

    variant = variant or str(rng.choice(VARIANTS[label]))
    if label == "corrupt":
        if variant == "empty":
            return Item(b"", fmt, label, variant, source)
        if variant == "html":
            return Item(_html_page(rng), fmt, label, variant, source)
        if variant == "random":
            return Item(rng.bytes(int(rng.integers(100, 50_000))), fmt, label, variant, source)
        # a container's magic bytes followed by junk (a damaged upload that still sniffs as audio).
        # FLAC and MP4 magics are left out: junk after them reads as a box or block that runs past
        # the end, which the decoder rightly calls truncated.
        magic = [
            b"RIFF" + rng.bytes(4) + b"WAVEfmt ",
            b"OggS\x00\x02",
            b"ID3\x03\x00\x00\x00\x00\x00\x10",
            b"RIFF" + rng.bytes(4) + b"WAVEfmt ",
            b"OggS\x00\x02",
        ][int(rng.integers(5))]
        return Item(magic + rng.bytes(int(rng.integers(200, 20000))), fmt, label, variant, source)
    clip = make_clip(
        "normal" if label == "truncated" else label,
        rng,
        variant="plain" if label == "truncated" else variant,
        source=source,
    )
    if label == "dc_offset":
        fmt = str(rng.choice(["wav", "flac"]))
    elif label == "clipped" and variant == "lossy":
        fmt = str(rng.choice(["mp3", "m4a"]))
    elif label == "truncated":
        fmt = str(rng.choice(["wav", "flac", "mp3"]))
    elif label == "normal" and variant == "telephone":
        fmt = str(rng.choice(["3gp", "wav"]))
    elif label == "too_long" and fmt in ("wav", "flac"):
        fmt = "ogg"  # keep the files small
    data = encode(clip.samples, clip.sr, fmt)
    if label == "truncated":
        data = data[: int(len(data) * rng.uniform(0.3, 0.8))]
    return Item(data, fmt, label, variant, source)


def _labels_for(n: int, rng: np.random.Generator, kinds: Sequence[str]) -> list[str]:
    w = np.array([WEIGHTS[k] for k in kinds], dtype=float)
    counts = np.floor(w / w.sum() * n).astype(int)
    if n >= len(kinds):  # every kind present when n allows
        counts = np.maximum(counts, 1)
    counts[np.argmax(w)] += n - counts.sum()
    labels = [k for k, c in zip(kinds, counts) for _ in range(c)]
    rng.shuffle(labels)
    return labels


def make_dataset(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    *,
    formats: Iterable[str] = DEFAULT_FORMATS,
    kinds: Iterable[str] | None = None,
    source: str = "formant",
    duplicates: int = 0,
) -> Path:
    """Write ``n`` labelled recordings (+ ``duplicates`` re-encoded copies) and ``manifest.csv``.

    The manifest has columns ``file,label,variant,format,source,duplicate_of``; ``duplicate_of``
    names the original of a re-encoded copy (the copy's own label is that of the original:
    duplication is a property of a pair, found across recordings by the worker). Returns the
    manifest path. Same arguments, same files, byte for byte, except OGG/Opus containers: libsndfile
    gives each OGG stream a random serial number, so only their audio is identical.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    fmts = list(formats)
    kinds = list(kinds or LABELS)
    rows: list[dict[str, str]] = []
    for i, label in enumerate(_labels_for(n, rng, kinds)):
        fmt = str(rng.choice(fmts))
        item = make_item(label, rng, fmt=fmt, source=source)
        name = f"{i:05d}_{label}_{item.variant}.{item.fmt}"
        (out / name).write_bytes(item.data)
        rows.append(
            {
                "file": name,
                "label": label,
                "variant": item.variant,
                "format": item.fmt,
                "source": source,
                "duplicate_of": "",
            }
        )
    originals = [r for r in rows if r["label"] == "normal"]
    for j in range(min(duplicates, len(originals))):
        from anomaly_cli.audio.formats import encode

        orig = originals[j]
        import soundfile as sf  # originals of duplicates are re-read, so copies are true re-encodes

        try:
            x, rate = sf.read(str(out / orig["file"]), dtype="float32")
        except Exception:  # noqa: BLE001 - formats libsndfile cannot read (m4a, 3gp, webm): skip
            continue
        x = x if x.ndim == 1 else x.mean(axis=1)
        fmt = "mp3" if orig["format"] != "mp3" else "m4a"
        name = f"dup{j:04d}_of_{Path(orig['file']).stem}.{fmt}"
        (out / name).write_bytes(encode(x * rng.uniform(0.6, 1.0), rate, fmt))
        rows.append({**orig, "file": name, "format": fmt, "duplicate_of": orig["file"]})
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["file", "label", "variant", "format", "source", "duplicate_of"])
        w.writeheader()
        w.writerows(rows)
    return manifest
