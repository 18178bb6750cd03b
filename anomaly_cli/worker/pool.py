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
  is the parent's decision, and a terminal Ctrl-C reaches the whole process group.
- Memory stays flat: a thread holds one recording's bytes at a time and hands them to a
  process; the CPU backlog is bounded; nothing accumulates per message. Downloads in this
  process are returned to the OS when freed (:func:`_limit_heap_growth`); a screening process
  keeps one item's working memory for the next (:func:`_reuse_heap_between_items`: returning
  it made every item fault it in again, ~1.9x the CPU), and freezes the objects it inherits.
  The processes start from a forkserver that has already imported numpy / scipy.fft / PyAV /
  libsndfile (:data:`CPU_PRELOAD`), so their code pages are shared instead of loaded once per
  process. Nothing they run needs scikit-learn or ``scipy.signal`` (the model is scored from plain
  arrays, resampling is numpy: model/outlier.py, audio/resample.py); those two imports alone were
  ~85 MB resident per process. The parent never imports them either.
- A ``screen`` callable can be injected instead of the process pool (tests, ``anomaly score``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from functools import lru_cache, partial
from dataclasses import dataclass
from typing import Any, Callable

from anomaly_cli import errors
from anomaly_cli.screening import Screening

ScreenFn = Callable[[bytes], Screening]
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


#: Rebuilds of the screening processes allowed within the window before a broken pool is fatal.
MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 600.0


@dataclass(frozen=True)
class ItemScreening:
    """One item's screening: a :class:`Screening`, or the transient error that prevented it."""

    screening: Screening | None
    error: BaseException | None = None
    fetch_error: errors.FetchError | None = None
    stage: str = ""
    fetch_ms: float = 0.0
    total_ms: float = 0.0
    fetched: bool = False


def _limit_heap_growth() -> None:
    """Make this process give large freed buffers back to the OS at once (glibc only; else a no-op).

    For the worker's parent: each download is a 1-2 MB bytes object that lives for one item, on
    one of up to ``MAX_CONCURRENCY`` threads. glibc serves blocks over ``M_MMAP_THRESHOLD`` (128 KiB)
    with mmap, but after the first such block is freed it raises the threshold (up to 32 MiB), so
    later downloads come from the heap and the fragments stay mapped. A fixed threshold turns that
    dynamic adjustment off (the buffers are returned on ``free``); a fixed trim threshold returns
    the top of the heap. The cost, an mmap/munmap pair and a page fault per 4 KiB of each download,
    is small next to receiving it.
    """
    _mallopt(mmap_threshold=128 * 1024, trim_threshold=128 * 1024)


def _reuse_heap_between_items() -> None:
    """Screening processes: keep one item's working memory mapped for the next item (glibc only).

    Screening allocates and frees the same arrays for every item (~13 MB of frames and spectra in
    blocks, plus the decoded signal: 3.8 MB a minute). Returned to the OS after each item (the
    parent's setting), every item faulted all of it in again: ~50 000 page faults per 60 s
    recording, which made screening ~1.9x slower (measured: 179 vs 95 ms per item, bench/ and
    BENCHMARKS.md). Arrays up to 16 MiB now come from the heap and up to 16 MiB of free heap is
    kept, so steady-state items fault nothing in; longer recordings' arrays (over 16 MiB) are still
    mmapped and returned at once. The price is ~16 MB more per process, held flat (the working set
    of one item, not a growth).
    """
    _mallopt(mmap_threshold=16 * 1024 * 1024, trim_threshold=16 * 1024 * 1024)


def _mallopt(*, mmap_threshold: int, trim_threshold: int) -> None:
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (fixing it also stops the dynamic raise)
        libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD


@lru_cache(maxsize=1)
def _glibc() -> Any:
    """glibc's ``libc.so.6`` with ``mallopt`` and ``malloc_trim``, or None on other C libraries
    (musl, macOS: their allocators do not keep freed memory the same way, nothing to tune)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both exist in glibc only
    except (OSError, AttributeError):
        return None
    return libc


def _exit_with_worker(worker_pid: int) -> None:
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
        pidfd = os.pidfd_open(worker_pid)  # type: ignore[attr-defined]
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


def trim_heap() -> None:
    """Give the free pages inside glibc's heaps back to the OS (glibc only; else a no-op).

    Why: the worker's parent allocates from many threads (downloads arrive in 64 KiB reads,
    SQS / Mongo replies, result documents) into a few malloc arenas. Freed memory in the middle
    of an arena stays mapped, because glibc returns only the top of a heap by itself, so the
    resident size creeps up over a long run although the live data does not grow (measured:
    Python-level allocations flat while the parent's RSS grew ~20 MB over 10 000 messages).
    ``malloc_trim(0)`` releases every whole free page in every arena (madvise), in
    milliseconds. The worker loop calls it every few seconds.
    """
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _native_stderr_as_events() -> None:
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


def _child_init(model_dir: str, version: str | None, worker_pid: int | None = None) -> None:
    """Screening process start-up: ignore stop signals, one BLAS thread, load the model once.

    ``worker_pid`` (the worker's pool passes it): exit with that process, and log native
    libraries' stderr lines as events (:func:`_exit_with_worker`, :func:`_native_stderr_as_events`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if worker_pid is not None:
        _exit_with_worker(worker_pid)
        _native_stderr_as_events()
    # The objects inherited from the forkserver (numpy, scipy.fft, PyAV modules) are
    # never garbage; freezing them keeps the collector from walking them, which would write to
    # every object header and so copy the shared pages into this process.
    import gc

    gc.freeze()
    _reuse_heap_between_items()
    # Parallelism comes from the processes: a multi-threaded BLAS in each of them would fight
    # over the same cores (and allocate per-thread buffers), so 2 processes would not be 2x.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    from anomaly_cli.model import engine

    engine.init_process(model_dir, version)


class ScreenPool:
    """Fetch on threads, screen on processes (or with an injected ``screen`` function)."""

    def __init__(
        self,
        fetcher: Any,
        *,
        io_workers: int,
        model_version: str,
        max_duration_s: float,
        cpu_workers: int = 0,
        model_dir: str | None = None,
        model_ref: str | None = None,
        screen: ScreenFn | None = None,
    ):
        self.fetcher = fetcher
        self.model_version = model_version
        self.max_duration_s = max_duration_s
        self._io = ThreadPoolExecutor(max_workers=io_workers, thread_name_prefix="io")
        self._screen = screen
        self._closed = False
        self._cpu: Executor | None = None
        self.cpu_workers = 0 if screen is not None else (cpu_workers or os.cpu_count() or 1)
        self._child_args = (str(model_dir or ""), model_ref or None, os.getpid())
        #: Called once per rebuild of the process pool (the worker's metrics count restarts).
        self.on_restart: Callable[[], None] | None = None
        self.restarts: list[float] = []  # monotonic times of recent rebuilds (the crash-loop limit)
        self._rebuild_lock = threading.Lock()
        if screen is None:
            _limit_heap_growth()  # downloads: freed buffers go back to the OS at once
            self._cpu = self._new_processes()
        #: Recordings allowed in the CPU stage at once (running + queued): one running and one
        #: ready per process, so no process waits for a pickle while downloads are done.
        self.cpu_backlog = 2 * self.cpu_workers
        self._cpu_slots = threading.BoundedSemaphore(max(1, self.cpu_backlog))

    def _new_processes(self) -> Executor:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: children start clean (no inherited threads or sockets of the parent)
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(CPU_PRELOAD)  # ignored if this process's forkserver already runs
        return ProcessPoolExecutor(
            max_workers=self.cpu_workers, mp_context=ctx, initializer=_child_init, initargs=self._child_args
        )

    def _replace_broken(self, broken: Executor | None, error: BaseException) -> BaseException:
        """A screening process died: start a new process pool once, and say what the items get.

        Why: ``ProcessPoolExecutor`` marks itself broken for good when one of its processes dies
        (the OOM killer on a huge recording, a native crash in a decoder), and every later item
        would fail. The items that were on it are lost (:class:`errors.ScreeningProcessLost`,
        transient: their messages come back); the next ones run on fresh processes. More than
        :data:`MAX_RESTARTS` rebuilds within :data:`RESTART_WINDOW_SECONDS` is a crash loop (the
        model cannot load, every recording kills the process): the error stays a broken pool and
        the worker stops abnormally, as it does without this.
        """
        from concurrent.futures import BrokenExecutor

        if not isinstance(error, BrokenExecutor) or self._closed:
            return error
        with self._rebuild_lock:
            if self._cpu is not broken:  # another thread has rebuilt it already
                return errors.ScreeningProcessLost(f"screening process died: {error}")
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_SECONDS]
            if len(self.restarts) >= MAX_RESTARTS:
                return error
            self.restarts.append(now)
            if broken is not None:
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
        from concurrent.futures import BrokenExecutor

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
        except errors.FetchError as e:
            ms = _ms_since(t0)
            if e.transient:
                out.set_result(ItemScreening(None, e, e, "fetch", ms, ms))
            else:
                out.set_result(
                    ItemScreening(engine.screen_fetch_error(e, self.model_version), None, e, "fetch", ms, ms)
                )
            return
        except Exception as e:  # noqa: BLE001 - unknown fetch errors are transient (errors.is_transient)
            ms = _ms_since(t0)
            out.set_result(ItemScreening(None, e, None, "fetch", ms, ms))
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
        executor = self._cpu
        try:
            cpu = executor.submit(engine.screen_in_process, data, self.max_duration_s)
        except Exception as e:  # noqa: BLE001 - a broken or closed pool: the loop decides (fatal / stop)
            self._cpu_slots.release()
            out.set_result(_after_fetch(None, self._replace_broken(executor, e), t0, fetch_ms))
            return
        cpu.add_done_callback(partial(self._screened, out, t0, fetch_ms, executor))

    def _screened(
        self, out: "Future[ItemScreening]", t0: float, fetch_ms: float, executor: Executor, cpu: Future
    ) -> None:
        """Done callback of the CPU future (runs on the executor's thread): free the place, report."""
        self._cpu_slots.release()
        try:
            result = cpu.result()
        except BaseException as e:  # noqa: BLE001 - crashed process, cancelled at close, engine bug: retry later
            out.set_result(_after_fetch(None, self._replace_broken(executor, e), t0, fetch_ms))
            return
        out.set_result(_after_fetch(result, None, t0, fetch_ms))

    def close(self, *, wait: bool = True) -> None:
        """Stop the pools; ``wait=False`` cancels what has not started."""
        self._closed = True
        self._io.shutdown(wait=wait, cancel_futures=not wait)
        if self._cpu is not None:
            self._cpu.shutdown(wait=wait, cancel_futures=not wait)


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def _after_fetch(result: Screening | None, error: BaseException | None, t0: float, fetch_ms: float) -> ItemScreening:
    """A downloaded item's screening, or the error that stopped it (stage ``inference``, retried)."""
    return ItemScreening(
        result, error, None, "inference" if error is not None else "", fetch_ms, _ms_since(t0), fetched=True
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
