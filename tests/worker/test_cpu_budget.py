"""GIVEN an item whose screening would burn CPU without end WHEN it runs within the screening
process's budget THEN it is stopped after the budget with a terminal ``cpu_budget_exceeded``
result and the process's own limits are restored for the next item."""

from __future__ import annotations

import subprocess
import sys

from anomaly_cli.model import engine
from anomaly_cli.worker import child

_OVER_BUDGET = """
import resource, signal, sys, time
from anomaly_cli.model import engine
from anomaly_cli.worker import child

def endless(data, max_duration_s):  # what a decoder stuck in Python-level work looks like
    x = 0
    while True:
        x += 1

engine.screen_in_process = endless
before = resource.getrlimit(resource.RLIMIT_CPU)
t0 = time.process_time()
s = child.screen_within_budget(b"RIFF....", 600.0, cpu_seconds=0.3)
spent = time.process_time() - t0
print(s.status, s.reasons[0].detail.split()[0] if s.reasons else "-", round(spent, 2),
      resource.getrlimit(resource.RLIMIT_CPU) == before, signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0))
"""


def test_an_item_over_its_cpu_budget_becomes_a_terminal_result() -> None:
    # In a fresh interpreter, as in a screening process: the budget's kernel backstop (RLIMIT_CPU)
    # counts the whole process's CPU, so inside the test runner (many threads, busy neighbours)
    # a slow signal delivery could let it kill the runner itself.
    out = subprocess.run([sys.executable, "-c", _OVER_BUDGET], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status, detail, spent, limits_restored, timer_off = out.stdout.split()
    assert status == "failed" and "cpu_budget_exceeded" in out.stdout
    assert float(spent) < 5.0  # stopped at the budget, not at the end of the work
    assert limits_restored == "True" and timer_off == "True"


def test_an_item_within_budget_is_screened_as_usual(monkeypatch) -> None:
    monkeypatch.setattr(engine, "screen_in_process", lambda data, cap: "screened")
    assert child.screen_within_budget(b"x", 600.0, cpu_seconds=5.0) == "screened"
