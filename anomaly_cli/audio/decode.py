"""Bytes in, mono float32 at the analysis rate out, or a :class:`DecodeError` saying why not.

The container is sniffed from the bytes (:mod:`anomaly_cli.audio.sniff`). libsndfile decodes WAV,
FLAC, OGG/Vorbis, Opus and MP3; FFmpeg (PyAV) decodes m4a/AAC, 3gp/AMR, webm and anything
libsndfile refuses. Decoding streams in blocks: channels are averaged and each block goes through
a streaming polyphase resampler (:class:`PolyphaseStream`), and decoding stops at the duration
cap, so memory is bounded by the cap at the *output* rate whatever the header claims.

Decisions:
- ``truncated`` is set where the format lets us tell: a WAV ``data`` chunk shorter than its
  header says; FLAC/MP3/MP4/webm decoding to noticeably less than the header's duration
  (more than 0.25 s and 2 % short); an MP4 whose last top-level box runs past the end; a decoder
  that fails mid-stream after audio was decoded (the audio so far is kept). An MP4 cut before
  its ``moov`` index (a non-faststart upload that stopped early) holds no decodable audio: that is
  a ``DecodeError`` with code ``truncated``, so callers can still report truncation.
- Error codes: ``empty`` (no bytes, or a valid container without samples, e.g. an ID3 tag
  alone), ``not_audio`` (text/HTML or unknown bytes both decoders refuse), ``nonfinite_samples``
  (NaN/inf), ``truncated`` (see above), ``unsupported_rate``, ``undecodable`` (anything else, with
  the decoder's reason). Nothing but :class:`DecodeError` leaves :func:`decode_bytes`.
- Channels are averaged with equal weight: recordings are speech, and an equal mix never drops
  a channel that carries the child (unlike taking the left one).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from anomaly_cli.audio import sniff as sn
from anomaly_cli.errors import DecodeError
from anomaly_cli.screening import DEFAULT_MAX_DURATION_S

ANALYSIS_RATE = 16000
MIN_RATE, MAX_RATE = 4000, 192000
#: Decoding cost is bounded before and while decoding, from what the header declares (a 124 KB FLAC
#: declaring 384 kHz x 8 channels x 599 s took 57 s of CPU; a 966 KB Vorbis with 255 channels 126 s).
#: Phones record 1-2 channels at 8-48 kHz; 8 channels is 7.1 surround, 192 kHz the top studio rate.
MAX_CHANNELS = 8
#: Samples x channels one recording may decode: 10 minutes of 48 kHz mono, 5 of 48 kHz stereo, the
#: 600 s at 16-24 kHz stereo (the cap itself, MAX_DURATION_SECONDS, is 300 s by default, so the
#: budget matters when an operator raises it). An oral-reading clip is 1-3 minutes; what costs more is
#: refused (``decode_budget``) so that no input of <= 5 MB costs a screening process more than ~10x
#: an ordinary 60 s item (bench/bench_decode_cost.py, BENCHMARKS.md).
MAX_DECODE_SAMPLES = 600 * 48000
#: Samples per channel in one FFmpeg frame: real codecs use <= 8192; a single 50 MB PCM packet
#: would become a ~900 MB float array before any duration cap could apply.
MAX_FRAME_SAMPLES = 1 << 20
#: Samples per channel gathered from FFmpeg frames before they are checked, mixed and resampled
#: as one block (:class:`_Pending`): 2 s at 16 kHz, a few dozen AAC frames.
_GATHER_FRAMES = 1 << 15
# Frames read from libsndfile per call: small enough that a stream breaking mid-block loses
# little (libsndfile returns nothing from a failed read), large enough to keep calls cheap.
_BLOCK_FRAMES = 16384
_SHORT_SLACK_S, _SHORT_SLACK_FRAC = 0.25, 0.02
_NO_AUDIO_STREAM = "the container has no audio stream"
_OPEN_NOISE = re.compile(r"Error opening <[^>]*>: ")  # libsndfile names our in-memory buffer


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded recording: mono float32 ``samples`` at ``sample_rate``, plus what the file said."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    channels: int
    format: str
    codec: str
    duration_s: float
    declared_duration_s: float | None
    truncated: bool
    capped: bool
    notes: tuple[str, ...] = ()


class PolyphaseStream:
    """Streaming :func:`~anomaly_cli.audio.resample.resample_poly`: blocks in, the same samples out
    as one call.

    Each block is resampled with enough input context on both sides to cover the filter, and
    block starts sit on multiples of ``down`` so output samples land on the same grid as a
    whole-signal call would put them.
    """

    def __init__(self, src_rate: int, dst_rate: int, block: int = 1 << 17):
        g = math.gcd(src_rate, dst_rate)
        self.up, self.down = dst_rate // g, src_rate // g
        half_in = 10 * max(self.up, self.down) // self.up + 2  # resample_poly's half filter, input samples
        self.ctx = self.down * math.ceil(half_in / self.down)
        self.block = self.down * max(1, math.ceil(block / self.down))
        self._left = np.zeros(0, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._queue: list[np.ndarray] = []
        self._queued = 0
        self._fir: np.ndarray | None = None  # resample_poly's own filter, designed once not per block

    def _filter(self) -> np.ndarray:
        if self._fir is None:
            from anomaly_cli.audio.resample import default_filter

            self._fir = default_filter(self.up, self.down).astype(np.float32)
        return self._fir

    def push(self, x: np.ndarray) -> list[np.ndarray]:
        """Feed input samples; return output blocks that are final."""
        if self.up == self.down:
            return [x.astype(np.float32, copy=False)]
        # Small pushes (an AAC frame is 1024 samples) are queued and joined once per block:
        # concatenating on every push would copy the whole pending block each time.
        self._queue.append(x.astype(np.float32, copy=False))
        self._queued += len(x)
        if len(self._pending) + self._queued < self.block + self.ctx:
            return []
        self._join()
        out = []
        while len(self._pending) >= self.block + self.ctx:
            out.append(self._run(self._pending[: self.block + self.ctx], self.block * self.up // self.down))
            seen = np.concatenate([self._left, self._pending[: self.block]])
            self._left = seen[-self.ctx :]
            self._pending = self._pending[self.block :]
        return out

    def _join(self) -> None:
        self._pending = np.concatenate([self._pending, *self._queue])
        self._queue, self._queued = [], 0

    def finish(self) -> list[np.ndarray]:
        """Flush what is left (the signal ends here)."""
        self._join()
        if self.up == self.down or len(self._pending) == 0:
            return []
        y = self._run(self._pending, None)
        self._pending = np.zeros(0, np.float32)
        return [y]

    def _run(self, seg: np.ndarray, keep: int | None) -> np.ndarray:
        from anomaly_cli.audio.resample import resample_poly

        off = len(self._left) * self.up // self.down
        y = resample_poly(np.concatenate([self._left, seg]), self.up, self.down, window=self._filter())
        y = y[off:] if keep is None else y[off : off + keep]
        return y.astype(np.float32, copy=False)


def decode_bytes(
    data: bytes, *, max_duration_s: float = DEFAULT_MAX_DURATION_S, target_rate: int = ANALYSIS_RATE
) -> DecodedAudio:
    """Decode ``data`` to mono float32 at ``target_rate``, stopping at ``max_duration_s``.

    Raises :class:`DecodeError` (and nothing else) when the bytes hold no usable audio.
    """
    try:
        return _decode(bytes(data), max_duration_s, target_rate)
    except DecodeError:
        raise
    except Exception as e:  # the contract: only DecodeError leaves this function
        raise DecodeError(f"decoder failed: {type(e).__name__}: {e}", code="undecodable") from e


def _decode(data: bytes, cap_s: float, target_rate: int) -> DecodedAudio:
    if not data:
        raise DecodeError("no bytes: the file is empty", code="empty")
    fmt = sn.sniff(data)
    if fmt is None:
        text = sn.looks_like_text(data)
        if text:
            raise DecodeError(f"not audio: the bytes are {text} ({data[:40]!r}...)", code="not_audio")
    if fmt == "mp3" and data[:3] == b"ID3" and not sn.has_audio_after_id3(data):
        raise DecodeError("MP3 holds an ID3 tag and no audio frames", code="empty")
    mp4_cut = False
    if fmt == "m4a" or fmt == "3gp":
        boxes, mp4_cut = sn.mp4_layout(data)
        if "moov" not in boxes and "mdat" in boxes:
            raise DecodeError(
                f"{fmt} has no moov index: the upload was cut before the index was written (not faststart)",
                code="truncated",
            )
    errors: list[str] = []
    if fmt is None or fmt in sn.SNDFILE_FORMATS:
        try:
            return _decode_sndfile(data, fmt, cap_s, target_rate)
        except _Refused as e:
            errors.append(f"libsndfile: {e}")
    try:
        return _decode_av(data, fmt, cap_s, target_rate)
    except _Refused as e:
        errors.append(f"ffmpeg: {e}")
    if mp4_cut:  # cut inside the index itself: nothing can be decoded, and we know why
        raise DecodeError(
            f"{fmt} is cut short inside its boxes and cannot be opened ({'; '.join(errors)})", code="truncated"
        )
    code = "not_audio" if fmt is None or errors[-1].endswith(_NO_AUDIO_STREAM) else "undecodable"
    what = "unknown bytes" if fmt is None else f"{fmt} container"
    raise DecodeError(f"{what} could not be decoded ({'; '.join(errors)})", code=code)


class _Refused(Exception):
    """A decoder could not open the bytes at all (the next decoder may)."""


def check_channels(channels: int) -> None:
    """Refuse more channels than :data:`MAX_CHANNELS` before decoding any (cost grows with each)."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise DecodeError(f"{channels} channels: at most {MAX_CHANNELS} are decoded", code="too_many_channels")


