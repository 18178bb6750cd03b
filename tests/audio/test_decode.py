"""decode_bytes: every format, the broken uploads phones and servers produce, and bounded memory."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from anomaly_cli.audio.decode import DecodedAudio, PolyphaseStream, decode_bytes
from anomaly_cli.audio.formats import FORMATS, encode
from anomaly_cli.errors import DecodeError


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(d: DecodedAudio) -> float:
    spec = np.abs(np.fft.rfft(d.samples * np.hanning(len(d.samples))))
    return float(np.argmax(spec) * d.sample_rate / len(d.samples))


def decode_error(data: bytes, **kw) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_bytes(data, **kw)
    return info.value


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_decodes_to_16k_mono_keeping_the_tone(fmt: str) -> None:
    data = encode(tone(2.0, 44100), 44100, fmt, channels=2)
    d = decode_bytes(data)
    assert d.format == fmt
    assert d.sample_rate == 16000 and d.samples.dtype == np.float32 and d.samples.ndim == 1
    assert abs(d.duration_s - 2.0) < 0.08
    assert abs(len(d.samples) / 16000 - d.duration_s) < 0.01
    assert abs(dominant_hz(d) - 440) < 5
    assert not d.truncated and not d.capped
    # the level survives the trip: a 0.4 sine has RMS 0.28
    assert 0.2 < float(np.sqrt(np.mean(d.samples[4000:-4000] ** 2))) < 0.36


def test_container_is_sniffed_from_bytes_not_from_a_name() -> None:
    # phones rename files freely: an m4a holding AAC is recognised as m4a whatever it is called
    d = decode_bytes(encode(tone(1.0, 16000), 16000, "m4a"))
    assert (d.format, d.codec) == ("m4a", "aac")
    d = decode_bytes(encode(tone(1.0, 16000), 16000, "3gp"))
    assert (d.format, d.codec, d.source_rate) == ("3gp", "amrnb", 8000)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 48000, 96000])
def test_any_rate_is_resampled_with_the_tone_kept(rate: int) -> None:
    d = decode_bytes(encode(tone(1.0, rate, freq=1000), rate, "wav"))
    assert d.source_rate == rate and len(d.samples) == 16000
    assert abs(dominant_hz(d) - 1000) < 3


def test_six_channels_are_averaged() -> None:
    x = np.zeros((16000, 6), np.float32)
    x[:, 2] = tone(1.0, 16000, amp=0.6)  # only the centre channel carries the voice
    d = decode_bytes(encode(x, 16000, "wav", channels=6, subtype="FLOAT"))
    assert d.channels == 6
    assert np.allclose(d.samples, x[:, 2] / 6, atol=1e-6)


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_every_sample_width(subtype: str) -> None:
    x = tone(0.5, 16000)
    d = decode_bytes(encode(x, 16000, "wav", subtype=subtype))
    tol = 1e-2 if subtype == "PCM_U8" else 1e-4
    assert np.max(np.abs(d.samples - x)) < tol


def test_streaming_resampler_equals_one_call() -> None:
    from scipy.signal import resample_poly

    x = np.random.default_rng(3).standard_normal(100_003).astype(np.float32)
    ps = PolyphaseStream(44100, 16000, block=4000)
    out = [y for i in range(0, len(x), 3001) for y in ps.push(x[i : i + 3001])] + ps.finish()
    whole = resample_poly(x, 160, 441)
    assert np.allclose(np.concatenate(out), whole, atol=1e-5)


# --- truncation ---------------------------------------------------------------------------
def test_truncated_wav_reports_the_promise_and_keeps_the_audio() -> None:
    data = encode(tone(4.0, 16000), 16000, "wav")
    d = decode_bytes(data[: len(data) // 2])
    assert d.truncated and d.declared_duration_s == pytest.approx(4.0)
    assert d.duration_s == pytest.approx(2.0, abs=0.01)
    assert any("data chunk" in n for n in d.notes)


def test_wav_with_a_few_bytes_missing_is_not_called_truncated() -> None:
    data = encode(tone(1.0, 16000), 16000, "wav")
    assert not decode_bytes(data[:-2]).truncated  # one frame short: a sloppy writer, not a cut


def test_truncated_mp3_decodes_short_of_its_header() -> None:
    data = encode(tone(6.0, 22050), 22050, "mp3")
    d = decode_bytes(data[: len(data) // 2])
    assert d.truncated and d.declared_duration_s == pytest.approx(6.0, abs=0.1)
    assert d.duration_s < 3.5


def test_truncated_faststart_m4a_keeps_its_audio_and_says_so() -> None:
    data = encode(tone(6.0, 16000), 16000, "m4a")
    d = decode_bytes(data[: len(data) // 2])
    assert d.truncated and d.duration_s < 4.0 and d.declared_duration_s == pytest.approx(6.0, abs=0.1)


def test_m4a_cut_before_its_index_is_a_truncated_decode_error() -> None:
    data = encode(tone(6.0, 16000), 16000, "m4a", faststart=False)
    err = decode_error(data[: len(data) // 2])
    assert err.code == "truncated" and "moov" in str(err)


@pytest.mark.parametrize("fmt", ["m4a", "3gp"])
def test_mp4_cut_inside_its_index_is_a_truncated_decode_error(fmt: str) -> None:
    data = encode(tone(3.0, 16000), 16000, fmt)  # faststart: moov comes right after ftyp
    moov = data.find(b"moov")
    assert decode_error(data[: moov + 40]).code == "truncated"


def test_video_without_sound_is_not_audio() -> None:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=5)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    err = decode_error(buf.getvalue())
    assert err.code == "not_audio" and "no audio stream" in str(err)


def test_truncated_flac_keeps_what_was_decoded() -> None:
    data = encode(np.random.default_rng(0).uniform(-0.3, 0.3, 16000 * 4).astype(np.float32), 16000, "flac")
    d = decode_bytes(data[: len(data) // 2])
    assert d.truncated and 1.0 < d.duration_s < 3.0


# --- not audio / empty / broken -----------------------------------------------------------
def test_html_error_page_saved_as_wav_is_not_audio() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>AccessDenied</body></html>"
    err = decode_error(page)
    assert err.code == "not_audio" and "HTML" in str(err)


def test_s3_xml_error_body_is_not_audio() -> None:
    body = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>'
    assert decode_error(body).code == "not_audio"


def test_empty_and_header_only() -> None:
    assert decode_error(b"").code == "empty"
    assert decode_error(encode(np.zeros(0, np.float32), 16000, "wav")).code == "empty"


def test_id3_tag_without_frames_is_empty() -> None:
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 1, 0]) + b"TIT2" + b"\x00" * 124
    err = decode_error(tag)
    assert err.code == "empty" and "ID3" in str(err)


def test_random_bytes_are_refused_with_both_decoders_reasons() -> None:
    err = decode_error(np.random.default_rng(7).bytes(20_000))
    assert err.code == "not_audio"
    assert "libsndfile" in str(err) and "ffmpeg" in str(err) and "BytesIO" not in str(err)


def test_corrupt_body_behind_a_valid_header_is_a_decode_error_not_a_crash() -> None:
    data = bytearray(encode(tone(1.0, 16000), 16000, "flac"))
    data[200:] = np.random.default_rng(1).bytes(len(data) - 200)
    # libsndfile refuses at the first frame; FFmpeg salvages at most a frame. Either outcome is
    # explained: a DecodeError, or audio flagged truncated with a note saying how much is missing.
    try:
        d = decode_bytes(bytes(data))
    except DecodeError as e:
        assert e.code in ("undecodable", "not_audio")
    else:
        assert d.truncated and d.notes and d.duration_s < 0.5


def test_one_sample() -> None:
    d = decode_bytes(encode(np.array([0.5], np.float32), 16000, "wav"))
    assert len(d.samples) == 1 and d.duration_s == pytest.approx(1 / 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_float_samples(bad: float) -> None:
    x = tone(1.0, 16000)
    x[8000] = bad
    err = decode_error(encode(x, 16000, "wav", subtype="FLOAT"))
    assert err.code == "nonfinite_samples" and "0.500 s" in str(err)


def test_absurd_sample_rate_is_refused() -> None:
    data = bytearray(encode(tone(0.1, 16000), 16000, "wav"))
    struct.pack_into("<II", data, 24, 1000, 2000)  # fmt chunk: 1000 Hz, byte rate
    assert decode_error(bytes(data)).code == "unsupported_rate"


# --- duration cap and memory --------------------------------------------------------------
def test_wav_header_claiming_two_hours_is_truncated_not_allocated() -> None:
    data = bytearray(encode(tone(3.0, 48000), 48000, "wav"))
    two_hours = 7200 * 48000 * 2
    struct.pack_into("<I", data, 4, two_hours + 36)
    struct.pack_into("<I", data, 40, two_hours)
    tracemalloc.start()
    try:
        d = decode_bytes(bytes(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert d.truncated and d.declared_duration_s == pytest.approx(7200)
    assert d.duration_s == pytest.approx(3.0, abs=0.01)
    assert peak < 20e6


def test_two_hour_stream_stops_at_the_cap_with_bounded_memory() -> None:
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=8000, channels=1, format="FLAC", subtype="PCM_16") as f:
        minute = np.zeros((8000 * 60, 1), np.float32)
        minute[::800] = 0.25  # clicks, so the stream is not constant
        for _ in range(120):
            f.write(minute)
    data = buf.getvalue()
    tracemalloc.start()
    try:
        d = decode_bytes(data, max_duration_s=30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert d.capped and not d.truncated
    assert d.duration_s == pytest.approx(30.0) and len(d.samples) == 30 * 16000
    assert d.declared_duration_s == pytest.approx(7200)
    assert peak < 30e6  # 2 h decoded at once would be 7200 s x 16 kHz x 4 B = 460 MB


@pytest.mark.parametrize("fmt", ["m4a", "ogg"])
def test_cap_applies_to_both_decoders(fmt: str) -> None:
    d = decode_bytes(encode(tone(5.0, 16000), 16000, fmt), max_duration_s=2.0)
    assert d.capped and d.duration_s == pytest.approx(2.0) and len(d.samples) == 32000


def test_only_decode_errors_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    import anomaly_cli.audio.decode as dec

    def boom(*a, **k):
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(dec, "_decode_sndfile", boom)
    err = decode_error(encode(tone(0.5, 16000), 16000, "wav"))
    assert err.code == "undecodable" and "decoder bug" in str(err)
