"""GIVEN recordings in every format the project decodes (mono and several channels, 8 to 48 kHz,
cut short, capped, with NaN, over the decode budget) WHEN FFmpeg's frames are gathered into blocks
before they are checked, mixed and resampled THEN the result is what adding them frame by frame
gave: the same samples bit for bit, the same flags and notes, the same errors and messages, and
decoding still stops at the same frame at the cap."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from anomaly_cli.audio import decode as D
from anomaly_cli.audio import sniff as sn
from anomaly_cli.audio.formats import FORMATS, encode
from anomaly_cli.errors import DecodeError


def frame_by_frame(data: bytes, fmt: str | None, cap_s: float, target_rate: int = 16000) -> D.DecodedAudio:
    """The PyAV path as it was before frames were gathered: one ``_Collector.add`` per decoded frame."""
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        fmt = fmt or container.format.name.split(",")[0]
        codec = stream.codec_context.name
        declared = D._av_declared(container, stream)
        D.check_declared_cost(
            stream.rate or stream.codec_context.sample_rate or 0, D._av_channels(stream), declared, cap_s
        )
        _, cut = sn.mp4_layout(data) if fmt in ("m4a", "3gp") else (None, False)
        notes = ["MP4 box runs past the end of the bytes"] if cut else []
        to_fltp = av.AudioResampler(format="fltp")
        col = None
        truncated = bool(cut)
        try:
            for block in old_blocks(container, stream, to_fltp):
                if col is None:
                    col = D._Collector(
                        stream.rate or stream.codec_context.sample_rate, block.shape[1], cap_s, target_rate
                    )
                if not col.add(block):
                    break
        except DecodeError:
            raise
        except Exception as e:
            if col is None or col.frames == 0:
                raise DecodeError(f"ffmpeg could not decode {fmt}/{codec}: {e}", code="undecodable") from e
            truncated = True
            notes.append(f"decoder stopped early: {e}")
        if col is None:
            raise DecodeError(f"{fmt} container holds no audio samples", code="empty")
        return D._finish(col, fmt, codec, declared, target_rate, truncated, notes)


def old_blocks(container: Any, stream: Any, to_fltp: Any) -> Iterator[np.ndarray]:
    for frame in container.decode(stream):
        if frame.samples > D.MAX_FRAME_SAMPLES:
            raise DecodeError(
                f"one decoded frame holds {frame.samples} samples per channel (at most {D.MAX_FRAME_SAMPLES})",
                code="frame_too_large",
            )
        D.check_channels(len(frame.layout.channels))
        for f in to_fltp.resample(frame):
            yield f.to_ndarray().T


def outcome(decode: Callable[[], D.DecodedAudio]) -> Any:
    """What a decode gives, comparable with ==: every field, the samples as bytes, or the error."""
    try:
        d = decode()
    except DecodeError as e:
        return ("error", e.code, str(e))
    fields = {k: v for k, v in vars(d).items() if k != "samples"}
    return (fields, d.samples.dtype.str, d.samples.tobytes())


def clip(seconds: float, rate: int, channels: int) -> np.ndarray:
    """A voice-like tone in noise, each channel at its own level (a mix that swapped channels would differ)."""
    rng = np.random.default_rng(rate + channels)
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.03 * rng.standard_normal(
        len(t)
    )
    x = mono[:, None] * np.linspace(1.0, 0.4, channels)[None, :]
    return (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)


CLIPS = [(16000, 1), (44100, 2), (48000, 1), (8000, 1), (22050, 3)]


def encoded(fmt: str, rate: int, channels: int, seconds: float = 6.0) -> bytes:
    if fmt in ("mp3", "webm") and channels > 2:  # libsndfile's MP3 and libopus in webm take at most 2
        channels = 2
    return encode(clip(seconds, rate, channels), rate, fmt, channels=channels)


def same(data: bytes, cap_s: float = 300.0, fmt: str | None = None) -> Any:
    old = outcome(lambda: frame_by_frame(data, fmt, cap_s))
    new = outcome(lambda: D._decode_av(data, fmt, cap_s, 16000))
    assert new == old
    return new


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rate,channels", CLIPS)
def test_ffmpeg_decodes_every_format_to_the_samples_frame_by_frame_gave(fmt: str, rate: int, channels: int) -> None:
    got = same(encoded(fmt, rate, channels))
    assert got[0] != "error" and len(got[2]) > 4 * 16000 * 5  # a whole clip, not two matching errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_cut_upload_gives_the_same_samples_flags_and_notes(fmt: str) -> None:
    data = encoded(fmt, 44100, 2)
    got = same(data[: int(len(data) * 0.6)])
    assert got[0] != "error"


def test_decoder_stopping_early_keeps_the_frames_gathered_so_far() -> None:
    data = encoded("m4a", 16000, 1)
    got = same(data[: int(len(data) * 0.1)])  # fails after fewer samples than one gathered block
    assert got[0] != "error" and got[0]["truncated"]
    assert any(n.startswith("decoder stopped early") for n in got[0]["notes"])
    assert got[0]["duration_s"] < D._GATHER_FRAMES / 16000


@pytest.mark.parametrize("fmt", ["m4a", "3gp", "webm", "flac"])
def test_the_cap_cuts_at_the_same_sample(fmt: str) -> None:
    got = same(encoded(fmt, 44100, 2, seconds=8.0), cap_s=2.3)
    assert got[0] != "error" and got[0]["capped"]


def count_decoded_frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap av.open so that every container counts the frames its decoder delivers."""
    import av

    real_open, counts = av.open, []

    class Counting:
        def __init__(self, container: Any) -> None:
            self._c = container

        def __getattr__(self, name: str) -> Any:
            return getattr(self._c, name)

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self._c.close()

        def decode(self, *a: Any) -> Any:
            counts.append(0)
            for frame in self._c.decode(*a):
                counts[-1] += 1
                yield frame

    monkeypatch.setattr(av, "open", lambda *a, **k: Counting(real_open(*a, **k)))
    return counts


