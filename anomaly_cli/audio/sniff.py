"""Recognise an audio container from its first bytes, never from a file name.

Uploads arrive with whatever extension the app chose (an m4a named ``.wav``, an HTML error page
saved as ``.mp3``), so the decoder trusts only the bytes. Also here: the container facts that tell
whether a file promises more audio than it holds (WAV ``data`` chunk size, MP4 box sizes).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# libsndfile decodes these; everything else goes to FFmpeg (PyAV).
SNDFILE_FORMATS = frozenset({"wav", "flac", "ogg", "opus", "mp3", "aiff", "au", "caf", "w64"})

_MP3_BITRATES = {  # kbit/s by (mpeg1?, layer) -> index table
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def sniff(data: bytes) -> str | None:
    """The container of ``data`` (``wav``, ``flac``, ``ogg``, ``opus``, ``mp3``, ``aac``, ``m4a``,
    ``3gp``, ``webm``, ``mkv``, ``amr``, ``aiff``, ``au``, ``caf``, ``w64``) or None if unknown."""
    head = data[:64]
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"riff" and head[24:28] == b"wave":
        return "w64"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "opus" if b"OpusHead" in data[:200] else "ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b".snd":
        return "au"
    if head[:4] == b"caff":
        return "caf"
    if head[:5] == b"#!AMR":
        return "amr"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in data[:64] else "mkv"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "3gp" if brand.startswith((b"3gp", b"3g2")) else "m4a"
    if head[4:8] in (b"moov", b"mdat", b"free", b"wide", b"skip"):
        return "m4a"  # an MP4 without ftyp (old QuickTime writers)
    start = id3_end(data)
    if start:
        if data[start : start + 4] == b"fLaC":
            return "flac"
        return "mp3"  # an ID3 tag announces MP3 (the decoder says whether frames follow)
    if _adts_at(data, 0):
        return "aac"
    if _mp3_frames_at(data, 0):
        return "mp3"
    return None


def id3_end(data: bytes) -> int:
    """Offset just past a leading ID3v2 tag (0 when there is none)."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for b in data[6:10]:
        size = (size << 7) | (b & 0x7F)  # syncsafe integer
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def has_audio_after_id3(data: bytes) -> bool:
    """True when something other than padding follows a leading ID3 tag."""
    rest = data[id3_end(data) :]
    return bool(rest.strip(b"\x00"))


def _adts_at(data: bytes, i: int) -> bool:
    return len(data) >= i + 7 and data[i] == 0xFF and (data[i + 1] & 0xF6) == 0xF0


def _mp3_frame_len(data: bytes, i: int) -> int:
    """Length of a valid MPEG audio Layer III frame header at ``i`` (0 when not one)."""
    if len(data) < i + 4 or data[i] != 0xFF or (data[i + 1] & 0xE0) != 0xE0:
        return 0
    version = (data[i + 1] >> 3) & 3
    layer = (data[i + 1] >> 1) & 3
    br_idx = data[i + 2] >> 4
    sr_idx = (data[i + 2] >> 2) & 3
    if version == 1 or layer != 1 or br_idx in (0, 15) or sr_idx == 3:
        return 0
    mpeg1 = version == 3
    bitrate = _MP3_BITRATES[(mpeg1, 3)][br_idx] * 1000
    rate = _MP3_RATES[version][sr_idx]
    pad = (data[i + 2] >> 1) & 1
    return (144 if mpeg1 else 72) * bitrate // rate + pad


def _mp3_frames_at(data: bytes, i: int) -> bool:
    """Two consecutive valid Layer III frames (one alone matches random bytes too often)."""
    n = _mp3_frame_len(data, i)
    return n > 0 and (len(data) <= i + n or _mp3_frame_len(data, i + n) > 0)


def looks_like_text(data: bytes) -> str | None:
    """A short description when ``data`` is text (an HTML/XML/JSON error page), else None."""
    probe = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    low = probe[:64].lower()
    for marker, what in (
        (b"<!doctype html", "an HTML page"),
        (b"<html", "an HTML page"),
        (b"<?xml", "an XML document"),
        (b"<error", "an XML error document"),
        (b"{", "a JSON document"),
        (b"<", "markup text"),
    ):
        if low.startswith(marker):
            return what
    if probe and all(32 <= b < 127 or b in (9, 10, 13) for b in probe):
        return "plain text"
    return None


@dataclass(frozen=True)
class WavLayout:
    """What a WAV header promises: the ``data`` chunk's declared and present sizes."""

    rate: int
    block_align: int
    declared_bytes: int | None  # None: size unknown (0 or 0xFFFFFFFF written by a streamer)
    present_bytes: int


def wav_layout(data: bytes) -> WavLayout | None:
    """Walk the RIFF chunks of a WAV; None when the header is not plain RIFF/WAVE."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, rate, align = 12, 0, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt " and body + 16 <= len(data):
            _, _, rate, _, align = struct.unpack_from("<HHIIH", data, body)
        elif cid == b"data":
            present = max(0, min(len(data) - body, size))
            declared = None if size in (0, 0xFFFFFFFF) else size
            return WavLayout(rate, align, declared, present if declared is not None else len(data) - body)
        pos = body + size + (size & 1)
    return None


def mp4_layout(data: bytes) -> tuple[set[str], bool]:
    """Top-level MP4 boxes present and whether the last one runs past the end of the bytes."""
    pos, names, cut = 0, set(), False
    while pos + 8 <= len(data):
        size = struct.unpack_from(">I", data, pos)[0]
        name = data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        elif size == 0:
            size = len(data) - pos  # box runs to the end of the file by definition
        if size < 8:
            break
        names.add(name)
        if pos + size > len(data):
            cut = True
            break
        pos += size
    return names, cut
