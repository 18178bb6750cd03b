"""What a screening process runs in tests/worker/test_wall_budget.py instead of the engine (it must be
importable in the screening processes): each item's bytes say what the item does."""

from __future__ import annotations

import os
import resource
import signal
import time


def misbehave(data: bytes, max_duration_s: float) -> str:
    if data == b"hang":  # a native call that blocks without using CPU: no Python-level signal ever fires
        time.sleep(3600)
    elif data == b"stop":  # a stopped process: nothing in it runs at all
        os.kill(os.getpid(), signal.SIGSTOP)
    elif data == b"spin":  # burns CPU past the kernel's RLIMIT_CPU: SIGXCPU kills the process
        used = resource.getrusage(resource.RUSAGE_SELF)
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 1, hard))
        while True:
            pass
    return "screened " + data.decode()


def hang_or_screen(data: bytes, max_duration_s: float):
    """A recording whose bytes are ``hang`` blocks in a native call; any other is screened as usual."""
    if data == b"hang":
        time.sleep(3600)
    from anomaly_cli.worker.child import screen_within_budget

    return screen_within_budget(data, max_duration_s)
