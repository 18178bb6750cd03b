"""Every format ``encode`` writes is what its name says, checked by FFmpeg, not by our decoder."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from anomaly_cli.audio.formats import FORMATS, encode

RATE = 22050
EXPECTED = {  # fmt -> (FFmpeg codec name, rate read back or None for the input rate; Opus always decodes at 48 kHz)
    "wav": ("pcm_s16le", None),
    "flac": ("flac", None),
    "ogg": ("vorbis", None),
    "opus": ("opus", 48000),
    "mp3": ("mp3float", None),
    "m4a": ("aac", None),
    "3gp": ("amrnb", 8000),
    "webm": ("opus", 48000),
}


def tone(seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_read_back_by_ffmpeg_with_its_codec(fmt: str) -> None:
    data = encode(tone(), RATE, fmt)
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.audio[0]
        codec, rate = EXPECTED[fmt]
        assert stream.codec_context.name == codec
        assert stream.rate == (rate or RATE)
        samples = sum(f.samples for f in c.decode(stream))
    assert abs(samples / stream.rate - 1.0) < 0.1


@pytest.mark.parametrize(
    "subtype,codec", [("PCM_U8", "pcm_u8"), ("PCM_24", "pcm_s24le"), ("PCM_32", "pcm_s32le"), ("FLOAT", "pcm_f32le")]
)
def test_wav_subtypes(subtype: str, codec: str) -> None:
    with av.open(io.BytesIO(encode(tone(0.2), RATE, "wav", subtype=subtype))) as c:
        assert c.streams.audio[0].codec_context.name == codec


def test_multichannel_and_faststart_layout() -> None:
    stereo = encode(np.stack([tone(), -tone()], axis=1), RATE, "m4a", channels=2)
    with av.open(io.BytesIO(stereo)) as c:
        assert c.streams.audio[0].channels == 2
    # faststart puts the moov index before the media data; without it moov comes last
    assert stereo.find(b"moov") < stereo.find(b"mdat")
    late = encode(tone(), RATE, "m4a", faststart=False)
    assert late.find(b"moov") > late.find(b"mdat")


def test_long_ogg_is_written_in_blocks_without_crashing() -> None:
    # one long write call segfaults libsndfile (FACTS.md); 45 s of 48 kHz stereo did
    x = np.tile(tone(45, 48000)[:, None], (1, 2)) * 0.5
    data = encode(x, 48000, "ogg", channels=2)
    with av.open(io.BytesIO(data)) as c:
        assert c.streams.audio[0].codec_context.name == "vorbis"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        encode(tone(), RATE, "aiffx")
    with pytest.raises(ValueError, match="channels"):
        encode(np.zeros((10, 3), np.float32), RATE, "wav", channels=2)
