"""The one retry policy (anomaly_cli.retry): calls and sleeps counted with an injected sleep and clock."""

from __future__ import annotations

import random

import pytest

from anomaly_cli import errors, retry
from anomaly_cli.config import setting_fields
from anomaly_cli.worker import outcome


class Zero(random.Random):
    """A random source whose draws are 0: every delay is its nominal value."""

    def random(self) -> float:
        return 0.0


class Calls:
    """A call that raises ``errors`` in turn, then returns ``"ok"``; counts its calls."""

    def __init__(self, *errors_: BaseException):
        self.errors, self.n = list(errors_), 0

    def __call__(self) -> str:
        self.n += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def run(policy: retry.Policy, fn: Calls, **kw):
    sleeps: list[float] = []
    for attempt in policy.retrying(sleep=sleeps.append, rng=Zero(), **kw):
        with attempt:
            return fn(), sleeps
    raise AssertionError("unreachable")


def test_a_throttled_call_is_tried_exactly_attempts_times_with_the_policys_sleeps():
    fn = Calls(*[errors.QueueUnavailable("throttled")] * 10)
    sleeps: list[float] = []
    with pytest.raises(errors.QueueUnavailable):
        for attempt in retry.SQS_BATCH.retrying(sleep=sleeps.append, rng=Zero()):
            with attempt:
                fn()
    assert fn.n == retry.SQS_BATCH.attempts == 5
    assert sleeps == [0.2, 0.4, 0.8, 1.6] == retry.SQS_BATCH.delays()


def test_a_permanent_error_is_tried_once_and_an_unknown_baseexception_never_retried():
    fn = Calls(errors.QueueError("no such queue", code="queue_not_found"))
    with pytest.raises(errors.QueueError):
        run(retry.SQS_BATCH, fn)
    assert fn.n == 1

    class Crash(BaseException):
        pass

    fn = Calls(Crash())
    with pytest.raises(Crash):
        run(retry.SQS_BATCH, fn)
    assert fn.n == 1


def test_success_after_two_transient_failures_sleeps_twice():
    result, sleeps = run(retry.S3_GET, Calls(errors.FetchTransient("503"), errors.FetchTransient("reset")))
    assert result == "ok" and sleeps == [0.5, 1.0]


def test_jitter_only_shortens_a_delay():
    rng = random.Random(7)
    p = retry.SQS_BATCH
    for n in range(1, 10):
        d = p.delay(n, rng)
        assert (1 - p.jitter) * p.nominal(n) <= d <= p.nominal(n) <= p.cap


def test_no_call_starts_after_the_deadline():
    now = [0.0]
    fn = Calls(*[errors.FetchTransient("slow")] * 10)

    def sleep(s: float) -> None:
        now[0] += s

    with pytest.raises(errors.FetchTransient):
        for attempt in retry.S3_GET.with_attempts(10).retrying(
            sleep=sleep, clock=lambda: now[0], deadline=2.0, rng=Zero()
        ):
            with attempt:
                fn()
    # waits 0.5 (t=0.5), 1.0 (t=1.5); the next wait (2.0) would start a call at 3.5 > 2: stop
    assert fn.n == 3 and now[0] == 1.5


def test_patience_makes_at_least_attempts_calls_then_goes_on_until_the_clock_passes_it():
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    fn = Calls(*[errors.QueueUnavailable("down")] * 100)
    with pytest.raises(errors.QueueUnavailable):
        for attempt in retry.DISCOVERY_SEND.retrying(
            sleep=sleep, clock=lambda: now[0], deadline=0.0, deadline_is_patience=True, rng=Zero()
        ):
            with attempt:
                fn()
    assert fn.n == 5  # a patience of 0 still makes the quick calls

    now[0], fn = 0.0, Calls(*[errors.QueueUnavailable("down")] * 100)
    with pytest.raises(errors.QueueUnavailable):
        for attempt in retry.DISCOVERY_SEND.retrying(
            sleep=sleep, clock=lambda: now[0], deadline=120.0, deadline_is_patience=True, rng=Zero()
        ):
            with attempt:
                fn()
    # 0.2 + 0.4 + ... + 25.6 = 51 s in 8 waits, then 30 s waits: 81, 111, 141 >= 120 -> 12 calls
    assert now[0] == pytest.approx(141.0) and fn.n == 12
    assert retry.DISCOVERY_SEND.max_calls(120.0) >= fn.n


def test_an_interruptible_sleep_ends_the_retries_at_the_stop_signal():
    fn = Calls(*[errors.QueueUnavailable("down")] * 10)
    with pytest.raises(retry.Interrupted):
        for attempt in retry.DISCOVERY_SEND.retrying(sleep=retry.interruptible(lambda s: True)):
            with attempt:
                fn()
    assert fn.n == 1


def test_the_documented_defaults_are_the_code_s():
    fetch_retries = next(f.default for f in setting_fields() if f.metadata["env"] == "FETCH_RETRIES")
    assert retry.S3_GET.attempts == fetch_retries
    assert (outcome.RETRY_BASE_SECONDS, outcome.RETRY_MAX_SECONDS) == (retry.REDELIVERY.first, retry.REDELIVERY.cap)
    assert [outcome.retry_visibility(n) for n in (1, 2, 3)] == [retry.REDELIVERY.nominal(n) for n in (1, 2, 3)]
    table = retry.table()
    assert all(f"`{p.name}`" in table for p in retry.POLICIES)


def test_the_bounds_docs_bad_input_states_are_the_policies():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "bad-input.md").read_text(encoding="utf-8")
    patience = next(f.default for f in setting_fields() if f.metadata["env"] == "DISCOVERY_SEND_PATIENCE_SECONDS")
    assert f"at most {retry.DISCOVERY_SEND.max_calls(patience)} calls at the default" in text
    assert f"{retry.SQS_BATCH.attempts} x ceil(k / 10) calls" in text
    assert f"at most {sum(retry.SQS_BATCH.delays()):g} s per chunk" in text
    assert "<!-- RETRY_TABLE -->" in text
