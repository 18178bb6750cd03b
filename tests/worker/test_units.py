"""Small pure parts of the worker: percentiles, stop policies, signal handling, the breaker."""

from __future__ import annotations

import signal

import pytest

from anomaly_cli.worker.batch import AccessDeniedBreaker
from anomaly_cli.worker.shutdown import AnyOf, ForcedStop, IdleShutdown, MaxMessages, ShutdownController
from anomaly_cli.worker.stats import percentile


def test_percentiles():
    assert percentile([], 0.5) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) in (50.0, 51.0) and percentile(values, 0.95) == 95.0


def test_policies_combine():
    p = AnyOf((MaxMessages(5), IdleShutdown(2.0)))
    assert p.receive_budget(3) == 2 and not p.should_stop(3, 1.0)
    assert p.should_stop(5, 0.0) and p.should_stop(1, 2.5)


def test_first_signal_requests_a_warm_stop_second_forces():
    c = ShutdownController()
    c.handle(signal.SIGTERM)
    assert c.requested and c.signal_name == "SIGTERM"
    with pytest.raises(ForcedStop):
        c.handle(signal.SIGINT)


def test_breaker_trips_on_a_run_and_resets_on_success():
    b = AccessDeniedBreaker(3)
    assert [b.observe(True), b.observe(True), b.observe(False)] == [False, False, False]
    assert [b.observe(True), b.observe(True), b.observe(True)] == [False, False, True]
    assert b.tripped and b.observe(True) and not b.observe(False)
