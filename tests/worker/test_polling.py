"""Issue 14, problem 8: ``--idle-exit`` and a held partial batch never wait out a 20 s long poll,
and polls that bring nothing are not INFO chatter."""

from __future__ import annotations

import logging
from typing import Any

from anomaly_cli.adapters.sqs import SqsQueue
from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from tests.conftest import Events, capture_events
from tests.worker.conftest import make_item


class LevelEvents(Events):
    """Events with their level: ``(event, level, fields)``."""

    def __init__(self) -> None:
        super().__init__()
        self.leveled: list[tuple[str, int, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.leveled.append((getattr(record, "event", ""), record.levelno, dict(getattr(record, "fields", {}) or {})))


class RecordingQueue(SqsQueue):
    """The real SQS queue adapter, remembering the wait of every receive it was asked for."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.waits: list[int] = []

    def receive(self, max_messages: int = 10, wait_seconds: int = 20, *a: Any, **kw: Any) -> Any:
        self.waits.append(wait_seconds)
        return super().receive(max_messages, wait_seconds, *a, **kw)


def test_idle_exit_never_long_polls_past_its_deadline(rig: Any) -> None:
    # GIVEN an empty queue, the SQS maximum long poll (20 s) and an idle stop after 2.5 s
    queue = RecordingQueue(rig.sqs, rig.queue_url)
    # WHEN the worker runs
    report = rig.run(settings=rig.settings(sqs_wait_seconds=20), policy=AnyOf((IdleShutdown(2.5),)), queue=queue)
    # THEN it stopped for idleness and no poll asked SQS to wait beyond the deadline
    assert report.reason == "idle"
    assert queue.waits and max(queue.waits) <= 3, queue.waits  # ceil(2.5): at most a second past it


def test_partial_batch_waits_for_its_flush_without_spinning(rig: Any) -> None:
    # GIVEN one message (a partial batch of 5) and a 1.5 s flush with 20 s long polls
    rig.send(make_item(rig.server.put("/a.wav", b"RIFF0000WAVE"), n=1))
    queue = RecordingQueue(rig.sqs, rig.queue_url)
    # WHEN the worker holds it until the flush and then goes idle
    with capture_events(LevelEvents()) as events:
        rig.run(
            settings=rig.settings(sqs_wait_seconds=20, flush_seconds=1.5),
            policy=AnyOf((IdleShutdown(1.0),)),
            queue=queue,
        )
    # THEN it did not fire a burst of zero-second polls while the batch waited (before: ~40 in 1.5 s)
    assert queue.waits.count(0) <= 3, queue.waits
    # AND the polls that brought nothing were DEBUG, the one that brought the message INFO
    polled = [(level, f) for e, level, f in events.leveled if e == "messages_polled"]
    assert {level for level, f in polled if f["count"] == 0} == {logging.DEBUG}, events.leveled
    assert any(level == logging.INFO and f["count"] == 1 for level, f in polled)
