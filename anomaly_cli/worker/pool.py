"""Where items are screened: threads for I/O, processes for the CPU stage.

- Downloads run on a thread pool of ``MAX_CONCURRENCY`` threads (I/O-bound; the GIL is free
  while a socket waits). A download thread hands its recording to the CPU stage and goes on to
  the next download at once, so ``MAX_CONCURRENCY`` is the number of downloads in flight and
  the CPU work of one item overlaps the downloads of the next (at concurrency 1 the worker
  still downloads back to back). At most ``2 x CPU_WORKERS`` recordings wait in or for the
  CPU stage (:attr:`ScreenPool.cpu_backlog`); when the processes fall behind, download threads
  wait for a place before handing over, which bounds memory and is the backpressure of the
  CPU-bound regime.
- Decode + features + inference run in a ``ProcessPoolExecutor`` of ``CPU_WORKERS`` processes
  (0 = one per core): numpy releases the GIL only in parts, so threads would not scale. Each
  process loads the model once (``engine.init_process``) and ignores SIGINT/SIGTERM: stopping
  is the parent's decision, and a terminal Ctrl-C reaches the whole process group. What a
  screening process does at start-up is in :mod:`anomaly_cli.worker.child`.
- Memory stays flat: a thread holds one recording's bytes at a time and hands them to a
  process; the CPU backlog is bounded; nothing accumulates per message. Downloads in this
  process are returned to the OS when freed (:func:`~anomaly_cli.worker.heap.limit_heap_growth`); a screening process
  keeps one item's working memory for the next (:func:`~anomaly_cli.worker.heap.reuse_heap_between_items`: returning
  it made every item fault it in again, ~1.9x the CPU), and freezes the objects it inherits.
  The processes start from a forkserver that has already imported numpy / scipy.fft / PyAV /
  libsndfile (:data:`~anomaly_cli.worker.child.CPU_PRELOAD`), so their code pages are shared instead of loaded once per
  process. Nothing they run needs scikit-learn or ``scipy.signal`` (the model is scored from plain
  arrays, resampling is numpy: model/outlier.py, audio/resample.py); those two imports alone were
  ~85 MB resident per process. The parent never imports them either.
- Each item has a wall-clock budget in its screening process (:data:`~anomaly_cli.worker.child.ITEM_WALL_SECONDS`),
  watched from here: every process shows the item it runs in a shared table
  (:class:`~anomaly_cli.worker.child.ItemSlots`), a watchdog thread kills (SIGKILL) a process
  whose item is over budget, the pool is replaced, and that item gets a terminal
  ``wall_budget_exceeded`` result. A process the kernel killed at the CPU budget's backstop
  (SIGXCPU) gives its item a terminal ``cpu_budget_exceeded`` the same way. The other items of
  the replaced pool are retried later (transient ``screening_process_lost``), and such a
  deliberate kill does not count towards the crash-loop limit.
- A ``screen`` callable can be injected instead of the process pool (tests, ``anomaly score``).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from concurrent.futures import BrokenExecutor, Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from anomaly_cli import errors
from anomaly_cli.adapters.protocols import AudioFetcher
from anomaly_cli.screening import Screening
from anomaly_cli.worker import child
from anomaly_cli.worker.heap import limit_heap_growth

ScreenFn = Callable[[bytes], Screening]
#: Rebuilds of the screening processes allowed within the window before a broken pool is fatal.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 600.0
#: How often the watchdog looks at the items running in the screening processes (seconds).
WATCH_SECONDS = 0.5


@dataclass(frozen=True, kw_only=True)
class ItemScreening:
    """One item's screening: a :class:`Screening`, or the transient error that prevented it."""

    screening: Screening | None = None
    error: BaseException | None = None
    fetch_error: errors.FetchError | None = None
    stage: str = ""
    fetch_ms: float = 0.0
    total_ms: float = 0.0
    fetched: bool = False


