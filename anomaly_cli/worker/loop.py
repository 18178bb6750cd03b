"""The worker loop: poll, parse, buffer, dispatch batches, and stop cleanly.

The main thread polls and buffers; batches run on a small thread pool (each screens its items
on the shared :class:`~anomaly_cli.worker.pool.ScreenPool`) and settle their own messages with
SQS. Backpressure: the loop never holds more than ``max_held`` messages (``MAX_CONCURRENCY +
2 x BATCH_SIZE``: enough to keep every download slot busy while the next batch fills) and the
heartbeat extends every held message, so none can time out while it waits or runs.

Stops:
- a stop policy (``--max-messages`` / ``--idle-exit``): stop polling, finish everything held, exit 0;
- the first signal: stop polling, release the buffer at once (visibility 0), let running batches
  finish until the drain deadline, release what is left, exit 0;
- a second signal (:class:`ForcedStop`), a tripped access-denied breaker, a lost queue or a
  broken process pool: release everything held and exit non-zero.
MongoDB down: the failing batch's messages get a retry visibility and polling pauses with a
growing backoff (:data:`anomaly_cli.retry.MONGO_PAUSE`, one warning per pause, not one per message);
a failed receive pauses the same way (:data:`anomaly_cli.retry.RECEIVE_PAUSE`).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli import errors, retry
from anomaly_cli.adapters.protocols import WorkQueue
from anomaly_cli.adapters.sqs import receive_count
from anomaly_cli.config import Settings
from anomaly_cli.contract import RESCREEN_ATTRIBUTE, parse_message
from anomaly_cli.log import get_logger
from anomaly_cli.sqs_quotas import MAX_RECEIVE_MESSAGES
from anomaly_cli.worker import outcome as O
from anomaly_cli.worker.batch import BatchProcessor, BatchReport
from anomaly_cli.worker.heap import trim_heap
from anomaly_cli.worker.heartbeat import Heartbeat, Held, HeldMessages
from anomaly_cli.worker.shutdown import ForcedStop, NeverStop, ShutdownController, StopPolicy, seconds_left
from anomaly_cli.worker.stats import WorkerStats

if TYPE_CHECKING:
    from anomaly_cli.worker.pool import ScreenPool

log = get_logger("worker")
#: How often the loop returns free heap pages to the OS (:func:`~anomaly_cli.worker.pool.trim_heap`).
TRIM_SECONDS = 5.0

EXIT_REASONS = ("max_messages", "idle", "signal", "forced", "credentials", "source_gone", "queue_lost", "fatal")


def default_worker_id() -> str:
    """``host:pid``: unique per process, readable in results and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_rescreen(message: dict[str, Any]) -> bool:
    """Whether the message carries the ``rescreen`` attribute (operator tools set it)."""
    attr = (message.get("MessageAttributes") or {}).get(RESCREEN_ATTRIBUTE) or {}
    return str(attr.get("StringValue", "")).strip().lower() in ("1", "true", "yes")


@dataclass
class WorkerReport:
    """How a run ended: the reason, the error (if abnormal) and the final counters."""

    reason: str
    error: errors.AnomalyError | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    lingering: bool = False  # batch threads still running (the command must not wait for them)


