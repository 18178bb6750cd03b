"""Discovery against the failures a production replica set and SQS produce (issue 18).

GIVEN a source of a few hundred reading rows, WHEN the aggregation cursor dies at random pages
(``CursorNotFound`` after MongoDB's idle-cursor timeout, a network error when the secondary it
reads from fails over) or SQS throttles / answers 5xx for minutes, THEN discovery reopens its
cursor strictly after the last decided row and goes on: every row is sent exactly once (no row
skipped, none sent twice), the watermark ends on the last row and never passes an unsent one.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from typing import Any, Callable, Iterator

import pytest

from tests.discovery.conftest import DAY, FakeClock, bodies, make_service, queue_url, seed_bulk, source  # noqa: F401 - fixtures
from tests.faults.sqsfaults import FaultySqs

IDLE_CURSOR_TIMEOUT = dt.timedelta(minutes=10)  # MongoDB's default cursorTimeoutMillis
POLL = 3600.0  # the incremental runs' poll interval here: longer than any backoff


class StopAtPoll:
    """A stop flag that lets short waits (backoffs) pass at once, advancing ``clock`` when given,
    and stops an incremental run the first time it would sleep for its poll interval."""

    def __init__(self, clock: FakeClock | None = None, poll: float = POLL):
        self.clock, self.poll, self.stopped, self.waits = clock, poll, False, []

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        if self.clock is not None and timeout:
            self.clock.advance(timeout)
        self.stopped = timeout is None or timeout >= self.poll
        return self.stopped


def cursor_not_found() -> Exception:
    from pymongo.errors import CursorNotFound

    return CursorNotFound("cursor id 8423476129 not found", 43, {"ok": 0, "code": 43, "codeName": "CursorNotFound"})


def network_error() -> Exception:
    from pymongo.errors import AutoReconnect

    return AutoReconnect("secondary.example:27017: connection closed (the member stepped down)")


class DyingSource:
    """The real source collection, whose aggregation cursors die: once at each row position of
    ``kill_at`` (counted over all cursors of the run, the error from ``make_error``), and whenever
    the injected ``clock`` shows a cursor idle for longer than MongoDB's idle-cursor timeout."""

    def __init__(
        self,
        real: Any,
        *,
        kill_at: set[int] = frozenset(),  # type: ignore[assignment]
        make_error: Callable[[int], Exception] = lambda n: cursor_not_found(),
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.real, self.kill_at, self.make_error, self.clock = real, set(kill_at), make_error, clock
        self.rows = 0
        self.opened = 0
        self.killed: Counter[str] = Counter()

    def aggregate(self, pipeline: list[dict[str, Any]], **kw: Any) -> Iterator[dict[str, Any]]:
        self.opened += 1
        return self._rows(self.real.aggregate(pipeline, **kw))

    def _rows(self, cursor: Any) -> Iterator[dict[str, Any]]:
        last = self.clock() if self.clock else None
        for doc in cursor:
            if self.clock is not None:
                now = self.clock()
                if now - last > IDLE_CURSOR_TIMEOUT:
                    self.killed["idle_timeout"] += 1
                    raise cursor_not_found()
                last = now
            self.rows += 1
            if self.rows in self.kill_at:
                self.kill_at.discard(self.rows)
                err = self.make_error(self.rows)
                self.killed[type(err).__name__] += 1
                raise err
            yield doc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def rows_sent(sqs_client: Any, url: str) -> Counter[tuple[str, str, str]]:
    return Counter((b["mongo_doc_id"], b["record_type"], b["subject_id"]) for b in bodies(sqs_client, url))


@pytest.mark.parametrize("seed", range(6))
def test_cursor_dying_at_random_pages_reopens_after_the_watermark_and_sends_every_row_once(
    seed, seed_bulk, make_service, sqs_client, queue_url
):
    # GIVEN 150 students = 300 reading rows, some sharing a timestamp (ties across page edges)
    docs = seed_bulk(150, tie_every=3)
    rng = random.Random(seed)
    kills = set(rng.sample(range(2, 300), 5))
    svc = make_service(discovery_batch_size=25, stop=StopAtPoll())
    dying = DyingSource(svc.source, kill_at=kills, make_error=lambda n: rng.choice([cursor_not_found, network_error])())
    svc.source = dying
    # WHEN a backfill runs while its cursor dies five times
    report = svc.run("backfill")
    # THEN it went on from after the last decided row: each row once, the watermark on the last row
    sent = rows_sent(sqs_client, queue_url)
    assert sum(dying.killed.values()) == 5 and dying.opened == 6
    assert report.status == "completed" and report.failed == 0
    assert len(sent) == 300 and set(sent.values()) == {1}, "a row was skipped or sent twice"
    assert report.enqueued == 300 and report.fetched == 300
    expected = {(str(d["_id"]), rt, s["subject_id"]) for d in docs for rt, s in _reading_rows(d)}
    assert set(sent) == expected
    wm = svc.state.get(DAY)["watermark"]
    assert wm["last_processed_timestamp"] == max(s["subject_created_at"] for d in docs for _, s in _reading_rows(d))


def test_incremental_run_survives_a_dying_cursor_and_keeps_its_watermark_exact(
    seed_bulk, make_service, sqs_client, queue_url
):
    seed_bulk(40)
    svc = make_service(discovery_batch_size=7, stop=StopAtPoll(), poll_interval_seconds=POLL)
    svc.source = DyingSource(svc.source, kill_at={9, 30, 31}, make_error=lambda n: network_error())
    report = svc.run("incremental")
    sent = rows_sent(sqs_client, queue_url)
    assert report.status == "interrupted"  # StopWhenIdle: stops at the first sleep, after the date is read
    assert len(sent) == 80 and set(sent.values()) == {1}


def test_a_cursor_that_keeps_dying_without_progress_fails_the_run_with_the_watermark_kept(
    seed_bulk, make_service, sqs_client, queue_url
):
    from anomaly_cli.discovery.cursor import MAX_REOPENS
    from anomaly_cli.errors import MongoUnavailable

    seed_bulk(30)
    svc = make_service(discovery_batch_size=10, stop=StopAtPoll())

    class AlwaysDies(DyingSource):
        def _rows(self, cursor: Any) -> Iterator[dict[str, Any]]:
            for i, doc in enumerate(cursor):
                # inside the second page, then at once on every reopened cursor: no progress
                if i == (12 if self.opened == 1 else 1):
                    raise network_error()
                yield doc

    svc.source = AlwaysDies(svc.source)
    with pytest.raises(MongoUnavailable):
        svc.run("backfill")
    assert svc.source.opened == 1 + MAX_REOPENS  # the first cursor, then a reopen after each death but the last
    sent = rows_sent(sqs_client, queue_url)
    assert len(sent) == 10 and set(sent.values()) == {1}  # the first page, once
    assert svc.state.get(DAY)["status"] == "failed"


def test_sqs_throttling_for_minutes_backs_off_and_reopens_the_idle_cursor(
    seed_bulk, mongo, sqs_client, queue_url, make_settings
):
    """SendMessageBatch answers throttling for 12 minutes of (fake) time: discovery backs off
    instead of failing, its cursor times out while it waits and is reopened after the watermark,
    and every row is still sent exactly once."""
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service

    seed_bulk(60)
    clock = FakeClock(dt.datetime(2025, 12, 20, 12, tzinfo=dt.timezone.utc))
    outage_until = clock.now + dt.timedelta(minutes=12)

    class Outage(FaultySqs):
        def _maybe_raise(self, op: str) -> None:
            if op == "SendMessageBatch" and clock.now < outage_until:
                from tests.faults.sqsfaults import THROTTLE, client_error

                self.injected[op] += 1
                raise client_error(op, *THROTTLE)

    faulty = Outage(sqs_client, 0, ops=("SendMessageBatch",))

    def sleep(seconds: float) -> None:
        clock.advance(seconds)

    settings = make_settings(test_date=DAY, sqs_queue_url=queue_url, discovery_batch_size=20)
    svc = build_service(
        settings, mongo["nipun"], SqsQueue(faulty, queue_url, sleep=sleep), stop=StopAtPoll(clock), clock=clock
    )
    dying = DyingSource(svc.source, clock=clock)
    svc.source = dying
    report = svc.run("backfill")
    sent = rows_sent(sqs_client, queue_url)
    assert faulty.injected["SendMessageBatch"] > 0
    assert dying.killed["idle_timeout"] >= 1, "the test meant the cursor to time out while SQS pushed back"
    assert report.status == "completed" and report.failed == 0
    assert len(sent) == 120 and set(sent.values()) == {1}


def _reading_rows(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for a in doc["assessments"]:
        for rt, path in (("teacher", "teacher_record"), ("admin", "admin_record")):
            for s in a.get(path, {}).get("subjects", []):
                if s["subject_name"] == "वाचन":
                    yield rt, s


def test_sqs_outage_longer_than_the_patience_fails_the_run_with_the_watermark_before_the_unsent_rows(
    seed_bulk, mongo, sqs_client, queue_url, make_settings
):
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service
    from tests.faults.sqsfaults import THROTTLE, client_error

    seed_bulk(30)  # 60 rows, pages of 20
    clock = FakeClock(dt.datetime(2025, 12, 20, 12, tzinfo=dt.timezone.utc))
    calls = Counter()

    class DownAfterFirstPage(FaultySqs):
        def _maybe_raise(self, op: str) -> None:
            calls[op] += 1
            if op == "SendMessageBatch" and calls[op] > 2:  # the first page's two chunks go through
                raise client_error(op, *THROTTLE)

    faulty = DownAfterFirstPage(sqs_client, 0, ops=("SendMessageBatch",))
    settings = make_settings(
        test_date=DAY, sqs_queue_url=queue_url, discovery_batch_size=20, discovery_send_patience_seconds=120
    )
    svc = build_service(
        settings, mongo["nipun"], SqsQueue(faulty, queue_url, sleep=clock.advance), stop=StopAtPoll(clock), clock=clock
    )
    from anomaly_cli.errors import QueueUnavailable

    with pytest.raises(QueueUnavailable):  # the run ends with SQS's error (its exit code), state failed
        svc.run("backfill")
    got = bodies(sqs_client, queue_url)
    assert svc.state.get(DAY)["status"] == "failed" and len(got) == 20
    assert clock.now - dt.datetime(2025, 12, 20, 12, tzinfo=dt.timezone.utc) >= dt.timedelta(seconds=120)
    # the watermark is the first page's last row: never past the unsent second page
    wm = svc.state.get(DAY)["watermark"]
    assert wm["last_processed_timestamp"] == max(dt.datetime.fromisoformat(b["subject_created_at"]) for b in got)