def test_the_cap_still_stops_decoding_at_the_same_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encoded("m4a", 44100, 1, seconds=20.0)
    counts = count_decoded_frames(monkeypatch)
    same(data, cap_s=1.5)
    old, new = counts
    assert new == old and new < 100  # 20 s of AAC at 44.1 kHz is ~860 frames


def wav_float(x: np.ndarray, rate: int) -> bytes:
    return encode(x, rate, "wav", subtype="FLOAT")


def test_nan_is_reported_as_frame_by_frame_with_the_count_of_its_frame() -> None:
    x = clip(6.0, 16000, 1)[:, 0]
    x[20000:23500] = np.nan  # spans several FFmpeg frames, inside one gathered block
    got = same(wav_float(x, 16000), fmt="wav")
    assert got[:2] == ("error", "nonfinite_samples") and "1.250 s" in got[2]


@pytest.mark.parametrize("nan_at", [2.3, 3.0])
def test_budget_and_nan_in_one_block_are_reported_in_frame_order(
    monkeypatch: pytest.MonkeyPatch, nan_at: float
) -> None:
    # the budget runs out at 2.5 s, inside the second gathered block; the header promises no length,
    # so only the running budget can refuse
    monkeypatch.setattr(D, "MAX_DECODE_SAMPLES", int(2.5 * 16000))
    monkeypatch.setattr(D, "_av_declared", lambda container, stream: None)
    x = clip(4.0, 16000, 1)[:, 0]
    x[int(nan_at * 16000)] = np.inf
    got = same(wav_float(x, 16000), fmt="wav")
    assert got[:2] == ("error", "nonfinite_samples" if nan_at < 2.5 else "decode_budget")


EIGHT_CHANNELS = """
import numpy as np
from anomaly_cli.audio import decode as D
from anomaly_cli.audio.formats import encode
from anomaly_cli.audio.resample import resample

x = (0.1 * np.random.default_rng(0).standard_normal((48000 * 3, 8))).astype(np.float32)
d = D._decode_av(encode(x, 48000, "wav", channels=8, subtype="FLOAT"), "wav", 300.0, 16000)
assert d.channels == 8 and len(d.samples) == 16000 * 3
assert np.max(np.abs(d.samples - resample(x.astype(np.float64).mean(axis=1), 48000, 16000))) < 1e-6
d = D.decode_bytes(encode(x, 48000, "m4a", channels=8))
assert (d.codec, d.channels) == ("aac", 8) and abs(d.duration_s - 3.0) < 0.05
"""


def test_eight_channels_decode_instead_of_crashing_the_process() -> None:
    # PyAV's frame.planes read past FFmpeg's eight data pointers on a 7.1 frame and segfaulted;
    # a child process runs it, so that a regression fails this test instead of the whole run
    env = {**os.environ, "PYTHONPATH": str(Path(D.__file__).resolve().parents[2])}  # this tree's package
    r = subprocess.run([sys.executable, "-c", EIGHT_CHANNELS], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
