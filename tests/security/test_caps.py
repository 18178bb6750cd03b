"""GIVEN hostile servers (endless streams, lying lengths, drips) and oversized S3 objects WHEN the
fetcher downloads THEN the byte cap and the deadline hold: the download ends with a permanent
``too_large`` or a transient deadline error, never with more than the cap in memory; and the
engine never decodes past the duration cap whatever a header claims."""

from __future__ import annotations

import struct
import tracemalloc
from typing import Any, Callable

import numpy as np
import pytest

from anomaly_cli import errors
from anomaly_cli.adapters.storage import CHUNK_BYTES, Fetcher
from tests.corpus.hostile import HostileServer

CAP = 1024 * 1024


@pytest.fixture
def fetch(make_settings: Callable, hostile: HostileServer) -> Callable[..., Any]:
    def run(url: str, s3_client: Any = None, **overrides: Any) -> Any:
        values = dict(
            audio_url_allowlist=(hostile.base, "s3://nipun-audio"),
            max_audio_bytes=CAP,
            fetch_retries=1,
            fetch_read_timeout_seconds=1.0,
            fetch_deadline_seconds=2.0,
        )
        values.update(overrides)
        return Fetcher(make_settings(**values), s3_client, sleep=lambda s: None).fetch(url)

    return run


def test_endless_stream_stops_at_the_cap(fetch: Callable, hostile: HostileServer) -> None:
    url = hostile.route("/forever.wav", "forever")
    tracemalloc.start()
    try:
        with pytest.raises(errors.TooLarge) as info:
            fetch(url, fetch_deadline_seconds=60.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not info.value.transient and "MAX_AUDIO_BYTES" in str(info.value)
    assert peak < 4 * CAP  # the chunks read so far (cap + one chunk), not the stream


def test_announced_giant_length_is_refused_before_the_body(fetch: Callable, hostile: HostileServer) -> None:
    url = hostile.route("/huge.wav", "huge_length")
    with pytest.raises(errors.TooLarge, match="10737418240"):
        fetch(url, fetch_deadline_seconds=60.0)


def test_dripping_server_hits_the_deadline_not_forever(fetch: Callable, hostile: HostileServer) -> None:
    url = hostile.route("/drip.wav", "drip", interval=0.1)
    with pytest.raises(errors.FetchTransient, match="deadline"):
        fetch(url, fetch_read_timeout_seconds=5.0, fetch_deadline_seconds=1.5)
    assert hostile.sent["/drip.wav"] > 1  # it was dripping, not silent: the deadline (not a timeout) ended it


def test_silent_server_hits_the_read_timeout(fetch: Callable, hostile: HostileServer) -> None:
    url = hostile.route("/never.wav", "never")
    with pytest.raises(errors.FetchTransient):
        fetch(url, fetch_read_timeout_seconds=0.5, fetch_deadline_seconds=5.0)


def test_s3_object_over_the_cap_is_refused(fetch: Callable, s3_client: Any) -> None:
    s3_client.create_bucket(Bucket="nipun-audio", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.put_object(Bucket="nipun-audio", Key="big.wav", Body=b"\0" * (CAP + CHUNK_BYTES))
    s3_client.put_object(Bucket="nipun-audio", Key="fits.wav", Body=b"\0" * CAP)
    with pytest.raises(errors.TooLarge):
        fetch("s3://nipun-audio/big.wav", s3_client)
    assert len(fetch("s3://nipun-audio/fits.wav", s3_client).data) == CAP  # the cap itself is allowed


def test_duration_cap_holds_against_a_lying_header(engine_model: Any) -> None:
    """A WAV that claims 2 hours and really holds 90 s, screened with a 20 s cap: ``too_long``,
    decoding stopped at the cap (memory bounded by the cap at 16 kHz, not by the claim)."""
    from anomaly_cli.audio.formats import encode
    from anomaly_cli.model.engine import screen_bytes

    rate = 8000
    x = (0.1 * np.sin(np.arange(rate * 90) * 2 * np.pi * 220 / rate)).astype(np.float32)
    data = bytearray(encode(x, rate, "wav"))
    claim = 7200 * rate * 2
    struct.pack_into("<I", data, 4, claim + 36)
    struct.pack_into("<I", data, 40, claim)
    tracemalloc.start()
    try:
        s = screen_bytes(bytes(data), engine_model, max_duration_s=20.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert s.status == "failed" and s.reason_codes == ["too_long"] and s.error["code"] == "duration_over_cap"
    assert s.audio["duration_s"] == pytest.approx(20.0, abs=0.01)
    assert peak < 40e6  # 2 h at 16 kHz float32 would be 460 MB
