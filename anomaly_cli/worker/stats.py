"""Worker counters, item latency percentiles and the periodic ``throughput`` event."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from anomaly_cli.worker import outcome as O

if TYPE_CHECKING:
    from anomaly_cli.worker.metrics import WorkerMetrics
    from anomaly_cli.worker.pool import ItemScreening

LATENCY_WINDOW = 4096  # recent items kept for p50 / p95: bounded memory over any run length


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[idx]


class WorkerStats:
    """Thread-safe counters shared by the loop, the batch threads and the live view."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, metrics: WorkerMetrics | None = None):
        self._lock = threading.Lock()
        #: :class:`~anomaly_cli.worker.metrics.WorkerMetrics` (``--metrics-port``), fed every count
        self.metrics = metrics
        self._clock = clock
        self.started = clock()
        self.counts: Counter[str] = Counter()
        self.failed_by_stage: Counter[str] = Counter()
        self.transient_by_stage: Counter[str] = Counter()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.in_flight = 0
        self.held = 0

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counts[name] += n
        if self.metrics is not None:
            self.metrics.count(name, n)

    def record(self, outcomes: Iterable[O.Outcome]) -> None:
        """Count the outcomes of one batch."""
        outcomes = list(outcomes)
        with self._lock:
            for o in outcomes:
                self.counts[o.kind] += 1
                if o.kind == O.SUCCEEDED and o.is_anomaly:
                    self.counts["anomalies"] += 1
                if o.kind == O.FAILED_TERMINAL:
                    self.counts["anomalies"] += 1
                    self.failed_by_stage[o.stage or "unknown"] += 1
                if o.kind == O.TRANSIENT:
                    self.transient_by_stage[o.stage or "unknown"] += 1
                if o.kind in (O.SUCCEEDED, O.FAILED_TERMINAL) and o.latency_s > 0:
                    self._latencies.append(o.latency_s)
        if self.metrics is not None:
            self.metrics.outcomes(outcomes)

    def observe_item(self, res: ItemScreening) -> None:
        """An item back from the screening pool (an ``ItemScreening``): stage times, bytes (metrics only)."""
        if self.metrics is not None:
            self.metrics.item(res)

    def observe_write(self, seconds: float) -> None:
        """One batch's result write took ``seconds`` (metrics only)."""
        if self.metrics is not None:
            self.metrics.write(seconds)

    @property
    def received(self) -> int:
        return self.counts["received"]

    @property
    def finished(self) -> int:
        """Messages whose fate is decided (acked or left for redelivery / DLQ)."""
        c = self.counts
        return sum(
            c[k]
            for k in (
                O.SUCCEEDED,
                O.FAILED_TERMINAL,
                O.RESULT_EXISTS,
                O.SOURCE_GONE,
                O.TRANSIENT,
                O.MALFORMED,
                O.RELEASED,
                O.DEFERRED,
            )
        )

    def snapshot(self) -> dict[str, Any]:
        """All counters plus rates and latency percentiles (for events and the live view)."""
        with self._lock:
            lat = list(self._latencies)
            elapsed = max(1e-9, self._clock() - self.started)
            c = self.counts
            screened = c[O.SUCCEEDED] + c[O.FAILED_TERMINAL]
            p50, p95 = percentile(lat, 0.5), percentile(lat, 0.95)
            return {
                "received": c["received"],
                "succeeded": c[O.SUCCEEDED],
                "anomalies": c["anomalies"],
                "failed_terminal": c[O.FAILED_TERMINAL],
                "failed_by_stage": dict(self.failed_by_stage),
                "transient": c[O.TRANSIENT],
                "transient_by_stage": dict(self.transient_by_stage),
                "skipped_result_exists": c[O.RESULT_EXISTS],
                "skipped_source_gone": c[O.SOURCE_GONE],
                "malformed": c[O.MALFORMED],
                "deferred": c[O.DEFERRED],
                "released": c[O.RELEASED],
                "acked": c["acked"],
                "ack_failed": c["ack_failed"],
                "duplicates_flagged": c["duplicates_flagged"],
                "in_flight": self.in_flight,
                "held": self.held,
                "items_per_s": round(screened / elapsed, 3),
                "elapsed_s": round(elapsed, 3),
                "latency_p50_ms": None if p50 is None else round(p50 * 1000, 1),
                "latency_p95_ms": None if p95 is None else round(p95 * 1000, 1),
            }
