"""GIVEN every bad recording of the corpus served by a hostile local HTTP server, as ad-hoc work
items on moto SQS WHEN one real worker (real fetcher, real engine) consumes them THEN each ends as
the corpus table says: a terminal, explained result that is acked, or (only for what may heal:
timeouts, 5xx) no result, unacked with a retry visibility; the worker never dies and nothing is
dropped silently."""

from __future__ import annotations

import io
import struct
import uuid
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from anomaly_cli.contract import WorkItem
from anomaly_cli.worker.shutdown import MaxMessages
from tests.conftest import Events, capture_events, queue_counts
from tests.corpus.cases import AUDIO, Case, of_kind, param
from tests.corpus.conftest import CorpusWorld, run_worker
from tests.corpus.test_messages import valid_item

MAX_BYTES = 8 * 1024 * 1024  # the 2-hour FLAC (~7.4 MB) fits; its duration is what is capped
MAX_DURATION = 30.0
BUCKET = "corpus-audio"


def speech(seconds: float, rate: int = 16000, seed: int = 5) -> np.ndarray:
    from anomaly_cli import synth
    from anomaly_cli.audio.resample import resample

    clip = synth.make_clip("normal", np.random.default_rng(seed), variant="plain", duration_s=max(seconds, 1.0))
    x = clip.samples[: int(seconds * clip.sr)] if seconds < 1.0 else clip.samples
    return resample(x, clip.sr, rate) if rate != clip.sr else x


def enc(x: np.ndarray, rate: int, fmt: str, **kw: Any) -> bytes:
    from anomaly_cli.audio.formats import encode

    return encode(x, rate, fmt, **kw)


def _float_wav(bad: float) -> bytes:
    x = speech(3.0).copy()
    x[16000] = bad
    return enc(x, 16000, "wav", subtype="FLOAT")


def _two_hours_header() -> bytes:
    data = bytearray(enc(speech(3.0, 48000), 48000, "wav"))
    two_hours = 7200 * 48000 * 2
    struct.pack_into("<I", data, 4, two_hours + 36)
    struct.pack_into("<I", data, 40, two_hours)
    return bytes(data)


def _two_hours_stream() -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=8000, channels=1, format="FLAC", subtype="PCM_16") as f:
        minute = np.zeros((8000 * 60, 1), np.float32)
        minute[::800] = 0.25
        for _ in range(120):
            f.write(minute)
    return buf.getvalue()


def _unsupported_rate() -> bytes:
    data = bytearray(enc(speech(1.0), 16000, "wav"))
    struct.pack_into("<II", data, 24, 1000, 2000)
    return bytes(data)


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


HTML = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1></body></html>"
)
ID3_ONLY = b"ID3\x04\x00\x00" + bytes([0, 0, 1, 0]) + b"TIT2" + b"\x00" * 124

# case id -> (route kind, body factory, path suffix)
ROUTES: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "aud_empty": ("bytes", lambda: b"", ".wav"),
    "aud_html_error_page": ("bytes", lambda: HTML, ".wav"),
    "aud_random_bytes": ("bytes", lambda: np.random.default_rng(7).bytes(20_000), ".m4a"),
    "aud_truncated_wav": ("bytes", lambda: _half(enc(speech(6.0), 16000, "wav")), ".wav"),
    "aud_truncated_mp3": ("bytes", lambda: _half(enc(speech(6.0, 22050), 22050, "mp3")), ".mp3"),
    "aud_truncated_m4a": ("bytes", lambda: _half(enc(speech(6.0), 16000, "m4a", faststart=False)), ".m4a"),
    "aud_wrong_extension": ("bytes", lambda: enc(speech(5.0, 22050), 22050, "mp3"), ".wav"),
    "aud_id3_only": ("bytes", lambda: ID3_ONLY, ".mp3"),
    "aud_0_1s": ("bytes", lambda: enc(speech(0.1), 16000, "wav"), ".wav"),
    "aud_two_hours_header": ("bytes", _two_hours_header, ".wav"),
    "aud_two_hours_stream": ("bytes", _two_hours_stream, ".flac"),
    "aud_8khz": ("bytes", lambda: enc(speech(5.0, 8000), 8000, "wav"), ".wav"),
    "aud_96khz": ("bytes", lambda: enc(speech(5.0, 96000), 96000, "wav"), ".wav"),
    "aud_6_channels": ("bytes", lambda: enc(np.tile(speech(5.0)[:, None], (1, 6)), 16000, "wav", channels=6), ".wav"),
    "aud_float_nan": ("bytes", lambda: _float_wav(np.nan), ".wav"),
    "aud_float_inf": ("bytes", lambda: _float_wav(np.inf), ".wav"),
    "aud_dc_offset": ("bytes", lambda: enc(np.clip(speech(5.0) * 0.5 + 0.3, -1, 1), 16000, "wav"), ".wav"),
    "aud_unsupported_rate": ("bytes", _unsupported_rate, ".wav"),
    "aud_http_404": ("missing", lambda: b"", ".wav"),
    "aud_s3_no_such_key": ("s3missing", lambda: b"", ".m4a"),
    "aud_s3_xml_error_object": (
        "s3",
        lambda: (
            b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
            b"<Message>Access Denied</Message></Error>"
        ),
        ".m4a",
    ),
    "aud_s3_other_bucket": ("s3other", lambda: b"", ".m4a"),
    "aud_streams_forever": ("forever", lambda: b"", ".wav"),
    "aud_huge_content_length": ("huge_length", lambda: b"", ".wav"),
    "aud_drips_forever": ("drip", lambda: b"", ".wav"),
    "aud_never_answers": ("never", lambda: b"", ".wav"),
    "aud_http_503": ("status503", lambda: b"busy", ".wav"),
}


