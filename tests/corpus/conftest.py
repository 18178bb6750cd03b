"""Corpus kit: the real screening model, a hostile HTTP server, and a real worker on moto SQS
and the Mongo double (only the clients are test doubles; the wiring is ``build_worker``'s)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.corpus.hostile import HostileServer

MODELS = Path(__file__).resolve().parents[2] / "anomaly_cli" / "models"


@pytest.fixture(scope="session")
def engine_model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The shipped model when ``anomaly_cli/models/`` holds one; otherwise a small one trained now (same
    code path as ``anomaly model train --synthetic``), so the corpus runs the real engine."""
    from anomaly_cli.model import artifacts
    from anomaly_cli.model.engine import load_model

    if artifacts.list_versions(MODELS):
        return load_model(MODELS)
    from anomaly_cli.model.train import train

    out = tmp_path_factory.mktemp("models") / "corpus-v1"
    train(out, synthetic=20, seed=7)
    return load_model(out.parent)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


@dataclass(frozen=True)
class CorpusWorld:
    """What a module's one shared worker run talks to: moto SQS and S3 (in process), the Mongo
    double's ``nipun`` database, and the hostile HTTP server."""

    sqs: Any
    s3: Any
    db: Any
    server: HostileServer


@pytest.fixture(scope="module")
def corpus_world() -> Iterator[CorpusWorld]:
    """A fresh :class:`CorpusWorld` per test module, ambient AWS settings cleared (see
    :func:`clean_aws_env`); clients are made after ``mock_aws()`` starts."""
    import boto3
    import mongomock_ng
    from moto import mock_aws

    creds = dict(region_name="ap-south-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    with clean_aws_env(), mock_aws(), HostileServer() as srv:
        yield CorpusWorld(
            sqs=boto3.client("sqs", **creds),
            s3=boto3.client("s3", **creds),
            db=mongomock_ng.MongoClient(tz_aware=True)["nipun"],
            server=srv,
        )


class Until:
    """Stop policy: end the run cleanly once ``done()`` holds (checked at most every 0.2 s), or
    at a generous deadline so a broken build fails its assertions instead of hanging."""

    def __init__(self, done: Callable[[], bool], deadline_s: float = 60.0):
        self.done = done
        self.deadline = time.monotonic() + deadline_s
        self._next = 0.0
        self._last = False

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        now = time.monotonic()
        if now >= self.deadline:
            return True
        if now >= self._next:
            self._next = now + 0.2
            self._last = bool(self.done())
        return self._last

    def receive_budget(self, received: int) -> int | None:
        return None


@contextlib.contextmanager
def clean_aws_env() -> Iterator[None]:
    """For module-scoped runs (the autouse ``aws_env`` is per test): no ambient AWS endpoint,
    profile or keys from the developer's shell may reach the moto-backed clients."""
    with pytest.MonkeyPatch.context() as mp:
        for var in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_SQS",
            "AWS_ENDPOINT_URL_S3",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
        ):
            mp.delenv(var, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "ap-south-1")
        yield


def run_worker(settings: Any, *, sqs_client: Any, db: Any, model: Any, policy: Any, s3_client: Any = None) -> Any:
    """Build the worker exactly as ``anomaly work`` does (``build_worker``) with the real engine
    screening in-thread, run it to its policy, and return its report."""
    from anomaly_cli.model.engine import screen_bytes
    from anomaly_cli.worker.factory import build_worker

    def screen(data: bytes) -> Any:
        return screen_bytes(data, model, max_duration_s=settings.max_duration_seconds)

    worker = build_worker(
        settings,
        sqs_client=sqs_client,
        db=db,
        model_version=model.version,
        screen=screen,
        policy=policy,
        worker_id="corpus-worker",
        s3_client=s3_client,
    )
    return worker.run()
