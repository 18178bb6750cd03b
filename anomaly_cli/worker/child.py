"""The screening processes' upkeep: what each one does when it starts, so that it screens fast, ends
with its worker and keeps the worker's stderr a JSON event stream.

:func:`initialize` is the ``ProcessPoolExecutor`` initializer of :class:`~anomaly_cli.worker.pool.ScreenPool`
(and of the worker bench): stop signals ignored (stopping is the parent's decision), exit with the
worker (:func:`exit_with_worker`), native libraries' stderr as events (:func:`native_stderr_as_events`),
inherited objects frozen, the allocator set for repeated items, one BLAS thread, the model loaded once.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable

from anomaly_cli.worker.heap import reuse_heap_between_items

#: Imported once in the forkserver; every screening process forks from it and shares the pages.
CPU_PRELOAD = [
    "numpy",
    "scipy.fft",
    "av",
    "soundfile",
    "anomaly_cli.audio.decode",
    "anomaly_cli.audio.resample",
    "anomaly_cli.audio.features",
    "anomaly_cli.audio.fingerprint",
    "anomaly_cli.model.engine",
    "anomaly_cli.model.outlier",
    "anomaly_cli.model.rules",
    "anomaly_cli.model.speechband",
]


def exit_with_worker(worker_pid: int) -> None:
    """End this screening process as soon as the worker process ``worker_pid`` is gone.

    Why: ``ProcessPoolExecutor`` children never notice a parent killed with SIGKILL (or the OOM
    killer): each child holds the write end of the pool's call queue itself, so its read never
    sees EOF, and it also holds the forkserver's "alive" pipe, so the forkserver stays too. Left
    alone, every killed worker would leave its forkserver and screening processes behind
    (measured: ~150 MB RSS each, forever). A daemon thread waits on a pidfd of the worker (Linux
    >= 5.3; elsewhere it checks every second) and ends the process; the forkserver then sees EOF
    and exits. What the process was screening is lost with the worker anyway: the message
    comes back after its visibility timeout.
    """
    import threading

    try:
        pidfd = os.pidfd_open(worker_pid)
    except ProcessLookupError:
        os._exit(0)
    except (AttributeError, OSError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            import select

            select.select([pidfd], [], [])  # readable once the worker has exited
        else:
            while True:
                time.sleep(1.0)
                try:
                    os.kill(worker_pid, 0)
                except ProcessLookupError:
                    break
                except PermissionError:
                    continue
        os._exit(0)

    threading.Thread(target=watch, name="worker-watch", daemon=True).start()


def native_stderr_as_events() -> None:
    """Turn what native libraries print on this process's stderr into JSON events.

    Why: the worker's stderr is its JSON event stream, and libmpg123 (inside libsndfile) prints
    plain-text warnings for cut MP3s ("Warning: Xing stream size off ..."). A screening process
    does nothing but decode and screen, so its file descriptor 2 is pointed, once at start-up
    (no per-call redirect, so no race between threads), at a pipe that a thread reads line by
    line and logs as ``native_library_message`` (warning, component ``decode``). Python's own
    ``sys.stderr`` and this process's event logger keep the real stderr.
    """
    import sys
    import threading

    from anomaly_cli.log import configure_logging, get_logger

    real = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    sys.stderr = real
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), stream=real)
    r, w = os.pipe()
    os.dup2(w, 2)
    os.close(w)
    log = get_logger("decode")

    def pump() -> None:
        with os.fdopen(r, "rb") as lines:
            for line in lines:
                text = line.decode("utf-8", "replace").strip()
                if text:
                    log.warning("native_library_message", message=text[:500], pid=os.getpid())

    threading.Thread(target=pump, name="native-stderr", daemon=True).start()


class ItemSlots:
    """What each screening process of one pool is running, in shared memory: one slot per process
    of ``(pid, token, started)``, ``started`` on the system's monotonic clock (the same in every
    process), ``token`` 0 when idle. A process claims its slot once, at start-up (under the lock);
    per item it writes only its own slot (no lock: a process killed in the middle of an item holds
    nothing another one waits for). The worker reads the slots to find an item over its wall-clock
    budget and the process running it (:class:`~anomaly_cli.worker.pool.ScreenPool`).
    """

    def __init__(self, ctx: Any, n: int):
        self.n = n
        self.values = ctx.RawArray("d", 3 * n)
        self.lock = ctx.Lock()

    def claim(self, pid: int) -> int:
        """The slot of process ``pid`` (-1 when the table is full: that process is not watched)."""
        with self.lock:
            for i in range(self.n):
                if self.values[3 * i] == 0:
                    self.values[3 * i] = pid
                    return i
        return -1

    def start(self, i: int, token: int) -> None:
        self.values[3 * i + 2] = time.monotonic()
        self.values[3 * i + 1] = token  # last: a reader that sees the token sees its start time

    def finish(self, i: int) -> None:
        self.values[3 * i + 1] = 0

    def running(self) -> list[tuple[int, int, float]]:
        """``(pid, token, started)`` of every slot whose process is running an item."""
        out = []
        for i in range(self.n):
            token = int(self.values[3 * i + 1])
            started = self.values[3 * i + 2]
            if token and int(self.values[3 * i + 1]) == token:  # not changed while it was read
                out.append((int(self.values[3 * i]), token, started))
        return out

    def tokens(self) -> list[int]:
        """The token every slot shows (0: idle)."""
        return [int(self.values[3 * i + 1]) for i in range(self.n)]

    def pid_of(self, token: int) -> int | None:
        """The process whose slot shows ``token`` (it died running it when it still does)."""
        for i in range(self.n):
            if token and int(self.values[3 * i + 1]) == token:
                return int(self.values[3 * i])
        return None


#: This process's table and slot (:func:`initialize`), read by :func:`run_item`.
_SLOTS: ItemSlots | None = None
_SLOT = -1


def run_item(token: int, task: Callable[..., Any], *args: Any) -> Any:
    """Run ``task(*args)`` (one item) with this process's slot showing ``token`` meanwhile."""
    slots, i = _SLOTS, _SLOT
    if slots is not None and i >= 0:
        slots.start(i, token)
    try:
        return task(*args)
    finally:
        if slots is not None and i >= 0:
            slots.finish(i)