class Run:
    def __init__(self) -> None:
        self.items: dict[str, WorkItem] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.report: Any = None
        self.events = Events()
        self.counts: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        self.s3_requests: list[str] = []


@pytest.fixture(scope="module")
def run(engine_model: Any, corpus_world: CorpusWorld) -> Iterator[Run]:
    from anomaly_cli.config import load_settings

    r = Run()
    sqs, s3, db, srv = corpus_world.sqs, corpus_world.s3, corpus_world.db, corpus_world.server
    with capture_events(r.events):
        url = sqs.create_queue(QueueName="corpus-audio", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        for bucket in (BUCKET, "other-bucket"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
        s3_requests: list[str] = []
        for n, case in enumerate(of_kind(AUDIO)):
            kind, body, suffix = ROUTES[case.id]
            path = f"/{case.id}{suffix}"
            if kind == "status503":
                audio = srv.route(path, "bytes", body(), status=503)
            elif kind == "missing":
                audio = srv.base + path
            elif kind == "s3":
                s3.put_object(Bucket=BUCKET, Key=path.lstrip("/"), Body=body())
                audio = f"s3://{BUCKET}{path}"
            elif kind == "s3missing":
                audio = f"s3://{BUCKET}{path}"
            elif kind == "s3other":
                s3.put_object(Bucket="other-bucket", Key=path.lstrip("/"), Body=b"RIFF")
                audio = f"s3://other-bucket{path}"
            else:
                audio = srv.route(path, kind, body())
            item = valid_item(audio, subject_id=f"{case.id}-{n}", mongo_doc_id=f"adhoc-{uuid.uuid4().hex[:8]}")
            r.items[case.id] = item
            sqs.send_message(QueueUrl=url, MessageBody=item.to_body())
        settings = load_settings(
            dict(
                sqs_queue_url=url,
                mongo_uri="mongomock://unused",
                audio_url_allowlist=(srv.base, f"s3://{BUCKET}"),
                batch_size=6,
                max_concurrency=8,
                flush_seconds=0.2,
                sqs_wait_seconds=0,
                visibility_timeout_seconds=30,
                fetch_retries=1,
                fetch_connect_timeout_seconds=3.0,
                fetch_read_timeout_seconds=3.0,
                fetch_deadline_seconds=6.0,
                max_audio_bytes=MAX_BYTES,
                max_duration_seconds=MAX_DURATION,
                throughput_log_seconds=5.0,
            ),
            environ={"AWS_REGION": "ap-south-1"},
            env_file=None,
        )
        s3.meta.events.register("before-send", lambda request, **kw: s3_requests.append(request.url))
        r.report = run_worker(
            settings, sqs_client=sqs, db=db, model=engine_model, policy=MaxMessages(len(r.items)), s3_client=s3
        )
        r.docs = {d["source"]["subject_id"]: d for d in db["anomaly_detection_results"].find({})}
        r.counts = queue_counts(sqs, url)
        r.hits = dict(srv.hits)
        r.s3_requests = s3_requests
    yield r


def test_every_audio_case_has_a_route() -> None:
    assert {c.id for c in of_kind(AUDIO)} == set(ROUTES)


def test_the_worker_survived_and_dropped_nothing(run: Run) -> None:
    assert run.report.error is None and run.report.reason == "max_messages"
    transient = [c for c in of_kind(AUDIO) if c.status == "transient"]
    # every item: a result (acked) or still in the queue awaiting its retry; none lost
    assert len(run.docs) == len(of_kind(AUDIO)) - len(transient)
    assert run.counts == {"visible": 0, "in_flight": len(transient)}
    assert run.report.stats["acked"] == len(run.docs)


@param(of_kind(AUDIO))
def test_audio_case(case: Case, run: Run) -> None:
    item = run.items[case.id]
    doc = run.docs.get(item.subject_id)
    if case.status == "transient":
        assert doc is None
        failed = [f for f in run.events.named("item_failed_pre_inference") if f.get("result_id") == item.result_id]
        assert failed and failed[0]["terminal"] is False and failed[0]["stage"] == "fetch"
        assert failed[0]["error"] == case.code
        return
    assert doc is not None, f"no result for {case.id}"
    codes = doc["inference"]["reason_codes"]
    assert doc["processing"]["status"] == case.status, (doc["processing"], codes)
    assert doc["inference"]["is_anomaly"] is bool(codes)
    if case.status == "failed":
        assert doc["inference"]["is_anomaly"] is True
        assert doc["processing"]["error"]["code"] == case.code, doc["processing"]["error"]
        assert doc["processing"]["error"]["message"]  # explained, not just flagged
        assert codes[0] == case.reason
    else:
        assert "corrupt" not in codes and "unavailable" not in codes
        assert doc["audio"]["duration_s"] > 0
        if case.reason:
            assert case.reason in codes, codes
    if case.id == "aud_wrong_extension":
        assert doc["audio"]["format"] == "mp3"
    if case.id == "aud_6_channels":
        assert doc["audio"]["channels"] == 6
    if case.id == "aud_s3_other_bucket":
        assert run.s3_requests and not any("other-bucket" in u for u in run.s3_requests)
    if case.id == "aud_two_hours_header":
        assert doc["audio"]["duration_s"] < 10  # the 2 hours were never decoded or allocated
