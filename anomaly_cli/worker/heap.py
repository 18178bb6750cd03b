"""glibc's allocator, tuned for each side of the worker: the parent returns downloads at once, a
screening process keeps one item's working memory for the next, the loop trims the parent's heaps.

Every function is a no-op on other C libraries (musl, macOS), whose allocators do not keep freed
memory the same way. The settings are process-wide, so each side calls its own once at start-up:
the pool for the parent (:func:`limit_heap_growth`), :mod:`anomaly_cli.worker.child` for a screening
process (:func:`reuse_heap_between_items`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


def limit_heap_growth() -> None:
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


def reuse_heap_between_items() -> None:
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