def initialize(
    model_dir: str,
    version: str | None,
    worker_pid: int | None = None,
    thresholds: dict[str, float] | None = None,
    slots: ItemSlots | None = None,
) -> None:
    """Screening process start-up: ignore stop signals, one BLAS thread, load the model once.

    ``worker_pid`` (the worker's pool passes it): exit with that process, and log native
    libraries' stderr lines as events (:func:`exit_with_worker`, :func:`native_stderr_as_events`).
    ``slots``: the pool's :class:`ItemSlots`, where :func:`run_item` shows what this process runs.
    """
    global _SLOTS, _SLOT
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if slots is not None:
        _SLOTS, _SLOT = slots, slots.claim(os.getpid())
    if worker_pid is not None:
        exit_with_worker(worker_pid)
        native_stderr_as_events()
    # The objects inherited from the forkserver (numpy, scipy.fft, PyAV modules) are
    # never garbage; freezing them keeps the collector from walking them, which would write to
    # every object header and so copy the shared pages into this process.
    import gc

    gc.freeze()
    reuse_heap_between_items()
    # Parallelism comes from the processes: a multi-threaded BLAS in each of them would fight
    # over the same cores (and allocate per-thread buffers), so 2 processes would not be 2x.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from anomaly_cli.model import engine

    engine.init_process(model_dir, version, thresholds)


#: CPU seconds one item may cost in a screening process. The decoder's caps keep every input of
#: <= 5 MB far below it (see BENCHMARKS.md, decode cost); this is the backstop for what they miss.
ITEM_CPU_SECONDS = 10.0
#: Wall-clock seconds one item may run in a screening process before the worker kills the process
#: and replaces it (a native call blocked without using CPU, a stopped process: nothing in the
#: process can stop those). Above the CPU budget's kernel backstop (2x ITEM_CPU_SECONDS), so an
#: item burning CPU meets that first; 15x the worst measured input (BENCHMARKS.md, decode cost).
ITEM_WALL_SECONDS = 30.0


class OverBudget(BaseException):
    """Raised inside a screening process when one item used up its CPU budget.

    A ``BaseException`` so that the decoder's and engine's ``except Exception`` cannot swallow it.
    """


def _over_budget(signum: int, frame: object) -> None:
    raise OverBudget()


def screen_within_budget(data: bytes, max_duration_s: float, cpu_seconds: float = ITEM_CPU_SECONDS):
    """Screen one item in this process, stopped after ``cpu_seconds`` of this process's CPU time.

    Two limits: ``ITIMER_PROF`` (CPU time) raises :class:`OverBudget` at the next bytecode, and the
    item becomes a terminal ``cpu_budget_exceeded`` result; ``RLIMIT_CPU`` at twice the budget is
    the kernel's backstop for native code that never returns to Python: SIGXCPU kills the process,
    the pool replaces it and the worker gives the item the same terminal ``cpu_budget_exceeded``
    (it knows the item from the process's slot and its exit signal). An item that neither uses CPU
    nor returns is the worker's to stop (:data:`ITEM_WALL_SECONDS`: ``wall_budget_exceeded``).
    """
    import resource

    from anomaly_cli.model import engine

    used = resource.getrusage(resource.RUSAGE_SELF)
    used_s = used.ru_utime + used.ru_stime
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    backstop = int(used_s + 2 * cpu_seconds) + 1
    if hard == resource.RLIM_INFINITY or backstop < hard:
        resource.setrlimit(resource.RLIMIT_CPU, (backstop, hard))
    previous = signal.signal(signal.SIGPROF, _over_budget)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        return engine.screen_in_process(data, max_duration_s)
    except OverBudget:
        return engine.screen_over_budget(data, cpu_seconds)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
