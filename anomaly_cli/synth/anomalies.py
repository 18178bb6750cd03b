"""Anomaly makers: the samples of one recording of a label (:func:`make_clip`), and its file bytes
(:func:`make_item`), damaged files included.

Decision: normal speech sits at -32..-10 dBFS, quiet-but-audible children at -38..-32, ``low_volume``
at -55..-45 and ``silent`` below -65, leaving gaps around the rule thresholds (-60 and -42) so labels
are unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from anomaly_cli.audio.resample import resample
from anomaly_cli.synth.formant import babble, formant_speech, paced_reading
from anomaly_cli.synth.signals import (
    SR,
    bumps,
    chime,
    coloured_noise,
    hum,
    mic_colour,
    mix_at_snr,
    music,
    set_level,
    tone,
)
from anomaly_cli.synth.sources import speech

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
    "normal": (
        "plain",
        "quiet",
        "babble",
        "classroom",
        "hesitation",
        "late_start",
        "bumps",
        "telephone",
        "mic",
        # reading styles of beginners: first-class normals (see formant.paced_reading)
        "letter",
        "syllable",
        "word",
        "stops_early",
        "teacher_prompt",
    ),
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
        return mic_colour(rng, speech(rng, d, sr, source=source, hesitations=hes), sr)

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
                noise = noise + 0.5 * coloured_noise(rng, len(s), "pink") + bumps(rng, len(s), sr)
            x = set_level(mix_at_snr(s, noise, rng.uniform(10, 20)), sr, level)
        elif variant == "hesitation":
            x = set_level(sp(hes=0.35), sr, level)
        elif variant in ("letter", "syllable", "word"):
            x = set_level(mic_colour(rng, paced_reading(rng, dur, sr, style=variant), sr), sr, level)
        elif variant == "stops_early":
            # a few words, then the recording runs on: still a reading when over the duration floor
            spoken = rng.uniform(2.0, 5.0)
            s = set_level(sp(spoken), sr, level)
            x = np.concatenate([s, np.zeros(int(rng.uniform(1.0, 10.0) * sr), np.float32)])
        elif variant == "teacher_prompt":
            # an adult's short prompt, a wait, then the child reads slowly
            prompt = set_level(
                mic_colour(rng, formant_speech(rng, rng.uniform(1.0, 3.0), sr, child=False), sr),
                sr,
                level + rng.uniform(-6, 3),
            )
            wait = np.zeros(int(rng.uniform(0.5, 2.5) * sr), np.float32)
            child = set_level(
                mic_colour(rng, paced_reading(rng, dur, sr, style=str(rng.choice(["letter", "syllable", "word"]))), sr),
                sr,
                level,
            )
            x = np.concatenate([prompt, wait, child])
        elif variant == "late_start":
            lead = rng.uniform(2, 5)
            s = sp(dur - lead)
            x = set_level(np.concatenate([np.zeros(int(lead * sr), np.float32), s]), sr, level)
            x = x + 0.3 * babble(rng, len(x), sr, voices=6) * 10 ** ((level - 25) / 20)
        elif variant == "bumps":
            s = set_level(sp(), sr, level)
            x = s + bumps(rng, len(s), sr) * 10 ** ((level + rng.uniform(0, 6)) / 20)
        elif variant == "telephone":
            s = sp()
            b, a = signal.butter(4, [300 / (sr / 2), 3400 / (sr / 2)], "band")
            x8 = resample(signal.lfilter(b, a, s), sr, 8000)
            x8 = set_level(x8, 8000, level)
            x8 = x8 + floor(len(x8))
            return Clip(np.clip(x8, -1, 1).astype(np.float32), 8000, label, variant)
        elif variant == "mic":
            x = set_level(mic_colour(rng, speech(rng, dur, sr, source=source), sr, strong=True), sr, level)
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
