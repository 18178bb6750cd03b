"""GIVEN an item whose screening would burn CPU without end WHEN it runs within the screening
process's budget THEN it is stopped after the budget with a terminal ``cpu_budget_exceeded``
result and the process's own limits are restored for the next item."""

from __future__ import annotations

import resource
import signal
import time

from anomaly_cli.model import engine
from anomaly_cli.worker import child


def test_an_item_over_its_cpu_budget_becomes_a_terminal_result(monkeypatch) -> None:
    def endless(data: bytes, max_duration_s: float):  # what a decoder stuck in Python-level work looks like
        x = 0
        while True:
            x += 1

    monkeypatch.setattr(engine, "screen_in_process", endless)
    before = resource.getrlimit(resource.RLIMIT_CPU)
    t0 = time.process_time()

    s = child.screen_within_budget(b"RIFF....", 600.0, cpu_seconds=0.3)

    spent = time.process_time() - t0
    assert s.status == "failed" and "cpu_budget_exceeded" in s.reasons[0].detail
    assert spent < 5.0  # stopped at the budget, not at the end of the work
    assert resource.getrlimit(resource.RLIMIT_CPU) == before
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_an_item_within_budget_is_screened_as_usual(monkeypatch) -> None:
    monkeypatch.setattr(engine, "screen_in_process", lambda data, cap: "screened")
    assert child.screen_within_budget(b"x", 600.0, cpu_seconds=5.0) == "screened"