class Worker:
    """One worker process's loop. Everything it talks to is injected."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue: WorkQueue,
        processor: BatchProcessor,
        held: HeldMessages,
        heartbeat: Heartbeat,
        stats: WorkerStats,
        shutdown: ShutdownController,
        policy: StopPolicy | None = None,
        health_file: str | Path | None = None,
        on_tick: Callable[[WorkerStats], None] | None = None,
        pool: ScreenPool | None = None,
    ):
        self.s = settings
        self.pool = pool
        self.queue = queue
        self.processor = processor
        self.held = held
        self.heartbeat = heartbeat
        self.stats = stats
        self.shutdown = shutdown
        self.policy = policy or NeverStop()
        self.health_file = Path(health_file) if health_file else None
        self.on_tick = on_tick
        self.max_held = settings.max_concurrency + 2 * settings.batch_size
        self.batch_threads = max(2, math.ceil(self.max_held / settings.batch_size))
        self._batches = ThreadPoolExecutor(max_workers=self.batch_threads, thread_name_prefix="batch")
        self._running: dict[Future[BatchReport], list[Held]] = {}
        self._buffer: list[Held] = []
        self._buffer_since = 0.0
        self._batch_no = 0
        self._pause_until = 0.0
        self._mongo_failures = 0  # batches in a row that met MongoDB down (retry.MONGO_PAUSE)
        self._queue_failures = 0  # receives in a row that failed (retry.RECEIVE_PAUSE)
        self._fatal: BaseException | None = None

    # ----- public ------------------------------------------------------------------------------
    def run(self) -> WorkerReport:
        """Run until a policy, a signal or an abnormal condition ends the loop."""
        self.heartbeat.start()
        error: errors.AnomalyError | None = None
        try:
            reason = self._loop()
        except ForcedStop:
            reason = "forced"
        except errors.QueueError as e:
            reason, error = "queue_lost", e
        except Exception as e:
            log.error("worker_loop_failed", exc_info=e, error=errors.error_code(e))
            reason, self._fatal = "fatal", e
        try:
            if reason == "signal":
                self._release(self._take_buffer())
                self._drain(self.shutdown.drain_seconds)
            elif reason in ("max_messages", "idle"):
                self._drain(None)
            elif reason == "credentials":
                self._release(self._take_buffer())
                self._drain(self.shutdown.drain_seconds)
                error = errors.CredentialsProblem(
                    f"{self.processor.breaker.limit} access-denied answers in a row: the worker's credentials or "
                    "the bucket policy are wrong, not the recordings",
                    hint="check the IAM role / bucket policy",
                )
            elif reason == "source_gone":
                self._release(self._take_buffer())
                self._drain(self.shutdown.drain_seconds)
                b = self.processor.source_gone
                error = errors.SourceGoneDrain(
                    f"{b.gone_in_window} of the last {b.window} sourced deliveries were source_gone: the worker "
                    f"is probably reading the wrong source ({self.s.mongo_db_name}.{self.s.mongo_source_collection})",
                    hint="check MONGO_DB_NAME and MONGO_SOURCE_COLLECTION; "
                    "released messages are screened by the next worker",
                )
            elif reason == "fatal":
                error = errors.AnomalyError(f"worker stopped abnormally: {self._fatal!r}", code="worker_fatal")
        except ForcedStop:
            reason = "forced"
        finally:
            self.shutdown.releasing = True
            self._release(self.held.take_all())
            self.heartbeat.stop()
            lingering = any(not f.done() for f in self._running)
            self._batches.shutdown(wait=False, cancel_futures=True)
            if self.pool is not None:
                self.pool.close(wait=not lingering)
        snap = self.stats.snapshot()
        log.info("worker_stopped", reason=reason, error=error.code if error else None, **snap)
        return WorkerReport(reason=reason, error=error, stats=snap, lingering=lingering)

    # ----- the loop ----------------------------------------------------------------------------
    def _loop(self) -> str:
        last_activity = time.monotonic()
        next_throughput = time.monotonic() + self.s.throughput_log_seconds
        next_trim = time.monotonic() + TRIM_SECONDS
        while True:
            self._touch()
            self._reap()
            now = time.monotonic()
            if now >= next_throughput:
                log.info("throughput", **self.stats.snapshot())
                next_throughput = now + self.s.throughput_log_seconds
            if now >= next_trim:
                trim_heap()  # flat memory over long runs (see its docstring)
                next_trim = now + TRIM_SECONDS
            if self.on_tick is not None:
                self.on_tick(self.stats)
            if self._fatal is not None:
                return "fatal"
            if self.processor.breaker.tripped:
                return "credentials"
            if self.processor.source_gone.tripped:
                return "source_gone"
            if self.shutdown.requested:
                return "signal"
            busy = bool(self._buffer or self._running or len(self.held))
            if busy:
                last_activity = now
            if self.policy.should_stop(self.stats.received, now - last_activity):
                return "max_messages" if self.policy.receive_budget(self.stats.received) == 0 else "idle"
            if now < self._pause_until:
                self._wait_running(min(0.5, self._pause_until - now))
                continue
            got = self._poll(seconds_left(self.policy, now - last_activity))
            if got:
                last_activity = time.monotonic()
            self._maybe_dispatch(force=False)

    def _poll(self, stop_in: float | None = None) -> int:
        """One receive. Never long-polls past the buffer's flush deadline (with less than a second
        to go it waits out the remainder instead of spinning on zero-second polls) nor more than a
        second past ``stop_in``, an idle stop's deadline (``--idle-exit N`` ends within about a
        second of N, not after a 20 s long poll)."""
        capacity = self.max_held - len(self.held)
        budget = self.policy.receive_budget(self.stats.received)
        n = min(MAX_RECEIVE_MESSAGES, capacity, budget if budget is not None else MAX_RECEIVE_MESSAGES)
        if n <= 0:
            self._maybe_dispatch(force=True)  # at capacity or budget: no point waiting for more
            self._wait_running(0.2)
            return 0
        wait_s = self.s.sqs_wait_seconds
        if self._buffer:  # never long-poll past the flush deadline of the buffer
            until_flush = max(0.0, self._buffer_since + self.s.flush_seconds - time.monotonic())
            if wait_s > 0 and 0 < until_flush < 1:
                self._wait_running(until_flush)  # SQS waits in whole seconds: sleep the remainder instead
                return 0
            if wait_s > 0 and until_flush == 0 and len(self._running) >= self.batch_threads:
                self._wait_running(0.2)  # due but no free batch thread: wait for one, do not spin
                return 0
            wait_s = min(wait_s, int(until_flush))
        elif self._running:
            wait_s = min(wait_s, 1)
        if stop_in is not None:  # an idle stop: poll once more, ending at most a second after it
            wait_s = min(wait_s, math.ceil(stop_in))
        if self.processor.breaker.tripped or self.processor.source_gone.tripped:
            return 0  # a breaker opened since the loop's check: what its batch released is not received again
        try:
            msgs = self.queue.receive(n, wait_s, self.s.visibility_timeout_seconds)
        except errors.QueueUnavailable as e:
            self._queue_failures += 1
            pause = retry.RECEIVE_PAUSE.delay(self._queue_failures)
            log.warning("queue_unavailable", error=e.code, reason=str(e)[:200], retry_in_s=pause)
            self.shutdown.wait(pause)
            return 0
        self._queue_failures = 0
        # an empty poll is not news (a quiet queue, or a partial batch waiting for its flush)
        (log.info if msgs else log.debug)("messages_polled", count=len(msgs), held=len(self.held))
        for m in msgs:
            self._accept(m)
        return len(msgs)

    def _accept(self, m: dict[str, Any]) -> None:
        self.stats.add("received")
        mid = m.get("MessageId", "")
        try:
            item = parse_message(m.get("Body", ""))
            result_id = item.result_id
        except Exception as e:  # noqa: BLE001 - one body, however hostile, never stops the loop
            # left unacked: redrive moves it to the DLQ after maxReceiveCount, for replay-dlq. An
            # exception outside ContractError is a parser bug met by this body: same fate, own code.
            self.stats.add(O.MALFORMED)
            log.error(
                "message_malformed",
                message_id=mid,
                error=errors.error_code(e),
                reason=f"{type(e).__name__}: {str(e)[:300]}",
                attempt=receive_count(m),
            )
            return
        held = Held(mid, m["ReceiptHandle"], receive_count(m), item, rescreen=is_rescreen(m))
        self.held.add(held)
        if not self._buffer:
            self._buffer_since = time.monotonic()
        self._buffer.append(held)
        log.debug(  # per message: the live panel and batch events count them
            "message_buffered",
            message_id=mid,
            result_id=result_id,
            attempt=held.receive_count,
            rescreen=held.rescreen,
            buffered=len(self._buffer),
        )

    def _maybe_dispatch(self, *, force: bool) -> None:
        while self._buffer and len(self._running) < self.batch_threads:
            full = len(self._buffer) >= self.s.batch_size
            due = time.monotonic() - self._buffer_since >= self.s.flush_seconds
            if not (full or due or force):
                return
            batch = self._buffer[: self.s.batch_size]
            self._buffer = self._buffer[self.s.batch_size :]
            self._buffer_since = time.monotonic()
            self._batch_no += 1
            log.info("batch_dispatched", batch=self._batch_no, size=len(batch), reason="full" if full else "flush")
            fut = self._batches.submit(self.processor.process, batch, self._batch_no)
            self._running[fut] = batch
        self.stats.in_flight = sum(len(b) for b in self._running.values())
        self.stats.held = len(self.held)

    def _reap(self) -> None:
        for fut in [f for f in self._running if f.done()]:
            self._running.pop(fut)
            try:
                report = fut.result()
            except BaseException as e:  # noqa: BLE001 - process() catches Exception; this is worse
                self._fatal = e
                continue
            if report.fatal is not None:
                self._fatal = report.fatal
            if report.mongo_unavailable:
                self._mongo_failures += 1
                pause = retry.MONGO_PAUSE.delay(self._mongo_failures)
                self._pause_until = time.monotonic() + pause
                log.warning(
                    "mongo_unavailable",
                    pause_s=pause,
                    messages=sum(o.kind == O.TRANSIENT for o in report.outcomes),
                )
            elif report.outcomes:
                self._mongo_failures = 0
        self.stats.in_flight = sum(len(b) for b in self._running.values())
        self.stats.held = len(self.held)

    def _wait_running(self, seconds: float) -> None:
        if self._running:
            wait(list(self._running), timeout=seconds, return_when=FIRST_COMPLETED)
        else:
            self.shutdown.wait(seconds)

    # ----- stopping ----------------------------------------------------------------------------
    def _take_buffer(self) -> list[Held]:
        out, self._buffer = self._buffer, []
        self.held.discard([h.message_id for h in out])
        return out

    def _drain(self, deadline_s: float | None) -> None:
        """Finish what is held: dispatch the buffer (policy stops only) and wait for batches."""
        end = None if deadline_s is None else time.monotonic() + deadline_s
        while self._buffer or self._running:
            if end is not None and time.monotonic() >= end:
                log.warning("drain_deadline_reached", running=sum(len(b) for b in self._running.values()))
                return
            self._touch()
            self._maybe_dispatch(force=True)
            self._wait_running(0.2 if end is None else max(0.0, min(0.2, end - time.monotonic())))
            self._reap()
            if self.on_tick is not None:
                self.on_tick(self.stats)

    def _release(self, held: list[Held]) -> None:
        """Visibility 0 for ``held``: another worker takes them at once."""
        if not held:
            return
        try:
            res = self.queue.change_visibility_batch([(h.message_id, h.receipt, 0) for h in held])
            released = len(res.succeeded)
            for f in res.failed:
                log.warning("release_failed", message_id=f.id, error=f.code, reason=f.message[:200])
        except Exception as e:  # noqa: BLE001 - they come back after the visibility timeout anyway
            released = 0
            log.warning("release_failed", count=len(held), error=errors.error_code(e), reason=str(e)[:200])
        self.stats.add(O.RELEASED, released)
        self.held.discard([h.message_id for h in held])
        log.info("messages_released", count=released)

    def _touch(self) -> None:
        if self.health_file is not None:
            try:
                self.health_file.touch()
            except OSError as e:
                log.warning("health_file_failed", path=str(self.health_file), reason=str(e)[:200])
