"""An incremental run that stays up for the days a test window is open (issue 18).

GIVEN an incremental run polling a test date for thousands of polls on an injected clock, with
new rows arriving now and then, THEN its log volume is bounded (empty polls log at DEBUG; a
``discovery_heartbeat`` every DISCOVERY_HEARTBEAT_SECONDS), its lease is kept alive the whole
time and released when it stops, ``state show`` can read how far it is (polls, last poll, rows
behind, rate), and every new row is sent once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from tests.discovery.conftest import DAY, FakeClock, assessment, bodies, student_doc, subject

POLL = 30.0
HEARTBEAT = 600.0


class Polls:
    """The run's stop flag: each wait is one poll interval on ``clock``; ``at`` maps a poll number
    to something to do then (add rows, look at the state); stops after ``limit`` polls."""

    def __init__(self, clock: FakeClock, limit: int, at: dict[int, Any]):
        self.clock, self.limit, self.at, self.n, self.stopped = clock, limit, at, 0, False

    def is_set(self) -> bool:
        return self.stopped

    def wait(self, timeout: float | None = None) -> bool:
        self.n += 1
        self.clock.advance(timeout or 0)
        if self.n in self.at:
            self.at[self.n]()
        self.stopped = self.n >= self.limit
        return self.stopped


def new_student(source: Any, clock: FakeClock) -> None:
    ts = clock.now - dt.timedelta(seconds=5)
    source.insert_one(student_doc(assessment(teacher=[subject(created=ts)], admin=[subject(created=ts)])))


def test_days_of_polling_log_bounded_keep_the_lease_and_report_progress(
    source, make_service, sqs_client, queue_url, events
):
    clock = FakeClock(dt.datetime(2025, 12, 20, 6, tzinfo=dt.timezone.utc))
    new_student(source, clock)
    seen: dict[str, Any] = {}
    svc_box: dict[str, Any] = {}

    def look() -> None:
        seen["state"] = svc_box["svc"].state.get(DAY)
        seen["now"] = clock.now

    polls = 3000  # 25 hours of 30 s polls
    stop = Polls(
        clock, polls, {700: lambda: new_student(source, clock), 2100: lambda: new_student(source, clock), 2500: look}
    )
    svc = make_service(
        stop=stop,
        clock=clock,
        poll_interval_seconds=POLL,
        discovery_heartbeat_seconds=HEARTBEAT,
        discovery_lease_seconds=120,
    )
    svc_box["svc"] = svc
    report = svc.run("incremental")

    # every new row once
    sent = Counter((b["mongo_doc_id"], b["subject_id"]) for b in bodies(sqs_client, queue_url))
    assert report.status == "interrupted" and len(sent) == 6 and set(sent.values()) == {1}
    # log volume: what an INFO log shows grows with the heartbeats, not with the polls
    info = Counter(events.names_at(logging.INFO))
    hours = polls * POLL / 3600
    assert info["discovery_heartbeat"] <= hours * 3600 / HEARTBEAT + 8
    assert info["discovery_heartbeat"] >= hours * 3600 / HEARTBEAT - 2
    assert sum(info.values()) < 300, info.most_common(5)
    assert info["discovery_page_fetch_completed"] <= 10  # the polls that found rows (and the first)
    # still there at DEBUG: one per wait, plus the re-read right after each of the 3 polls that found rows
    assert Counter(events.names())["discovery_run_once_started"] == polls + 3
    # the lease was alive mid-run (renewed at every poll), and released at the end
    mid = seen["state"]
    assert mid["lease"]["expires_at"] > seen["now"] and mid["status"] == "running"
    progress = mid["last_run"]["progress"]
    assert progress["polls"] >= 2500 - HEARTBEAT / POLL and progress["rows_behind"] == 0 and progress["caught_up"]
    assert progress["enqueued"] == 6 and progress["last_poll_at"] >= seen["now"] - dt.timedelta(seconds=HEARTBEAT)
    assert svc.state.get(DAY)["lease"] is None


def test_state_show_renders_a_running_incremental_run_progress(make_settings):
    from anomaly_cli.cli.commands.state import _progress_text

    now = dt.datetime(2025, 12, 21, 6, tzinfo=dt.timezone.utc)
    text = _progress_text(
        {
            "polls": 1200,
            "last_poll_at": now - dt.timedelta(seconds=20),
            "last_poll_rows": 0,
            "rows_behind": 0,
            "caught_up": True,
            "enqueued": 5400,
            "rate_rows_per_s": 0.15,
            "heartbeat_at": now - dt.timedelta(minutes=3),
        },
        now,
    )
    assert "1200 polls" in text and "20s ago" in text and "0 rows behind" in text and "5400 enqueued" in text