def check_declared_cost(rate: int, channels: int, declared_s: float | None, cap_s: float) -> None:
    """Refuse before decoding when the header promises more than :data:`MAX_DECODE_SAMPLES`."""
    check_channels(channels)
    if declared_s is None or not math.isfinite(declared_s) or rate <= 0:
        return
    cost = rate * channels * min(declared_s, cap_s)
    if cost > MAX_DECODE_SAMPLES:
        raise DecodeError(
            f"the header declares {min(declared_s, cap_s):.0f} s x {channels} channels x {rate} Hz to decode, "
            f"over the {MAX_DECODE_SAMPLES} samples a recording may cost",
            code="decode_budget",
        )


class _Collector:
    """Downmix, check, cap and resample blocks as they are decoded."""

    def __init__(self, src_rate: int, channels: int, cap_s: float, target_rate: int):
        if not MIN_RATE <= src_rate <= MAX_RATE:
            raise DecodeError(f"sample rate {src_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz", code="unsupported_rate")
        check_channels(channels)
        self.src_rate, self.channels = src_rate, channels
        self.cap_frames = int(round(cap_s * src_rate))
        # the decode budget, enforced while decoding whatever the header said about the length
        self.budget_frames = MAX_DECODE_SAMPLES // max(1, channels)
        self.frames = 0
        self.capped = False
        self._rs = PolyphaseStream(src_rate, target_rate)
        self._out: list[np.ndarray] = []

    def add(self, block: np.ndarray, parts: list[int] | None = None) -> bool:
        """Add ``(frames, channels)`` samples; False once the cap is reached (stop decoding).

        ``parts``: the lengths of the decoder frames ``block`` joins (None: one). A NaN/inf error
        counts the bad samples of the frame holding the first one, as adding frame by frame did.
        """
        if len(block) == 0:
            return True
        if min(self.frames + len(block), self.cap_frames) > self.budget_frames:
            raise DecodeError(
                f"decoding would exceed {MAX_DECODE_SAMPLES} samples x channels "
                f"({self.channels} channels at {self.src_rate} Hz)",
                code="decode_budget",
            )
        room = self.cap_frames - self.frames
        if len(block) > room:
            block, self.capped = block[:room], True
        bad = ~np.isfinite(block)
        if bad.any():
            first = int(np.argmax(bad.any(axis=1)))
            lo, hi = 0, len(block)
            if parts:
                ends = np.cumsum(parts)
                k = int(np.searchsorted(ends, first, side="right"))
                lo, hi = int(ends[k - 1]) if k else 0, int(ends[k])
            raise DecodeError(
                f"{int(bad[lo:hi].sum())} NaN/inf samples, the first at {(first + self.frames) / self.src_rate:.3f} s",
                code="nonfinite_samples",
            )
        mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
        self.frames += len(block)
        self._out.extend(self._rs.push(mono))
        return not self.capped

    def samples(self) -> np.ndarray:
        self._out.extend(self._rs.finish())
        return np.concatenate(self._out).astype(np.float32, copy=False) if self._out else np.zeros(0, np.float32)


