"""The one retry policy: how often each call to a service is tried again, and how long between tries.

Every retry of the project is one of the named :class:`Policy` values below (:data:`POLICIES` is
the table the README and ``docs/bad-input.md`` print, so the documentation cannot drift from the
code). A policy is data: the most calls, the delay before the second call, the longest delay, the
jitter; which errors are worth another call is decided by the error tree
(:func:`anomaly_cli.errors.is_transient`, or the adapter's translation of a service's answer).
:meth:`Policy.retrying` turns a policy into a ``tenacity.Retrying`` (tenacity runs the loop) with an
injectable ``sleep``, ``clock`` and random source, so tests count calls and sleeps without waiting.

Each call family is retried in **one layer only**, so retries never multiply: the adapter retries
an SQS batch call and the entries ``Failed[]`` names under one budget of calls (a chunk of 10 acks
costs at most :data:`SQS_BATCH` ``.attempts`` calls, where an ack once cost up to 3 x 5 x 5 = 75),
the worker acks once through it, and discovery hands the adapter its own, more patient policy
instead of looping around it. The two loop pauses (:data:`RECEIVE_PAUSE`, :data:`MONGO_PAUSE`) and
the redelivery backoff (:data:`REDELIVERY`) are not calls made again but waits before the next
piece of work; they are listed because they decide how often a service is asked again.

Delays: the *n*-th wait is ``min(cap, first * 2**(n-1))``, shortened by up to ``jitter`` of itself
at random (``jitter=0.5``: between half and all of it), so the nominal delays in the table are
upper bounds and many workers that failed together do not retry together.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from anomaly_cli.errors import is_transient

if TYPE_CHECKING:
    from tenacity import RetryCallState

Sleep = Callable[[float], None]
Clock = Callable[[], float]


class Interrupted(Exception):
    """Raised by an interruptible sleep (:func:`interruptible`) when a stop was asked for while it waited."""


def interruptible(wait: Callable[[float], bool]) -> Sleep:
    """A ``sleep`` from an ``Event.wait``-like function (True when stopped): raises :class:`Interrupted`."""

    def sleep(seconds: float) -> None:
        if wait(seconds):
            raise Interrupted()

    return sleep


@dataclass(frozen=True)
class Policy:
    """How one family of calls is retried (see the module doc for the delay formula)."""

    name: str
    #: the calls it covers (documentation)
    calls: str
    #: calls at most, the first included (1: never retried); None: bounded by ``until`` only
    attempts: int | None
    #: seconds before the second call
    first: float
    #: the longest delay, seconds
    cap: float
    #: each delay is shortened by up to this fraction of itself at random
    jitter: float = 0.5
    #: what else ends the retries (documentation: a setting, a deadline), empty when only ``attempts``
    until: str = ""
    #: after ``attempts`` calls the retries go on (at the cap) until ``until`` says stop: a patience
    goes_on: bool = False
    #: the setting that overrides ``attempts`` (documentation)
    setting: str = ""
    #: what is retried (documentation)
    on: str = "transient errors (errors.is_transient)"
    #: where it runs (documentation)
    where: str = ""

    def nominal(self, n: int) -> float:
        """The longest *n*-th delay (before call ``n + 1``), seconds."""
        return float(min(self.cap, self.first * 2 ** min(max(n, 1) - 1, 60)))

    def delay(self, n: int, rng: random.Random | None = None) -> float:
        """The *n*-th delay drawn with jitter: between ``(1 - jitter) x nominal`` and ``nominal``."""
        u = (rng or random).random()
        return self.nominal(n) * (1.0 - self.jitter * u)

    def delays(self, limit: int = 8) -> list[float]:
        """The nominal delays of a full run of retries (at most ``limit`` of them)."""
        n = (self.attempts - 1) if self.attempts is not None else limit
        return [self.nominal(i) for i in range(1, min(n, limit) + 1)]

    def with_attempts(self, attempts: int) -> Policy:
        return replace(self, attempts=max(1, int(attempts)))

    def retrying(
        self,
        *,
        sleep: Sleep = time.sleep,
        retry_on: Callable[[BaseException], bool] = is_transient,
        clock: Clock = time.monotonic,
        deadline: float | None = None,
        deadline_is_patience: bool = False,
        before_sleep: Callable[[int, float, BaseException], None] | None = None,
        rng: random.Random | None = None,
        wait: Callable[[int, BaseException], float] | None = None,
    ) -> Any:
        """A ``tenacity.Retrying`` running this policy; exceptions ``retry_on`` refuses are raised at once.

        ``deadline`` (on ``clock``) also ends the retries: by default no call starts after it (the
        upcoming sleep counts), with ``deadline_is_patience`` the retries go on until the clock has
        passed it (discovery's patience), and never stop before ``attempts`` calls were made.
        ``before_sleep(attempt, seconds, error)`` is called before each wait. ``wait(attempt, error)``
        replaces the delay (the cursor reopens at once after an idle-cursor kill).
        """
        from tenacity import Retrying, retry_if_exception

        def stop(state: RetryCallState) -> bool:
            by_count = self.attempts is not None and state.attempt_number >= self.attempts
            if deadline is None:
                return by_count
            if deadline_is_patience:
                return (self.attempts is None or by_count) and clock() >= deadline
            return by_count or clock() + (getattr(state, "upcoming_sleep", 0.0) or 0.0) >= deadline

        def delay(state: RetryCallState) -> float:
            error = _error(state)
            if wait is not None and error is not None:
                return wait(state.attempt_number, error)
            return self.delay(state.attempt_number, rng)

        def on_sleep(state: RetryCallState) -> None:
            error = _error(state)
            if before_sleep is not None and error is not None:
                before_sleep(state.attempt_number, float(state.next_action.sleep if state.next_action else 0.0), error)

        def worth_another(error: BaseException) -> bool:
            # a BaseException (KeyboardInterrupt, SystemExit, a crash) is never retried
            return isinstance(error, Exception) and retry_on(error)

        return Retrying(
            retry=retry_if_exception(worth_another),
            stop=stop,
            wait=delay,
            sleep=sleep,
            reraise=True,
            before_sleep=on_sleep,
        )

    def max_calls(self, patience_s: float | None = None) -> int | None:
        """The most calls one retried call can make (``patience_s`` for a deadline policy; a bound
        computed with the shortest delays jitter allows)."""
        if patience_s is None:
            return self.attempts
        waited, n = 0.0, 1
        while True:
            if (self.attempts is None or n >= self.attempts) and waited >= patience_s:
                return n
            waited += self.nominal(n) * (1.0 - self.jitter)
            n += 1


def _error(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None and state.outcome.failed else None


# ----- the policies: one per call family ------------------------------------------------------
S3_GET = Policy(
    "fetch",
    "S3 GetObject / https GET of a recording",
    attempts=3,  # FETCH_RETRIES
    first=0.5,
    cap=8.0,
    until="none starts after FETCH_DEADLINE_SECONDS (60 s)",
    setting="FETCH_RETRIES",
    on="timeouts, resets, 5xx, 429 / SlowDown / throttling (FetchTransient)",
    where="adapters/storage.py Fetcher.fetch",
)
SQS_CALL = Policy(
    "sqs_call",
    "SQS GetQueueAttributes, GetQueueUrl",
    attempts=5,
    first=0.2,
    cap=5.0,
    on="throttling, 5xx, connection errors (QueueUnavailable)",
    where="adapters/sqs.py SqsQueue",
)
SQS_BATCH = Policy(
    "sqs_batch",
    "SQS DeleteMessageBatch, ChangeMessageVisibilityBatch, SendMessageBatch: per chunk of 10, Failed[] included",
    attempts=5,
    first=0.2,
    cap=5.0,
    on="a throttled / 5xx call, and the entries of Failed[] with SenderFault false (one budget for both)",
    where="adapters/sqs.py SqsQueue",
)
SQS_RECEIVE = Policy(
    "sqs_receive",
    "SQS ReceiveMessage",
    attempts=1,
    first=0.0,
    cap=0.0,
    jitter=0.0,
    on="nothing in the adapter: the worker loop pauses (receive_pause) and polls again",
    where="adapters/sqs.py SqsQueue.receive",
)
DISCOVERY_SEND = Policy(
    "discovery_send",
    "discovery's SendMessageBatch: per chunk of 10",
    attempts=5,
    first=0.2,
    cap=30.0,
    until="then until DISCOVERY_SEND_PATIENCE_SECONDS (900 s) have passed, or a stop signal",
    goes_on=True,
    on="as sqs_batch; the lease is renewed at every wait",
    where="discovery/service.py via SqsQueue.send_batch",
)
CURSOR_REOPEN = Policy(
    "cursor_reopen",
    "discovery's MongoDB cursor, reopened after the last row handed out (per page)",
    attempts=9,  # the first open and 8 reopens in a row with no page between them
    first=1.0,
    cap=30.0,
    jitter=0.0,
    on="MongoUnavailable; an idle-cursor kill (CursorLost) reopens at once, without a wait",
    where="discovery/cursor.py ResumableRows",
)
RECEIVE_PAUSE = Policy(
    "receive_pause",
    "SQS ReceiveMessage: tried once, then the worker pauses before the next",
    attempts=None,
    first=1.0,
    cap=30.0,
    jitter=0.0,
    until="no limit (a permanent QueueError stops the worker: exit 4)",
    on="QueueUnavailable",
    where="worker/loop.py",
)
MONGO_PAUSE = Policy(
    "mongo_pause",
    "the worker's next batch after MongoDB failed one (its writes: pymongo's one retryable write)",
    attempts=None,
    first=1.0,
    cap=60.0,
    jitter=0.0,
    until="no limit (the batch's messages come back: redelivery)",
    on="MongoUnavailable: polling pauses, one warning per pause",
    where="worker/loop.py",
)
REDELIVERY = Policy(
    "redelivery",
    "an item that failed transiently (its message's visibility)",
    attempts=None,
    first=10.0,
    cap=15 * 60.0,
    jitter=0.0,
    until="the queue's maxReceiveCount deliveries (then the DLQ)",
    on="transient outcomes (errors.is_transient, unknown exceptions included)",
    where="worker/outcome.py retry_visibility",
)

#: Every policy, in the order the documentation lists them.
POLICIES: tuple[Policy, ...] = (
    S3_GET,
    SQS_CALL,
    SQS_BATCH,
    SQS_RECEIVE,
    DISCOVERY_SEND,
    CURSOR_REOPEN,
    RECEIVE_PAUSE,
    MONGO_PAUSE,
    REDELIVERY,
)


def _waits(p: Policy) -> str:
    if p.attempts == 1:
        return "-"
    if p.attempts is None or p.goes_on:  # goes on at the cap: show the doubling up to it
        shown = [p.nominal(n) for n in range(1, 40) if p.nominal(n) < p.cap] + [p.cap]
        text = ", ".join(f"{d:g}" for d in shown) + ", ..."
    else:
        text = ", ".join(f"{d:g}" for d in p.delays(limit=12))
    return text + (f" (each up to {p.jitter:.0%} shorter at random)" if p.jitter else "")


def _most(p: Policy) -> str:
    if p.attempts is None:
        return p.until
    calls = "1 call" if p.attempts == 1 else f"{p.attempts} calls"
    if p.setting:
        calls += f" ({p.setting})"
    return f"{calls}; {p.until}" if p.until else calls


def table(*, compact: bool = False) -> str:
    """The policies as a Markdown table (``<!-- RETRY_TABLE -->`` in docs/bad-input.md; the README's
    ``<!-- RETRY_TABLE_SHORT -->`` is ``compact``: no *retried on* / *where* columns, and policies
    with the same numbers share a row)."""
    if compact:
        rows: dict[tuple[str, str], list[str]] = {}
        for p in POLICIES:
            if p.attempts != 1:  # a call tried once is named by the pause that follows it
                rows.setdefault((_most(p), _waits(p)), []).append(p.calls)
        lines = ["| calls | tried at most | waits between tries (s, at most) |", "|---|---|---|"]
        lines += [f"| {'; '.join(calls)} | {most} | {waits} |" for (most, waits), calls in rows.items()]
        return "\n".join(lines)
    lines = [
        "| policy | calls | tried at most | waits between tries (s, at most) | retried on | where |",
        "|---|---|---|---|---|---|",
    ]
    for p in POLICIES:
        lines.append(f"| `{p.name}` | {p.calls} | {_most(p)} | {_waits(p)} | {p.on} | `{p.where}` |")
    return "\n".join(lines)
