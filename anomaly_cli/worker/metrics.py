"""Prometheus metrics of one worker (``anomaly work --metrics-port N``).

Why counts are made in the worker's parent process only: every measurement a screening process
makes already travels back to the parent with the item's result (``Screening.timings_ms`` for
decode / features / inference, ``Screening.audio["bytes"]``), so the parent observes it when the
batch thread collects the item. prometheus_client's multiprocess mode (one mmapped file per
process in ``PROMETHEUS_MULTIPROC_DIR``, merged at scrape time) would also work, but it needs a
writable shared directory, cleanup of dead processes' files, does not support gauges with
callbacks, and loses nothing here: the screening processes count nothing the result does not
carry. An item lost with a crashed screening process is counted by its outcome (``transient``)
and by :meth:`WorkerMetrics.screening_restart`.

Every metric lives in a private :class:`~prometheus_client.CollectorRegistry` (two workers in one
test process do not collide); ``prometheus_client`` is imported only when metrics are enabled,
so a worker without ``--metrics-port`` does not pay for it.

Names (documented in docs/deployment/metrics.md; the Grafana dashboard and alert rules in
docs/ use exactly these):

==========================================================  =========  ==================================
name                                                        type       labels
==========================================================  =========  ==================================
``anomaly_worker_messages_received_total``                  counter
``anomaly_worker_outcomes_total``                           counter    ``kind``, ``error_code``
``anomaly_worker_anomalies_total``                          counter
``anomaly_worker_messages_acked_total``                     counter
``anomaly_worker_ack_failures_total``                       counter
``anomaly_worker_duplicates_flagged_total``                 counter
``anomaly_worker_items_per_second``                         gauge      (last 60 s)
``anomaly_worker_stage_seconds``                            histogram  ``stage``: fetch, decode,
                                                                       features, inference, write
``anomaly_worker_item_seconds``                             histogram  (receive to outcome)
``anomaly_worker_fetched_bytes_total``                      counter
``anomaly_worker_in_flight_messages``                       gauge
``anomaly_worker_held_messages``                            gauge
``anomaly_worker_screening_process_restarts_total``         counter
``anomaly_worker_access_denied_breaker_open``               gauge      (0 or 1)
``anomaly_worker_access_denied_consecutive``                gauge
``anomaly_worker_model_info``                               info       ``version``
``anomaly_queue_messages``                                  gauge      ``queue``: work, dlq; ``state``:
                                                                       visible, in_flight, delayed
==========================================================  =========  ==================================

``anomaly_queue_messages`` is SQS's view (``GetQueueAttributes``, refreshed at most every 30 s,
at scrape time): the alerts on a non-empty DLQ and on "messages waiting but nothing screened"
need no CloudWatch exporter. Every worker reports the same queues: aggregate with ``max``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from anomaly_cli.worker import outcome as O

if TYPE_CHECKING:
    from anomaly_cli.adapters.protocols import SqsClient
    from anomaly_cli.worker.batch import AccessDeniedBreaker
    from anomaly_cli.worker.pool import ItemScreening
    from anomaly_cli.worker.stats import WorkerStats

PREFIX = "anomaly_worker_"
#: Stages of ``anomaly_worker_stage_seconds`` (fetch and write in the parent, the rest measured
#: in the screening process and carried back with the result).
STAGES = ("fetch", "decode", "features", "inference", "write")
#: 1 ms (inference) to 2 min (a slow download with retries): one bucket set for every stage so a
#: dashboard can stack them.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
ITEM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RATE_WINDOW_SECONDS = 60.0
#: Counter names of :class:`~anomaly_cli.worker.stats.WorkerStats` that are message outcomes
#: counted outside a batch's outcome list (the loop's release at shutdown, malformed bodies).
_OUTCOME_COUNTS = frozenset({O.RELEASED, O.MALFORMED})


class WorkerMetrics:
    """The worker's metrics; fed by :class:`WorkerStats` and the batch processor, read at scrape."""

    def __init__(self, *, model_version: str, clock: Callable[[], float] = time.monotonic):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector

        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # the parent's memory / CPU / open fds
        r = self.registry
        self._clock = clock
        self.received_total = Counter(f"{PREFIX}messages_received", "SQS messages received", registry=r)
        self.outcomes_total = Counter(
            f"{PREFIX}outcomes",
            "messages by outcome kind (worker/outcome.py) and error code (empty when none)",
            ["kind", "error_code"],
            registry=r,
        )
        self.anomalies_total = Counter(f"{PREFIX}anomalies", "screened recordings judged anomalous", registry=r)
        self.acked_total = Counter(f"{PREFIX}messages_acked", "messages deleted after their result", registry=r)
        self.ack_failures_total = Counter(f"{PREFIX}ack_failures", "deletes SQS refused (they come back)", registry=r)
        self.duplicates_total = Counter(f"{PREFIX}duplicates_flagged", "results flagged as duplicates", registry=r)
        self.stage_seconds = Histogram(
            f"{PREFIX}stage_seconds", "time per item and stage", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.item_seconds = Histogram(
            f"{PREFIX}item_seconds", "receive to outcome, screened items", buckets=ITEM_BUCKETS, registry=r
        )
        self.fetched_bytes_total = Counter(f"{PREFIX}fetched_bytes", "bytes of recordings downloaded", registry=r)
        self.restarts_total = Counter(
            f"{PREFIX}screening_process_restarts", "screening process pools rebuilt after a process died", registry=r
        )
        self.items_per_second = Gauge(
            f"{PREFIX}items_per_second", "items screened per second over the last 60 s", registry=r
        )
        self.in_flight = Gauge(f"{PREFIX}in_flight_messages", "messages in running batches", registry=r)
        self.held = Gauge(f"{PREFIX}held_messages", "messages held (buffered + running)", registry=r)
        self.breaker_open = Gauge(
            f"{PREFIX}access_denied_breaker_open", "1 when the access-denied breaker has tripped", registry=r
        )
        self.breaker_run = Gauge(f"{PREFIX}access_denied_consecutive", "access-denied fetches in a row", registry=r)
        Info(f"{PREFIX}model", "the model version this worker screens with", registry=r).info(
            {"version": model_version}
        )
        for stage in STAGES:  # every stage shows from the first scrape, at zero
            self.stage_seconds.labels(stage)
        self.items_per_second.set_function(self._rate)
        self._screened: deque[float] = deque()
        self._lock = threading.Lock()
        self._server: Any = None

    # ----- fed by WorkerStats ----------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        """A :meth:`WorkerStats.add` counter (received, acked, released at shutdown, ...)."""
        if n <= 0:
            return
        if name == "received":
            self.received_total.inc(n)
        elif name == "acked":
            self.acked_total.inc(n)
        elif name == "ack_failed":
            self.ack_failures_total.inc(n)
        elif name == "duplicates_flagged":
            self.duplicates_total.inc(n)
        elif name in _OUTCOME_COUNTS:
            self.outcomes_total.labels(name, "").inc(n)

    def outcomes(self, outcomes: Iterable[O.Outcome]) -> None:
        """One batch's outcomes (:meth:`WorkerStats.record`)."""
        now = self._clock()
        for o in outcomes:
            self.outcomes_total.labels(o.kind, o.error_code or "").inc()
            if o.kind == O.SUCCEEDED and o.is_anomaly:
                self.anomalies_total.inc()
            if o.kind in (O.SUCCEEDED, O.FAILED_TERMINAL):
                with self._lock:
                    self._screened.append(now)
                    self._prune(now)
                if o.latency_s > 0:
                    self.item_seconds.observe(o.latency_s)

    def bind(self, *, stats: WorkerStats, breaker: AccessDeniedBreaker) -> None:
        """Gauges read at scrape time from the live objects (nothing to keep in sync)."""
        self.in_flight.set_function(lambda: stats.in_flight)
        self.held.set_function(lambda: stats.held)
        self.breaker_open.set_function(lambda: 1.0 if breaker.tripped else 0.0)
        self.breaker_run.set_function(lambda: breaker.run)

    # ----- fed by the batch processor / pool --------------------------------------------------
    def item(self, res: ItemScreening) -> None:
        """One item back from the pool: its fetch time, and what its screening process measured."""
        if res.fetched or res.fetch_error is not None:
            self.stage_seconds.labels("fetch").observe(res.fetch_ms / 1000.0)
        s = res.screening
        if s is None:
            return
        if res.fetched:
            self.fetched_bytes_total.inc(int(s.audio.get("bytes") or 0))
        for stage in ("decode", "features", "inference"):
            ms = s.timings_ms.get(stage)
            if ms is not None:
                self.stage_seconds.labels(stage).observe(ms / 1000.0)

    def write(self, seconds: float) -> None:
        """One batch's result write (insert + replace), in seconds."""
        self.stage_seconds.labels("write").observe(seconds)

    def watch_queues(self, sqs_client: SqsClient, queue_url: str, dlq_url: str = "") -> None:
        """Report the depth of the work queue and its DLQ (:class:`QueueDepth`)."""
        self.registry.register(QueueDepth(sqs_client, queue_url, dlq_url, clock=self._clock))

    def screening_restart(self) -> None:
        self.restarts_total.inc()

    def _rate(self) -> float:
        with self._lock:
            self._prune(self._clock())
            n = len(self._screened)
        return round(n / RATE_WINDOW_SECONDS, 3)

    def _prune(self, now: float) -> None:
        """Drop timestamps older than the window (bounded memory without scrapes); lock held."""
        cut = now - RATE_WINDOW_SECONDS
        while self._screened and self._screened[0] < cut:
            self._screened.popleft()

    # ----- serving ----------------------------------------------------------------------------
    def serve(self, port: int, address: str = "0.0.0.0") -> int:
        """Serve ``/metrics`` on a daemon thread; returns the bound port (``port`` 0 picks one)."""
        from prometheus_client import start_http_server

        self._server, _ = start_http_server(port, addr=address, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def exposition(self) -> bytes:
        """The text a scrape returns (for tests and ``--metrics-port`` less debugging)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class QueueDepth:
    """A collector of ``anomaly_queue_messages``: the work queue's and the DLQ's approximate counts.

    Read at scrape time, at most every ``refresh_s`` (cached in between): 16 workers scraped every
    15 s cost about one ``GetQueueAttributes`` a second, nothing next to the receives. The DLQ is
    ``SQS_DLQ_URL`` or the work queue's RedrivePolicy target, resolved on the first scrape; a
    queue that cannot be read is left out of that scrape (an alert on ``absent()`` sees it) and
    logged once per failure streak.
    """

    NAME = "anomaly_queue_messages"

    def __init__(
        self,
        sqs_client: SqsClient,
        queue_url: str,
        dlq_url: str = "",
        *,
        refresh_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client, self.queue_url, self.dlq_url = sqs_client, queue_url, dlq_url
        self.refresh_s, self._clock = refresh_s, clock
        self._lock = threading.Lock()
        self._at = -1e18
        self._counts: dict[str, dict[str, int]] = {}
        self._dlq_resolved = bool(dlq_url)
        self._failing = False

    def describe(self) -> list[Any]:
        from prometheus_client.core import GaugeMetricFamily

        return [GaugeMetricFamily(self.NAME, "SQS approximate message counts", labels=["queue", "state"])]

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            if self._clock() - self._at >= self.refresh_s:
                self._refresh()
            counts = {q: dict(c) for q, c in self._counts.items()}
        family = GaugeMetricFamily(self.NAME, "SQS approximate message counts", labels=["queue", "state"])
        for queue, by_state in sorted(counts.items()):
            for state, n in sorted(by_state.items()):
                family.add_metric([queue, state], n)
        yield family

    def _refresh(self) -> None:
        from anomaly_cli import errors
        from anomaly_cli.adapters.sqs import SqsQueue, queue_url_from_arn
        from anomaly_cli.log import get_logger

        self._at = self._clock()
        counts: dict[str, dict[str, int]] = {}
        try:
            work = SqsQueue(self.client, self.queue_url, retries=1)
            if not self._dlq_resolved:
                policy = json.loads(work.attributes(["RedrivePolicy"]).get("RedrivePolicy") or "{}")
                arn = policy.get("deadLetterTargetArn", "")
                self.dlq_url = queue_url_from_arn(self.client, arn) if arn else ""
                self._dlq_resolved = True
            counts["work"] = work.approximate_counts()
            if self.dlq_url:
                counts["dlq"] = SqsQueue(self.client, self.dlq_url, retries=1).approximate_counts()
            self._failing = False
        except Exception as e:  # noqa: BLE001 - a scrape must never fail because SQS did
            if not self._failing:
                get_logger("worker").warning("queue_metrics_failed", error=errors.error_code(e), reason=str(e)[:200])
            self._failing = True
        self._counts = counts