class ScreenPool:
    """Fetch on threads, screen on processes (or with an injected ``screen`` function)."""

    def __init__(
        self,
        fetcher: AudioFetcher,
        *,
        io_workers: int,
        model_version: str,
        max_duration_s: float,
        cpu_workers: int = 0,
        model_dir: str | None = None,
        model_ref: str | None = None,
        screen: ScreenFn | None = None,
        thresholds: dict[str, float] | None = None,
        wall_seconds: float = child.ITEM_WALL_SECONDS,
        cpu_task: Callable[..., Any] = child.screen_within_budget,
    ):
        self.fetcher = fetcher
        self.model_version = model_version
        self.max_duration_s = max_duration_s
        self._io = ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="io")
        self._screen = screen
        self._closed = False
        self._cpu: Executor | None = None
        self.cpu_workers = 0 if screen is not None else (cpu_workers or os.cpu_count() or 1)
        self._child_args = (str(model_dir or ""), model_ref or None, os.getpid(), thresholds)
        #: what a screening process runs for one item: ``cpu_task(data, max_duration_s)``
        self._cpu_task = cpu_task
        self.wall_seconds = wall_seconds
        self._slots: child.ItemSlots | None = None  # the current processes' table
        self._tokens = itertools.count(1)
        self._killed: dict[int, float] = {}  # token -> seconds it had run when the watchdog killed it
        self._stop_watch = threading.Event()
        #: Called once per rebuild of the process pool (the worker's metrics count restarts).
        self.on_restart: Callable[[], None] | None = None
        self.restarts: list[float] = []  # monotonic times of recent rebuilds (the crash-loop limit)
        self._rebuild_lock = threading.Lock()
        if screen is None:
            limit_heap_growth()  # downloads: freed buffers go back to the OS at once
            self._cpu = self._new_processes()
            threading.Thread(target=self._watch, name="screen-watchdog", daemon=True).start()
        #: Recordings allowed in the CPU stage at once (running + queued): one running and one
        #: ready per process, so no process waits for a pickle while downloads are done.
        self.cpu_backlog = 2 * self.cpu_workers
        self._cpu_slots = threading.BoundedSemaphore(max(1, self.cpu_backlog))

    def _new_processes(self) -> Executor:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: children start clean (no inherited threads or sockets of the parent)
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(child.CPU_PRELOAD)  # ignored if this process's forkserver already runs
        slots = child.ItemSlots(ctx, self.cpu_workers)
        executor = ProcessPoolExecutor(
            max_workers=self.cpu_workers,
            mp_context=ctx,
            initializer=child.initialize,
            initargs=(*self._child_args, slots),
        )
        self._slots = slots
        return executor

    def _watch(self) -> None:
        """The watchdog: kill a screening process whose item is past :attr:`wall_seconds`."""
        from anomaly_cli.log import get_logger

        while not self._stop_watch.wait(WATCH_SECONDS):
            slots = self._slots
            if slots is None or self._closed:
                continue
            now = time.monotonic()
            for pid, token, started in slots.running():
                if now - started <= self.wall_seconds or token in self._killed:
                    continue
                self._killed[token] = now - started
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # it ended meanwhile: its future says how
                    continue
                get_logger("worker").warning(
                    "screening_process_killed",
                    pid=pid,
                    ran_s=round(now - started, 1),
                    budget_s=self.wall_seconds,
                    error="wall_budget_exceeded",
                )

    def _over_budget(self, executor: Executor, slots: child.ItemSlots | None, token: int) -> str | None:
        """Why the item ``token`` of a broken pool was stopped on purpose: ``wall_budget_exceeded``
        (the watchdog killed it), ``cpu_budget_exceeded`` (its process died of SIGXCPU), or None."""
        if token in self._killed:
            return "wall_budget_exceeded"
        pid = slots.pid_of(token) if slots is not None else None
        proc = _processes(executor).get(pid) if pid is not None else None
        if proc is not None and proc.exitcode == -signal.SIGXCPU:
            return "cpu_budget_exceeded"
        return None

    def _deliberate(self, executor: Executor, slots: child.ItemSlots | None) -> bool:
        """Whether a process of ``executor`` was stopped for a budget (not a crash)."""
        if slots is None:
            return False
        return any(self._over_budget(executor, slots, token) for token in slots.tokens())

    def processes_alive(self) -> int:
        """Screening processes alive in the current pool (they start on demand, up to ``cpu_workers``)."""
        return sum(1 for p in list(_processes(self._cpu).values()) if p.is_alive())

    def _replace_broken(
        self, broken: Executor | None, error: BaseException, slots: child.ItemSlots | None = None
    ) -> BaseException:
        """A screening process died: start a new process pool once, and say what the items get.

        Why: ``ProcessPoolExecutor`` marks itself broken for good when one of its processes dies
        (the OOM killer on a huge recording, a native crash in a decoder), and every later item
        would fail. The items that were on it are lost (:class:`errors.ScreeningProcessLost`,
        transient: their messages come back); the next ones run on fresh processes. More than
        :data:`MAX_RESTARTS` rebuilds within :data:`RESTART_WINDOW_SECONDS` is a crash loop (the
        model cannot load, every recording kills the process): the error stays a broken pool and
        the worker stops abnormally, as it does without this. A process stopped for an item's
        budget (``slots`` shows it) is no crash: that rebuild is not counted.
        """
        if not isinstance(error, BrokenExecutor) or self._closed:
            return error
        with self._rebuild_lock:
            if self._cpu is not broken:  # another thread has rebuilt it already
                return errors.ScreeningProcessLost(f"screening process died: {error}")
            now = time.monotonic()
            if broken is None or not self._deliberate(broken, slots):
                self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_SECONDS]
                if len(self.restarts) >= MAX_RESTARTS:
                    return error
                self.restarts.append(now)
            if broken is not None:
                _kill_processes(broken)
                broken.shutdown(wait=False, cancel_futures=True)
            self._cpu = self._new_processes()
        from anomaly_cli.log import get_logger

        get_logger("worker").warning(
            "screening_processes_restarted", reason=str(error)[:300], restarts_in_window=len(self.restarts)
        )
        if self.on_restart is not None:
            self.on_restart()
        return errors.ScreeningProcessLost(f"screening process died: {error}")

    def warm_up(self) -> None:
        """Start the CPU processes now (model loaded in each) so the first batch does not pay for it.

        Raises :class:`errors.ModelError` when the processes cannot load the model.
        """
        if self._cpu is None:
            return
        try:
            futs = [self._cpu.submit(os.getpid) for _ in range(self.cpu_workers)]
            for f in futs:
                f.result()
        except BrokenExecutor as e:
            self._cpu.shutdown(wait=False, cancel_futures=True)
            self._io.shutdown(wait=False)
            raise errors.ModelError("the screening processes could not load the model (see the log above)") from e

    def submit(self, url: str) -> "Future[ItemScreening]":
        """Screen the recording at ``url``; the future never raises (errors are in the value).

        It is cancelled only when :meth:`close` cancels the download before it started.
        """
        out: Future[ItemScreening] = Future()
        io = self._io.submit(self._fetch, url, out)
        io.add_done_callback(partial(_propagate, out))
        return out

    def _fetch(self, url: str, out: "Future[ItemScreening]") -> None:
        """Download on an I/O thread, then screen: hand over to a process, or inline when injected."""
        from anomaly_cli.model import engine

        t0 = time.perf_counter()
        try:
            fetched = self.fetcher.fetch(url)
        except Exception as e:  # noqa: BLE001 - every download failure is this item's answer, never the batch's
            ms = _ms_since(t0)
            fetch_error = e if isinstance(e, errors.FetchError) else None
            if fetch_error is not None and not errors.is_transient(fetch_error):
                # a permanent download failure (404, not audio, too big ...) is a terminal result
                screening = engine.screen_fetch_error(fetch_error, self.model_version)
                out.set_result(
                    ItemScreening(screening=screening, fetch_error=fetch_error, stage="fetch", fetch_ms=ms, total_ms=ms)
                )
            else:
                out.set_result(ItemScreening(error=e, fetch_error=fetch_error, stage="fetch", fetch_ms=ms, total_ms=ms))
            return
        fetch_ms = _ms_since(t0)
        data = fetched.data
        del fetched
        if self._screen is not None:
            try:
                result = self._screen(data)
            except Exception as e:  # noqa: BLE001 - an engine bug: retry later
                out.set_result(_after_fetch(None, e, t0, fetch_ms))
                return
            out.set_result(_after_fetch(result, None, t0, fetch_ms))
            return
        assert self._cpu is not None
        self._cpu_slots.acquire()  # backpressure: the processes are behind; keep this one here
        executor, slots, token, nbytes = self._cpu, self._slots, next(self._tokens), len(data)
        try:
            cpu = executor.submit(child.run_item, token, self._cpu_task, data, self.max_duration_s)
        except Exception as e:  # noqa: BLE001 - a broken or closed pool: the loop decides (fatal / stop)
            self._cpu_slots.release()
            out.set_result(_after_fetch(None, self._replace_broken(executor, e, slots), t0, fetch_ms))
            return
        cpu.add_done_callback(partial(self._screened, out, t0, fetch_ms, executor, slots, token, nbytes))

    def _screened(
        self,
        out: "Future[ItemScreening]",
        t0: float,
        fetch_ms: float,
        executor: Executor,
        slots: child.ItemSlots | None,
        token: int,
        nbytes: int,
        cpu: Future,
    ) -> None:
        """Done callback of the CPU future (runs on the executor's thread): free the place, report."""
        from anomaly_cli.model import engine

        self._cpu_slots.release()
        try:
            result = cpu.result()
        except BaseException as e:  # noqa: BLE001 - crashed process, cancelled at close, engine bug: retry later
            stopped = self._over_budget(executor, slots, token) if isinstance(e, BrokenExecutor) else None
            error = self._replace_broken(executor, e, slots)
            if stopped is None:
                out.set_result(_after_fetch(None, error, t0, fetch_ms))
                return
            ran = self._killed.pop(token, None)
            if stopped == "wall_budget_exceeded":
                why = f"screening ran {ran or self.wall_seconds:.0f} s, past its {self.wall_seconds:g} s budget"
            else:
                why = f"screening used more than twice its {child.ITEM_CPU_SECONDS:g} s CPU budget (SIGXCPU)"
            message = why + ": the screening process was killed and replaced"
            result = engine.screen_stopped(stopped, message, self.model_version, nbytes)
        self._killed.pop(token, None)
        out.set_result(_after_fetch(result, None, t0, fetch_ms))

    def close(self, *, wait: bool = True) -> None:
        """Stop the pools; ``wait=False`` cancels what has not started."""
        self._closed = True
        self._stop_watch.set()
        self._io.shutdown(wait=wait, cancel_futures=not wait)
        if self._cpu is not None:
            self._cpu.shutdown(wait=wait, cancel_futures=not wait)