def _finish(
    col: _Collector, fmt: str, codec: str, declared: float | None, target_rate: int, truncated: bool, notes: list[str]
) -> DecodedAudio:
    if col.frames == 0:
        raise DecodeError(f"{fmt} container holds no audio samples", code="empty")
    duration = col.frames / col.src_rate
    if declared is not None and not col.capped and not truncated:
        short = declared - duration
        if short > _SHORT_SLACK_S and short > _SHORT_SLACK_FRAC * declared:
            truncated = True
            notes.append(f"decoded {duration:.2f} s of the {declared:.2f} s the header declares")
    samples = col.samples()
    return DecodedAudio(
        samples,
        target_rate,
        col.src_rate,
        col.channels,
        fmt,
        codec,
        duration,
        declared,
        truncated,
        col.capped,
        tuple(notes),
    )


def _decode_sndfile(data: bytes, fmt: str | None, cap_s: float, target_rate: int) -> DecodedAudio:
    import soundfile as sf

    try:
        f = sf.SoundFile(io.BytesIO(data))
    except Exception as e:  # libsndfile's refusal; FFmpeg gets a chance next
        raise _Refused(_OPEN_NOISE.sub("", str(e))) from e
    with f:
        fmt = fmt or f.format.lower()
        codec = _sf_codec(f.format, f.subtype)
        col = _Collector(f.samplerate, f.channels, cap_s, target_rate)
        declared, truncated, notes = _sf_declared(data, fmt, f)
        check_declared_cost(f.samplerate, f.channels, declared, cap_s)
        while True:
            try:
                block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except Exception as e:  # a stream that breaks after some audio
                if col.frames == 0:  # broken from the start: FFmpeg may still make sense of it
                    raise _Refused(f"could not decode {fmt}: {e}") from e
                truncated = True
                notes.append(f"decoder stopped early: {e}")
                break
            if len(block) == 0 or not col.add(block):
                break
        return _finish(col, fmt, codec, declared, target_rate, truncated, notes)


