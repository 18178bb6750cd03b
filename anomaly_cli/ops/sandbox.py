"""The sandbox: the embedded stack kept alive in one process, so commands can be run one by one.

``MONGO_URI=mongomock://`` is an in-process double: its data lives as long as the process that
made it, so ``anomaly discover`` followed by a separate ``anomaly state show`` finds nothing.
The sandbox is the process that keeps it: a moto server over real HTTP (SQS + S3, reachable
from other terminals with the AWS CLI or boto3), the Mongo double, a work queue with its
dead-letter queue, a bucket, and optionally the demo's generated world or the user's own
source documents and recordings. Commands run inside it exactly as against production: they
read their settings from the environment, which the sandbox points at itself
(:meth:`SandboxInfo.environment`).

Decisions: the credentials are throwaway values that only the local moto server accepts (safe
to print, so another terminal can use them); every setting that points at infrastructure is
replaced (a ``.env`` that names a production queue cannot leak into the sandbox); recordings
the user hands in are uploaded under their path relative to the folder given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from anomaly_cli.config import Settings
from anomaly_cli.errors import ConfigError
from anomaly_cli.log import get_logger

if TYPE_CHECKING:
    from anomaly_cli.adapters.protocols import Database, S3Client, SqsClient
    from anomaly_cli.ops.demo import Phase  # the demo's progress callback: the sandbox hands it on

log = get_logger("sandbox")
BUCKET = "anomaly-sandbox"
QUEUE = "anomaly-sandbox"
DLQ = "anomaly-sandbox-dlq"
MONGO_URI = "mongomock://sandbox"
ACCESS_KEY = "sandbox"
SECRET_KEY = "sandbox-secret"
#: the redrive limit of the sandbox's queue (as a production queue would have one)
MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class SandboxInfo:
    """Where the sandbox's services are, and how another terminal reaches them."""

    endpoint: str
    region: str
    queue_url: str
    dlq_url: str
    bucket: str = BUCKET
    mongo_uri: str = MONGO_URI
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    allowlist: tuple[str, ...] = (f"s3://{BUCKET}",)
    loaded: dict[str, int] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The variables that point every command (and the AWS CLI / boto3) at the sandbox."""
        return {
            "MONGO_URI": self.mongo_uri,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "SQS_QUEUE_URL": self.queue_url,
            "SQS_DLQ_URL": self.dlq_url,
            "AUDIO_URL_ALLOWLIST": ",".join(self.allowlist),
        }


class Sandbox:
    """Start with :meth:`start` (or ``with Sandbox(settings) as sb``); everything vanishes at :meth:`stop`."""

    def __init__(self, base: Settings):
        self.base = base
        self._server: Any = None
        self._session: Any = None
        self.info: SandboxInfo | None = None
        self.loaded: dict[str, int] = {}

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- life cycle ----------------------------------------------------------------------------
    def start(self) -> SandboxInfo:
        """Start the moto server, make the queues and the bucket."""
        import logging
        import warnings

        import boto3

        from anomaly_cli.extras import require_demo

        require_demo("anomaly sandbox")
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per HTTP request otherwise
        warnings.filterwarnings("ignore", message=".*no-op in mongomock", category=UserWarning)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        region = self.base.aws_region
        self._session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=region
        )
        sqs = self.client("sqs", endpoint)
        dlq = sqs.create_queue(QueueName=DLQ, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(
            QueueName=QUEUE,
            Attributes={
                "VisibilityTimeout": str(self.base.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
            },
        )["QueueUrl"]
        self.client("s3", endpoint).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": region}
        )
        self.info = SandboxInfo(endpoint=endpoint, region=region, queue_url=queue, dlq_url=dlq)
        log.info("sandbox_started", endpoint=endpoint, queue_url=queue, bucket=BUCKET, mongo_uri=MONGO_URI)
        return self.info

    def stop(self) -> None:
        """Stop the moto server (the Mongo double goes with the process)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @overload
    def client(self, service: Literal["sqs"], endpoint: str | None = None) -> SqsClient: ...
    @overload
    def client(self, service: Literal["s3"], endpoint: str | None = None) -> S3Client: ...
    def client(self, service: Literal["sqs", "s3"], endpoint: str | None = None) -> SqsClient | S3Client:
        """A boto3 client of the sandbox (its endpoint, its throwaway credentials)."""
        assert self._session is not None, "start() first"
        client: SqsClient | S3Client = self._session.client(service, endpoint_url=endpoint or self._require().endpoint)
        return client

    def _require(self) -> SandboxInfo:
        if self.info is None:
            raise RuntimeError("the sandbox is not started")
        return self.info

    def db(self) -> Database:
        """The sandbox's database (the same in-process double every command in it uses)."""
        from anomaly_cli.adapters.mongo import connect

        return connect(MONGO_URI)[self.base.mongo_db_name]

    # ----- what it holds -------------------------------------------------------------------------
    def load_source(self, path: str | Path) -> int:
        """Insert the documents of a JSON / Extended-JSON file into the source collection.

        The file holds an array of documents, one document, ``{"documents": [...]}``, or one
        document per line; ``{"$oid": ...}`` and ``{"$date": ...}`` become ObjectIds and dates.
        """
        docs = read_documents(path)
        if docs:
            self.db()[self.base.mongo_source_collection].insert_many(docs)
        self.loaded["source documents"] = self.loaded.get("source documents", 0) + len(docs)
        log.info("sandbox_source_loaded", file=str(path), documents=len(docs))
        return len(docs)

    def upload_audio(self, folder: str | Path) -> list[str]:
        """Upload every file under ``folder`` to the sandbox's bucket, keyed by its relative path."""
        root = Path(folder)
        if not root.is_dir():
            raise ConfigError(f"--audio {folder}: not a folder", field="--audio")
        s3 = self.client("s3")
        urls = []
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            key = f.relative_to(root).as_posix()
            s3.upload_file(str(f), BUCKET, key)
            urls.append(f"s3://{BUCKET}/{key}")
        self.loaded["recordings"] = self.loaded.get("recordings", 0) + len(urls)
        log.info("sandbox_audio_uploaded", folder=str(root), recordings=len(urls))
        return urls

    def load_demo(self, students: int, seed: int, on_phase: Phase | None = None) -> dict[str, Any]:
        """The demo's generated world: its source documents in the double, its recordings in S3."""
        import datetime as dt

        from anomaly_cli.ops import demo

        docs, planted, blobs = demo.build_world(
            students,
            seed,
            source_collection=self.base.mongo_source_collection,
            clock_start=dt.datetime(2025, 12, 20, 4, 30, tzinfo=dt.UTC),
            on_phase=on_phase,
        )
        s3 = self.client("s3")
        s3.create_bucket(Bucket=demo.BUCKET, CreateBucketConfiguration={"LocationConstraint": self.base.aws_region})
        demo.upload(s3, blobs, on_phase)
        self.db()[self.base.mongo_source_collection].insert_many(docs)
        info = self._require()
        self.info = SandboxInfo(**{**info.__dict__, "allowlist": (*info.allowlist, f"s3://{demo.BUCKET}")})
        self.loaded["source documents"] = self.loaded.get("source documents", 0) + len(docs)
        self.loaded["recordings"] = self.loaded.get("recordings", 0) + len(blobs)
        return {"test_date": demo.TEST_DATE, "documents": len(docs), "recordings": len(blobs)}


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """Documents of a JSON / Extended-JSON file (array, single document, ``documents`` key, or JSON lines)."""
    from bson import json_util

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--source {path}: cannot read it ({e.strerror})", field="--source") from e
    try:
        data = json_util.loads(text) if text.strip() else []
    except ValueError:
        try:  # one document per line
            data = [json_util.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as e:
            raise ConfigError(f"--source {path}: not JSON or Extended JSON ({e})", field="--source") from e
    if isinstance(data, dict):
        data = data["documents"] if isinstance(data.get("documents"), list) else [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ConfigError(f"--source {path}: expected documents (JSON objects)", field="--source")
    return data


def apply_environment(env: dict[str, str]) -> Callable[[], None]:
    """Point this process's environment at the sandbox; returns a function that restores it.

    The commands run in the sandbox read their settings exactly as in production, from the
    environment; this is the one place that writes it, for the sandbox's own process only.
    """
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)

    def restore() -> None:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    return restore
