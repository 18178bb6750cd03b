"""GIVEN small files whose headers ask for enormous decoding work (many channels, a long declared
length at a high rate, one giant FFmpeg frame) WHEN they are decoded THEN they are refused with
their own DecodeError code before the work is done, and ordinary recordings still decode."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from anomaly_cli.audio import decode as D
from anomaly_cli.errors import DecodeError


def _flac(seconds: float, rate: int, channels: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * rate), channels), np.float32), rate, format="FLAC")
    return buf.getvalue()


def _declare_total_samples(flac: bytes, total: int) -> bytes:
    """Patch STREAMINFO's 36-bit total-samples field (what libsndfile reports as frames)."""
    assert flac[:4] == b"fLaC"
    info = bytearray(flac[8 : 8 + 34])
    packed = int.from_bytes(info[10:18], "big")  # 20 rate | 3 channels-1 | 5 bps-1 | 36 total
    packed = (packed & ~((1 << 36) - 1)) | total
    info[10:18] = packed.to_bytes(8, "big")
    return flac[:8] + bytes(info) + flac[8 + 34 :]


def test_a_flac_declaring_hours_at_a_high_rate_is_refused_from_its_header() -> None:
    small = _flac(1.0, 96000, 8)
    lying = _declare_total_samples(small, 599 * 96000)  # 599 s x 8 channels x 96 kHz declared
    assert len(lying) < 200_000
    with pytest.raises(DecodeError) as e:
        D.decode_bytes(lying)
    assert e.value.code == "decode_budget"


def test_more_channels_than_any_recording_has_are_refused() -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((16000, 9), np.float32), 16000, format="WAV")
    with pytest.raises(DecodeError) as e:
        D.decode_bytes(buf.getvalue())
    assert e.value.code == "too_many_channels"


def test_rates_above_192_khz_are_refused() -> None:
    with pytest.raises(DecodeError) as e:
        D.decode_bytes(_flac(0.5, 384000, 1))
    assert e.value.code == "unsupported_rate"


def test_the_budget_also_holds_while_decoding_when_the_header_says_nothing(monkeypatch) -> None:
    buf = io.BytesIO()
    sf.write(
        buf,
        (np.random.default_rng(1).standard_normal((48000 * 4, 2)) * 0.1).astype(np.float32),
        48000,
        format="OGG",
        subtype="VORBIS",
    )
    monkeypatch.setattr(D, "MAX_DECODE_SAMPLES", 48000 * 2 * 2)  # 2 s of 48 kHz stereo
    with pytest.raises(DecodeError) as e:
        D.decode_bytes(buf.getvalue())
    assert e.value.code == "decode_budget"


def test_one_giant_ffmpeg_frame_is_refused_before_it_becomes_an_array() -> None:
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format="matroska") as c:
        s = c.add_stream("pcm_u8", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.full((1, 2_000_000), 128, np.uint8), format="u8", layout="mono")
        frame.sample_rate = 48000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with pytest.raises(DecodeError) as e:
        D.decode_bytes(out.getvalue())
    assert e.value.code == "frame_too_large"


def test_ordinary_recordings_are_untouched() -> None:
    for rate, ch in ((48000, 2), (44100, 1), (8000, 1)):
        got = D.decode_bytes(_flac(3.0, rate, ch))
        assert got.channels == ch and abs(got.duration_s - 3.0) < 0.01


def test_one_default_duration_cap_everywhere():
    """MAX_DURATION_SECONDS's default is the decoder's, the engine's and the screening process's: the
    cap is what bounds one item's cost (BENCHMARKS.md, decode cost), so no path may decode more by
    default, and it stays above the reading cap so that every recording screened is decoded whole."""
    import dataclasses
    import inspect

    from anomaly_cli import config
    from anomaly_cli.audio import decode
    from anomaly_cli.model import engine

    default = {f.name: f.default for f in dataclasses.fields(config.Settings)}
    assert default["max_duration_seconds"] == decode.DEFAULT_MAX_DURATION_S
    for fn in (decode.decode_bytes, engine.screen_bytes, engine.screen_in_process):
        assert inspect.signature(fn).parameters["max_duration_s"].default == decode.DEFAULT_MAX_DURATION_S, fn
    assert decode.DEFAULT_MAX_DURATION_S > default["max_reading_seconds"]