def _processes(executor: Executor | None) -> dict[int, Any]:
    """``ProcessPoolExecutor``'s own pid -> process table (private; empty before the first submit
    and once it has shut down)."""
    return getattr(executor, "_processes", None) or {}


def _kill_processes(executor: Executor) -> None:
    """SIGKILL what is left of a broken pool's processes. Their items have already failed (retried
    later); the executor's own clean-up sends SIGTERM, which screening processes ignore (stopping is
    the worker's decision), and then waits for each to finish its item before it reads the stop."""
    for p in list(_processes(executor).values()):
        try:
            p.kill()
        except (OSError, ValueError):  # already gone, or closed
            pass


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _after_fetch(result: Screening | None, error: BaseException | None, t0: float, fetch_ms: float) -> ItemScreening:
    """A downloaded item's screening, or the error that stopped it (stage ``inference``, retried)."""
    return ItemScreening(
        screening=result,
        error=error,
        fetch_error=None,
        stage="inference" if error is not None else "",
        fetch_ms=fetch_ms,
        total_ms=_ms_since(t0),
        fetched=True,
    )


def _propagate(out: "Future[ItemScreening]", io: Future) -> None:
    """The download task ended without settling ``out``: cancelled at close, or it raised.

    What it raised is raised again where the batch waits for ``out`` (as when the batch waited
    for the task itself): an ``Exception`` there makes the batch's messages transient, anything
    worse (``BaseException``) ends the worker.
    """
    if out.done():
        return
    if io.cancelled():
        out.cancel()
    elif io.exception() is not None:
        out.set_exception(io.exception())
