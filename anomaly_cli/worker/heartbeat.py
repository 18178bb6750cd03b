"""Held messages and the heartbeat that keeps their visibility from running out.

Every received message is *held* (in a :class:`HeldMessages` registry) until it is acked, set
to a retry visibility, or released. A background thread extends the visibility of any held
message once ``fraction`` of the visibility timeout has passed since it was last set, so a
slow download is never delivered to a second worker. A heartbeat error stops that message's
heartbeat and is logged; the item itself carries on (the worst case is a redelivery, which
insert-if-absent makes harmless).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from anomaly_cli.adapters.protocols import WorkQueue
from anomaly_cli.contract import WorkItem
from anomaly_cli.log import get_logger

log = get_logger("worker")


@dataclass
class Held:
    """A received, parsed message the worker is responsible for."""

    message_id: str
    receipt: str
    receive_count: int
    item: WorkItem
    rescreen: bool = False
    received_at: float = field(default_factory=time.monotonic)
    extended_at: float = field(default_factory=time.monotonic)
    heartbeat: bool = True


class HeldMessages:
    """Thread-safe registry of held messages (buffered or in flight)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, Held] = {}

    def add(self, held: Held) -> None:
        with self._lock:
            self._held[held.message_id] = held

    def discard(self, message_ids: list[str]) -> None:
        with self._lock:
            for mid in message_ids:
                self._held.pop(mid, None)

    def take_all(self) -> list[Held]:
        """Remove and return everything (for release on shutdown)."""
        with self._lock:
            out = list(self._held.values())
            self._held.clear()
            return out

    def due(self, now: float, after: float) -> list[Held]:
        with self._lock:
            return [h for h in self._held.values() if h.heartbeat and now - h.extended_at >= after]

    def __len__(self) -> int:
        with self._lock:
            return len(self._held)


class Heartbeat:
    """Background thread extending the visibility of held messages."""

    def __init__(
        self,
        queue: WorkQueue,
        held: HeldMessages,
        visibility_timeout: int,
        *,
        fraction: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.queue = queue
        self.held = held
        self.visibility_timeout = int(visibility_timeout)
        self.after = max(0.2, visibility_timeout * fraction)
        self.clock = clock
        self.extended = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.visibility_timeout <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        tick = max(0.05, self.after / 4)
        while not self._stop.wait(tick):
            try:
                self.beat()
            except Exception as e:  # noqa: BLE001 - the heartbeat thread must survive
                log.warning("heartbeat_failed", error=type(e).__name__, reason=str(e)[:200])

    def beat(self) -> int:
        """Extend every due message once; returns how many were extended."""
        now = self.clock()
        due = self.held.due(now, self.after)
        if not due:
            return 0
        by_id = {h.message_id: h for h in due}
        res = self.queue.change_visibility_batch([(h.message_id, h.receipt, self.visibility_timeout) for h in due])
        for mid in res.succeeded:
            if mid in by_id:
                by_id[mid].extended_at = now
        for f in res.failed:
            h = by_id.get(f.id)
            if h is not None:
                h.heartbeat = False  # stop this item's heartbeat; the item itself continues
            log.warning("heartbeat_failed", message_id=f.id, error=f.code, reason=f.message[:200])
        self.extended += len(res.succeeded)
        self.failed += len(res.failed)
        if res.succeeded:
            log.debug("visibility_extended", count=len(res.succeeded), seconds=self.visibility_timeout)
        return len(res.succeeded)
