"""Realistic source fixtures for discovery: several assessments per student, both record types,
other subjects (गणित), ties, a subject id present in both records, malformed rows and
documents, local-midnight dates."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, Callable

import pytest
from bson import ObjectId

READING = "वाचन"
MATH = "गणित"
UTC = dt.timezone.utc
DAY = "2025-12-20"
_ids = itertools.count(1)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 20) -> dt.datetime:
    """A UTC timestamp on December ``day`` 2025."""
    return dt.datetime(2025, 12, day, hour, minute, second, tzinfo=UTC)


def subject(
    name: str = READING, *, sid: Any = None, url: Any = "auto", created: Any = None, **extra: Any
) -> dict[str, Any]:
    """One raw subject row as phones write it."""
    sid = sid if sid is not None else f"sub-{next(_ids):05d}"
    row: dict[str, Any] = {"subject_id": sid, "subject_name": name}
    if url == "auto":
        url = f"s3://nipun-audio/{DAY}/{sid}/reading.m4a"
    if url is not None:
        row["audio_url"] = url
    if created is not None:
        row["subject_created_at"] = created
    row.update(extra)
    return row


def assessment(test_date: Any = None, teacher: list | None = None, admin: list | None = None) -> dict[str, Any]:
    a: dict[str, Any] = {"test_date": test_date if test_date is not None else dt.datetime(2025, 12, 20, tzinfo=UTC)}
    if teacher is not None:
        a["teacher_record"] = {"subjects": teacher}
    if admin is not None:
        a["admin_record"] = {"subjects": admin}
    return a


def student_doc(*assessments: dict[str, Any], oid: ObjectId | None = None, **root: Any) -> dict[str, Any]:
    n = next(_ids)
    doc = {
        "_id": oid or ObjectId(),
        "student_id": f"STU-27-{n:07d}",
        "udise": "27251200104",
        "grade": 3,
        "assessments": list(assessments),
    }
    doc.update(root)
    return doc


@pytest.fixture
def source(mongo: Any) -> Any:
    return mongo["nipun"]["student_assessment_record"]


@pytest.fixture
def seed_bulk(source: Any) -> Callable[..., list[dict[str, Any]]]:
    """Insert ``n`` students, each with one teacher and one admin reading row on DAY (2 rows
    each) plus a math row, timestamps one second apart; returns the documents."""

    def factory(n: int, *, start: dt.datetime | None = None, tie_every: int = 0) -> list[dict[str, Any]]:
        t0 = start or at(4)
        docs = []
        for i in range(n):
            ts = t0 + dt.timedelta(seconds=(i // tie_every if tie_every else i))
            docs.append(
                student_doc(
                    assessment(
                        teacher=[subject(created=ts), subject(MATH, created=ts)],
                        admin=[subject(created=ts + dt.timedelta(hours=5))],
                    )
                )
            )
        source.insert_many(docs)
        return docs

    return factory


class FakeClock:
    """An injectable clock the test moves by hand."""

    def __init__(self, start: dt.datetime | None = None):
        self.now = start or dt.datetime(2025, 12, 21, 6, 0, tzinfo=UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


class StopWhenIdle:
    """A stop flag that asks an incremental run to stop the first time it would sleep for its poll
    interval (incremental runs otherwise poll forever, as they should). The short waits of a retry
    (a backoff of under :data:`BACKOFF` seconds) pass at once and stop nothing, as a real
    ``Event.wait`` returns False when no signal came."""

    BACKOFF = 5.0

    def __init__(self) -> None:
        self.waits: list[float | None] = []
        self.backoffs: list[float] = []

    def is_set(self) -> bool:
        return bool(self.waits)

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None and timeout < self.BACKOFF:
            self.backoffs.append(timeout)
            return False
        self.waits.append(timeout)
        return True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue_url(make_queue: Callable[..., str]) -> str:
    return make_queue()


@pytest.fixture
def make_service(mongo: Any, make_settings: Callable[..., Any], sqs_client: Any, queue_url: str) -> Callable[..., Any]:
    """Build a DiscoveryService on the Mongo double and moto SQS; settings as keyword args."""
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service

    def factory(
        *,
        client: Any = None,
        url: str | None = None,
        stop: Any = None,
        clock: Any = None,
        holder: str | None = None,
        **values: Any,
    ) -> Any:
        values.setdefault("test_date", DAY)
        values.setdefault("sqs_queue_url", url or queue_url)
        settings = make_settings(**values)
        queue = SqsQueue(client or sqs_client, settings.sqs_queue_url, sleep=lambda s: None)
        kw: dict[str, Any] = {"holder": holder} if holder else {}
        if clock is not None:
            kw["clock"] = clock
        return build_service(settings, mongo["nipun"], queue, stop=stop if stop is not None else StopWhenIdle(), **kw)

    return factory


def bodies(sqs_client: Any, url: str) -> list[dict[str, Any]]:
    """Every message body on the queue (drained), parsed."""
    import json

    from tests.conftest import drain_queue

    return [json.loads(m["Body"]) for m in drain_queue(sqs_client, url, max_rounds=500)]