def _sf_declared(data: bytes, fmt: str, f: Any) -> tuple[float | None, bool, list[str]]:
    """What the header promises, and whether a WAV data chunk is visibly short."""
    notes: list[str] = []
    if fmt == "wav":
        lay = sn.wav_layout(data)
        if lay is None or lay.declared_bytes is None or not lay.block_align or not lay.rate:
            return None, False, notes
        declared = lay.declared_bytes / lay.block_align / lay.rate
        missing = lay.declared_bytes - lay.present_bytes
        # A few bytes short is a sloppy writer, not a cut upload: allow one frame or 10 ms.
        if missing > max(lay.block_align, 0.01 * lay.rate * lay.block_align):
            notes.append(f"WAV data chunk holds {lay.present_bytes} of {lay.declared_bytes} declared bytes")
            return declared, True, notes
        return declared, False, notes
    if fmt in ("flac", "mp3") and f.frames > 0:
        # FLAC STREAMINFO and MP3 Xing/Info headers state the length; OGG/Opus carry no promise
        # (their length is read from the last page present, so a cut file looks whole).
        return f.frames / f.samplerate, False, notes
    return None, False, notes


def _sf_codec(fmt: str, subtype: str) -> str:
    return {"VORBIS": "vorbis", "OPUS": "opus", "MPEG_LAYER_III": "mp3", "MPEG_LAYER_II": "mp2"}.get(
        subtype, "flac" if fmt == "FLAC" else subtype.lower()
    )


def _decode_av(data: bytes, fmt: str | None, cap_s: float, target_rate: int) -> DecodedAudio:
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except Exception as e:  # FFmpeg's refusal
        raise _Refused(str(e)) from e
    with container:
        if not container.streams.audio:
            raise _Refused(_NO_AUDIO_STREAM)
        stream = container.streams.audio[0]
        fmt = fmt or container.format.name.split(",")[0]
        codec = stream.codec_context.name
        declared = _av_declared(container, stream)
        check_declared_cost(stream.rate or stream.codec_context.sample_rate or 0, _av_channels(stream), declared, cap_s)
        _, cut = sn.mp4_layout(data) if fmt in ("m4a", "3gp") else (None, False)
        notes = ["MP4 box runs past the end of the bytes"] if cut else []
        to_fltp = av.AudioResampler(format="fltp")  # keeps rate and layout; float planar out
        col: _Collector | None = None
        pending = _Pending()
        failure: Exception | None = None
        try:
            for frame in _av_frames(container, stream, to_fltp):
                if col is None:
                    col = _Collector(
                        stream.rate or stream.codec_context.sample_rate, frame.layout.nb_channels, cap_s, target_rate
                    )
                if not pending.take(frame, col):
                    break
        except Exception as e:  # noqa: BLE001 - raised or noted below, once the gathered frames are in
            failure = e
        if col is not None:  # the frames decoded before a failure count, as when each was added at once
            pending.flush(col)
        if isinstance(failure, DecodeError):
            raise failure
        truncated = bool(cut)
        if failure is not None:
            if col is None or col.frames == 0:
                raise DecodeError(f"ffmpeg could not decode {fmt}/{codec}: {failure}", code="undecodable") from failure
            truncated = True
            notes.append(f"decoder stopped early: {failure}")
        if col is None:
            raise DecodeError(f"{fmt} container holds no audio samples", code="empty")
        return _finish(col, fmt, codec, declared, target_rate, truncated, notes)


