"""Worker test kit: a local audio HTTP server (latency, status codes, hit counts), work-item
factories, recordings, and a builder that wires a real worker to moto SQS and the Mongo double."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from anomaly_cli.contract import WorkItem
from tests.conftest import queue_counts

TEST_DATE = "2025-12-20"


class AudioServer:
    """Serves ``files`` over HTTP on 127.0.0.1 with optional per-path delay / status."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        self.hits: Counter[str] = Counter()
        self.active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with server._lock:
                    server.hits[path] += 1
                    server.active += 1
                try:
                    time.sleep(server.delay.get(path, server.delay.get("*", 0.0)))
                    code = server.status.get(path, 200 if path in server.files else 404)
                    body = server.files.get(path, b"") if code == 200 else b"no"
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def put(self, path: str, data: bytes, *, status: int | None = None, delay: float | None = None) -> str:
        self.files[path] = data
        if status is not None:
            self.status[path] = status
        if delay is not None:
            self.delay[path] = delay
        return self.base + path


@pytest.fixture
def audio_server() -> Iterator[AudioServer]:
    srv = AudioServer()
    srv._thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def make_item(
    url: str,
    *,
    n: int = 0,
    record_type: str = "adhoc",
    mongo_doc_id: str | None = None,
    subject_id: str | None = None,
    student_id: str | None = None,
    created: dt.datetime | None = None,
    test_date: str = TEST_DATE,
) -> WorkItem:
    """A work item; ad-hoc by default (no source row behind it)."""
    created = created or dt.datetime(2025, 12, 20, 5, 0, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=n)
    return WorkItem(
        source_collection="student_assessment_record",
        mongo_doc_id=mongo_doc_id or f"adhoc-{uuid.uuid4().hex[:12]}",
        test_date=test_date,
        record_type=record_type,
        subject_id=subject_id or f"sub-{n}",
        subject_name="वाचन",
        audio_s3_url=url,
        source_updated_at=created,
        subject_created_at=created,
        student_id=student_id,
        udise=None,
        trace_id=str(uuid.uuid4()),
        discovered_at=created,
    )


@pytest.fixture(scope="session")
def recordings() -> dict[str, bytes]:
    """Real short recordings: distinct children, one re-encoded copy, silence."""
    import numpy as np

    from anomaly_cli import synth
    from anomaly_cli.audio.formats import encode

    out: dict[str, bytes] = {}
    for i in range(4):
        clip = synth.make_clip("normal", np.random.default_rng(100 + i), variant="plain", duration_s=6.0)
        out[f"child{i}.wav"] = encode(clip.samples, clip.sr, "wav")
        if i == 0:
            out["child0.m4a"] = encode(clip.samples, clip.sr, "m4a")
    silent = synth.make_clip("silent", np.random.default_rng(7), duration_s=6.0)
    out["silent.wav"] = encode(silent.samples, silent.sr, "wav")
    out["corrupt.wav"] = b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4
    return out


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The shipped model folder (``anomaly_cli/models/``; the newest version is used)."""
    return Path(__file__).resolve().parents[2] / "anomaly_cli" / "models"


@pytest.fixture(scope="session")
def loaded_model(model_dir: Path) -> Any:
    """That model, loaded once with the real engine."""
    from anomaly_cli.model.engine import load_model

    return load_model(model_dir)


class ScreenCounter:
    """The real engine, counting screenings per recording hash (redelivery tests)."""

    def __init__(self, model: Any):
        self.model = model
        self.count: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> Any:
        from anomaly_cli.model.engine import screen_bytes

        with self._lock:
            self.count[hashlib.sha256(data).hexdigest()] += 1
        return screen_bytes(data, self.model, max_duration_s=600.0)

    @property
    def total(self) -> int:
        return sum(self.count.values())


@pytest.fixture
def screen(loaded_model: Any) -> ScreenCounter:
    return ScreenCounter(loaded_model)


class Rig:
    """A queue, a database and a way to run a worker against them."""

    def __init__(
        self,
        sqs_client: Any,
        mongo: Any,
        make_settings: Callable[..., Any],
        queue_url: str,
        server: AudioServer,
        screen: ScreenCounter,
    ):
        self.sqs = sqs_client
        self.db = mongo["nipun"]
        self.make_settings = make_settings
        self.queue_url = queue_url
        self.server = server
        self.screen = screen

    @property
    def results(self) -> Any:
        return self.db["anomaly_detection_results"]

    def settings(self, **overrides: Any) -> Any:
        values = dict(
            sqs_queue_url=self.queue_url,
            audio_url_allowlist=(self.server.base,),
            batch_size=5,
            max_concurrency=4,
            flush_seconds=0.2,
            sqs_wait_seconds=0,
            visibility_timeout_seconds=30,
            fetch_retries=1,
            fetch_deadline_seconds=30.0,
            fetch_read_timeout_seconds=15.0,
            throughput_log_seconds=0.5,
            mongo_uri="mongomock://unused",
        )
        values.update(overrides)
        return self.make_settings(**values)

    def send(self, item: WorkItem, *, rescreen: bool = False, body: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": body if body is not None else item.to_body(),
        }
        if rescreen:
            kwargs["MessageAttributes"] = {"rescreen": {"DataType": "String", "StringValue": "true"}}
        return self.sqs.send_message(**kwargs)["MessageId"]

    def worker(self, *, settings: Any = None, policy: Any = None, queue: Any = None, db: Any = None, **kw: Any) -> Any:
        from anomaly_cli.worker.factory import build_worker
        from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown

        return build_worker(
            settings or self.settings(),
            sqs_client=self.sqs,
            db=db if db is not None else self.db,
            model_version=self.screen.model.version,
            screen=self.screen,
            queue=queue,
            policy=policy or AnyOf((IdleShutdown(1.0),)),
            worker_id="test-worker",
            **kw,
        )

    def run(self, **kw: Any) -> Any:
        return self.worker(**kw).run()

    def visible(self) -> list[dict[str, Any]]:
        """Messages receivable now (they are put back at once)."""
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageSystemAttributeNames=["All"]
        )
        msgs = resp.get("Messages", [])
        if msgs:
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(msgs)
                ],
            )
        return msgs

    def counts(self) -> dict[str, int]:
        return queue_counts(self.sqs, self.queue_url)


@pytest.fixture
def rig(
    sqs_client: Any, mongo: Any, make_settings: Any, make_queue: Any, audio_server: AudioServer, screen: ScreenCounter
) -> Rig:
    return Rig(sqs_client, mongo, make_settings, make_queue(visibility=30), audio_server, screen)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy or a generous deadline (never asserts a speed)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
