"""Shared fixtures: fake AWS credentials, a fresh Mongo double, moto SQS/S3 (in-process and
over HTTP), and a settings factory. Tests never write ``os.environ`` directly."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
from typing import Any, Callable, Iterator

import pytest

from anomaly_cli.config import Settings, load_settings

_counter = itertools.count()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Fake credentials and region; no ambient settings leak in from the developer's shell."""
    for var in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "SQS_QUEUE_URL",
        "MONGO_URI",
        "TEST_DATE",
        "AUDIO_URL_ALLOWLIST",
        "MODEL_DIR",
        "MODEL_VERSION",
        "ANOMALY_ENV_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key-do-not-log")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.chdir(tmp_path)  # no stray .env from the repository


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Settings from explicit values (as flags), ignoring any .env and the process env."""

    def factory(**values: Any) -> Settings:
        env = {"AWS_REGION": "ap-south-1"}
        return load_settings(values, environ=env, env_file=None)

    return factory


@pytest.fixture
def mongo() -> Iterator[Any]:
    """A fresh in-memory MongoDB double (mongomock-ng)."""
    import mongomock_ng

    client = mongomock_ng.MongoClient(tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def embedded_mongo_uri() -> str:
    """A unique ``mongomock://`` URI (the embedded backend) for tests that go through settings."""
    return f"mongomock://test-{next(_counter)}-{dt.datetime.now().timestamp()}"


@pytest.fixture
def moto_aws() -> Iterator[None]:
    """moto in-process for SQS and S3."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def sqs_client(moto_aws: None) -> Any:
    import boto3

    return boto3.client("sqs", region_name="ap-south-1")


@pytest.fixture
def s3_client(moto_aws: None) -> Any:
    import boto3

    return boto3.client("s3", region_name="ap-south-1")


@pytest.fixture
def make_queue(sqs_client: Any) -> Callable[..., str]:
    """Create a queue (optionally FIFO, optionally with a DLQ); returns its URL."""

    def factory(
        name: str | None = None, *, fifo: bool = False, dlq: bool = False, max_receive: int = 5, visibility: int = 30
    ) -> str:
        name = name or f"q{next(_counter)}"
        attrs: dict[str, str] = {"VisibilityTimeout": str(visibility)}
        if fifo:
            name += ".fifo"
            attrs["FifoQueue"] = "true"
        if dlq:
            dlq_name = name.replace(".fifo", "") + "-dlq" + (".fifo" if fifo else "")
            dlq_attrs = {"FifoQueue": "true"} if fifo else {}
            dlq_url = sqs_client.create_queue(QueueName=dlq_name, Attributes=dlq_attrs)["QueueUrl"]
            arn = sqs_client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive)})
        return sqs_client.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]

    return factory


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server over real HTTP on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def drain_queue(sqs_client: Any, url: str, *, max_rounds: int = 50) -> list[dict[str, Any]]:
    """Receive (and delete) everything visible on a queue; for assertions."""
    got: list[dict[str, Any]] = []
    for _ in range(max_rounds):
        resp = sqs_client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        msgs = resp.get("Messages", [])
        if not msgs:
            break
        got.extend(msgs)
        sqs_client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        )
    return got


class Events(logging.Handler):
    """Captures the JSON event loggers' records: ``events.named("results_upserted")``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.levels: list[int] = []  # the level of each record, in the same order

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((getattr(record, "event", record.getMessage()), dict(getattr(record, "fields", {}) or {})))
        self.levels.append(record.levelno)

    def names_at(self, level: int) -> list[str]:
        """Names of the events logged at ``level`` or above (what a log at that level shows)."""
        return [e for (e, _), lv in zip(self.records, self.levels) if lv >= level]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [f for e, f in self.records if e == name]

    def names(self) -> list[str]:
        return [e for e, _ in self.records]


@contextlib.contextmanager
def capture_events(handler: Events) -> Iterator[Events]:
    """Attach ``handler`` to the ``anomaly`` loggers at DEBUG for the block; restore them after."""
    logger = logging.getLogger("anomaly")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


@pytest.fixture
def events() -> Iterator[Events]:
    """Every event the ``anomaly`` loggers emit during the test, at DEBUG."""
    with capture_events(Events()) as handler:
        yield handler


def queue_counts(sqs_client: Any, url: str) -> dict[str, int]:
    """The queue's approximate counts: ``visible`` (receivable) and ``in_flight`` (held by someone)."""
    a = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {
        "visible": int(a["ApproximateNumberOfMessages"]),
        "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"]),
    }