def _av_frames(container: Any, stream: Any, to_fltp: Any) -> Iterator[Any]:
    """The decoded frames, checked, as float planar frames (the resampler passes fltp ones through)."""
    for frame in container.decode(stream):
        if frame.samples > MAX_FRAME_SAMPLES:  # refuse before it becomes a float array
            raise DecodeError(
                f"one decoded frame holds {frame.samples} samples per channel (at most {MAX_FRAME_SAMPLES})",
                code="frame_too_large",
            )
        check_channels(frame.layout.nb_channels)
        yield from to_fltp.resample(frame)


class _Pending:
    """Decoded float planar frames waiting to reach a :class:`_Collector` as one block.

    Checking, mixing and resampling each frame as it came cost more in numpy calls than in work
    (an AAC frame is 1024 samples, an AMR one 160). A block is handed on once it holds
    :data:`_GATHER_FRAMES` samples, reaches the cap (decoding stops at the frame it always stopped
    at) or would pass the decode budget (the frame that passes it goes alone, so a NaN in an
    earlier frame is still the error reported). Blocks have the layout the per-frame arrays had,
    ``(samples, channels)`` with each channel contiguous.

    Channels are read one plane at a time by index: PyAV's ``frame.planes`` looks for a NULL pointer
    after the last channel, which a frame of 8 channels (all of FFmpeg's data pointers) lacks, and
    read past them (a 7.1 m4a crashed the process with a segfault, av 18.1).
    """

    def __init__(self) -> None:
        from av.audio.plane import AudioPlane

        self._plane: Any = AudioPlane  # typed stubs do not say it exports a buffer
        self._planes: list[list[np.ndarray]] = []
        self._sizes: list[int] = []
        self._count = 0

    def take(self, frame: Any, col: _Collector) -> bool:
        """Queue one frame; False once ``col`` has reached the cap (stop decoding)."""
        if frame.format.name != "fltp":  # the codec changed format after a pass-through start
            return self.flush(col) and col.add(frame.to_ndarray().T)
        channels, n = frame.layout.nb_channels, frame.samples
        if self._sizes and (channels != len(self._planes) or col.frames + self._count + n > col.budget_frames):
            if not self.flush(col):
                return False
        if not self._sizes:
            self._planes = [[] for _ in range(channels)]
        for i, queue in enumerate(self._planes):
            queue.append(np.frombuffer(self._plane(frame, i), np.float32, n))
        self._sizes.append(n)
        self._count += n
        queued = col.frames + self._count
        if self._count >= _GATHER_FRAMES or queued >= col.cap_frames or queued > col.budget_frames:
            return self.flush(col)
        return True

    def flush(self, col: _Collector) -> bool:
        """Hand the queued frames to ``col`` as one block; False once the cap is reached."""
        if not self._sizes:
            return True
        planes, sizes = self._planes, self._sizes
        self._planes, self._sizes, self._count = [], [], 0
        block = np.empty((len(planes), sum(sizes)), np.float32)
        for row, queue in zip(block, planes):
            np.concatenate(queue, out=row)
        return col.add(block.T, sizes)


def _av_channels(stream: Any) -> int:
    layout = getattr(stream.codec_context, "layout", None)
    n = getattr(layout, "nb_channels", None) or len(getattr(layout, "channels", ()) or ())
    return int(n or getattr(stream.codec_context, "channels", 0) or 1)


def _av_declared(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        import av

        return container.duration / av.time_base
    return None
