"""Encode float samples into every container the pipeline meets in the field.

Used by the synthetic generator, the tests and the demo: phones upload m4a (AAC) and 3gp
(AMR-NB), web recorders webm (Opus), older apps WAV/MP3. libsndfile (soundfile) writes WAV, FLAC,
OGG/Vorbis, OGG/Opus and MP3; PyAV (FFmpeg) writes AAC in m4a, AMR-NB in 3gp and Opus in webm.

Decisions:
- Codecs that only accept some rates (Opus: 8/12/16/24/48 kHz, AMR-NB: 8 kHz, MP3: the MPEG
  rates) get the samples resampled to the nearest rate the codec takes, as a phone would do;
  the caller asks for a recording, not for an encoder error.
- OGG/Vorbis is written in blocks: one long ``write`` call segfaults libsndfile (FACTS.md).
- m4a and 3gp are written with ``faststart`` (moov atom first) by default, like most phone apps after
  upload processing; ``faststart=False`` gives the moov-at-end layout used for truncation tests.
"""

from __future__ import annotations

import io
import os
import tempfile
from fractions import Fraction

import numpy as np

FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "opus", "mp3", "m4a", "3gp", "webm")
WAV_SUBTYPES: tuple[str, ...] = ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")

_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_OGG_BLOCK = 16384  # frames per write call for OGG (see module docstring)


def encode(
    samples: np.ndarray,
    sample_rate: int,
    fmt: str,
    *,
    channels: int = 1,
    subtype: str | None = None,
    faststart: bool = True,
) -> bytes:
    """Encode float samples in [-1, 1] (shape ``(n,)`` or ``(n, channels)``) as ``fmt`` bytes.

    ``fmt`` is one of :data:`FORMATS`; ``subtype`` picks the WAV sample format (``PCM_16``
    default, ``PCM_24``, ``PCM_32``, ``FLOAT``, ``PCM_U8``) or a FLAC one (``PCM_16``/``PCM_24``).
    Raises ``ValueError`` for an unknown format or a shape that does not match ``channels``.
    """
    fmt = fmt.lower().lstrip(".")
    x = _as_frames(samples, channels)
    if fmt == "wav":
        return _sf_write(x, sample_rate, "WAV", subtype or "PCM_16")
    if fmt == "flac":
        return _sf_write(x, sample_rate, "FLAC", subtype or "PCM_16")
    if fmt == "ogg":
        return _sf_write(x, sample_rate, "OGG", "VORBIS")
    if fmt == "opus":
        x, rate = _to_allowed_rate(x, sample_rate, _OPUS_RATES)
        return _sf_write(x, rate, "OGG", "OPUS")
    if fmt == "mp3":
        x, rate = _to_allowed_rate(x, sample_rate, _MP3_RATES)
        return _sf_write(x, rate, "MP3", "MPEG_LAYER_III")
    if fmt == "m4a":
        x, rate = _to_allowed_rate(x, sample_rate, _AAC_RATES)
        opts = {"movflags": "+faststart"} if faststart else {}
        return _av_write(x, rate, "ipod", "aac", "fltp", bit_rate=96_000, options=opts)
    if fmt == "3gp":
        # AMR-NB is 8 kHz mono by definition: downmix and resample like a phone's recorder.
        mono = x.mean(axis=1, keepdims=True)
        mono, rate = _to_allowed_rate(mono, sample_rate, (8000,))
        opts = {"movflags": "+faststart"} if faststart else {}
        return _av_write(mono, rate, "3gp", "libopencore_amrnb", "s16", bit_rate=12_200, options=opts)
    if fmt == "webm":
        x, rate = _to_allowed_rate(x, sample_rate, _OPUS_RATES)
        return _av_write(x, rate, "webm", "libopus", "flt", bit_rate=32_000)
    raise ValueError(f"unknown audio format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _as_frames(samples: np.ndarray, channels: int) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x[:, None]
    if x.ndim != 2 or x.shape[1] != channels:
        raise ValueError(f"samples of shape {np.shape(samples)} do not match channels={channels}")
    # NaN/inf pass through untouched: tests write them on purpose into FLOAT WAVs.
    return x


def _to_allowed_rate(x: np.ndarray, rate: int, allowed: tuple[int, ...]) -> tuple[np.ndarray, int]:
    if rate in allowed:
        return x, rate
    target = min(allowed, key=lambda r: (abs(r - rate), -r))
    from scipy.signal import resample_poly

    frac = Fraction(target, rate)
    y = resample_poly(x, frac.numerator, frac.denominator, axis=0).astype(np.float32)
    return np.clip(y, -1.0, 1.0), target


def _sf_write(x: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=rate, channels=x.shape[1], format=fmt, subtype=subtype) as f:
        if fmt == "OGG" or fmt == "MP3":
            for start in range(0, len(x), _OGG_BLOCK):
                f.write(x[start : start + _OGG_BLOCK])
        else:
            f.write(x)
    return buf.getvalue()


def _av_write(
    x: np.ndarray,
    rate: int,
    container: str,
    codec: str,
    sample_fmt: str,
    *,
    bit_rate: int,
    options: dict[str, str] | None = None,
) -> bytes:

    layouts = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
    # A real temporary file, not BytesIO: the mp4 muxer reopens its output by name to move the
    # moov atom to the front (faststart), which an in-memory buffer cannot do.
    with tempfile.TemporaryDirectory(prefix="anomaly-enc-") as tmp:
        path = os.path.join(tmp, f"out.{container}")
        _av_mux(x, rate, path, container, codec, sample_fmt, layouts[x.shape[1]], bit_rate, options)
        with open(path, "rb") as fh:
            return fh.read()


def _av_mux(
    x: np.ndarray,
    rate: int,
    path: str,
    container: str,
    codec: str,
    sample_fmt: str,
    layout: str,
    bit_rate: int,
    options: dict[str, str] | None,
) -> None:
    import av

    with av.open(path, "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.audio.stream.AudioStream)  # an audio codec makes an audio stream
        stream.layout = layout
        stream.bit_rate = bit_rate
        # Hand the encoder interleaved float frames; its resampler converts to the codec's format.
        resampler = av.AudioResampler(format=sample_fmt, layout=layout, rate=rate)
        block = 4096
        pts = 0
        for start in range(0, len(x), block):
            chunk = np.ascontiguousarray(np.clip(x[start : start + block], -1.0, 1.0).reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout=layout)
            frame.sample_rate = rate
            frame.pts = pts
            pts += chunk.shape[1] // x.shape[1]
            for rf in resampler.resample(frame):
                for packet in stream.encode(rf):
                    out.mux(packet)
        for rf in resampler.resample(None):
            for packet in stream.encode(rf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
