"""Assemble a :class:`~anomaly_cli.worker.loop.Worker` from settings and injected clients.

The command (``anomaly work``) and the tests both come through here, so the wiring under test is
the wiring in production; only the clients (and, in tests, the in-thread ``screen`` function
instead of the process pool) differ.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from anomaly_cli.adapters.protocols import AudioFetcher, Database, ReadCollection, S3Client, SqsClient, WorkQueue
from anomaly_cli.config import Settings
from anomaly_cli.contract import WorkItem
from anomaly_cli.log import get_logger
from anomaly_cli.results.repository import ResultRepository
from anomaly_cli.worker.batch import DEFER_SECONDS, AccessDeniedBreaker, BatchProcessor
from anomaly_cli.worker.claims import Claims, claims_collection_name
from anomaly_cli.worker.heartbeat import Heartbeat, HeldMessages
from anomaly_cli.worker.loop import Worker, default_worker_id
from anomaly_cli.worker.pool import ScreenFn, ScreenPool
from anomaly_cli.worker.shutdown import ShutdownController, StopPolicy
from anomaly_cli.worker.source_guard import SourceGoneBreaker
from anomaly_cli.worker.stats import WorkerStats

log = get_logger("worker")
STARTED_FIELDS = (
    "sqs_queue_url",
    "mongo_uri",
    "mongo_db_name",
    "mongo_source_collection",
    "mongo_result_collection",
    "batch_size",
    "max_concurrency",
    "cpu_workers",
    "flush_seconds",
    "sqs_wait_seconds",
    "visibility_timeout_seconds",
    "enable_source_backlink_update",
    "access_denied_limit",
    "worker_adhoc_only",
    "source_gone_window",
    "source_gone_threshold",
    "fetch_deadline_seconds",
    "fetch_retries",
    "max_audio_bytes",
    "max_duration_seconds",
    "audio_url_allowlist",
    "model_dir",
    "metrics_port",
)


def source_checker(collection: ReadCollection, subject_name: str) -> Callable[[Sequence[WorkItem]], Mapping[str, bool]]:
    """The batch's one-query source re-check (discovery's ``existing_source_rows``)."""

    def check(items: Sequence[WorkItem]) -> Mapping[str, bool]:
        from anomaly_cli.discovery.source import existing_source_rows

        return existing_source_rows(collection, list(items), subject_name=subject_name)

    return check


def _metrics(settings: Settings, model_version: str) -> Any:
    """The worker's Prometheus metrics, already served, or None without ``METRICS_PORT``.

    Served before the pool starts: a port in use is a configuration error found in milliseconds.
    """
    if settings.metrics_port is None:
        return None
    from anomaly_cli import errors
    from anomaly_cli.worker.metrics import WorkerMetrics

    metrics = WorkerMetrics(model_version=model_version)
    try:
        port = metrics.serve(settings.metrics_port, settings.metrics_address)
    except OSError as e:
        raise errors.ConfigError(
            f"METRICS_PORT: cannot serve metrics on {settings.metrics_address}:{settings.metrics_port}: {e}",
            field="METRICS_PORT",
            hint="choose a free port, or unset METRICS_PORT",
        ) from e
    log.info("metrics_serving", address=settings.metrics_address, port=port, path="/metrics")
    return metrics


def build_worker(
    settings: Settings,
    *,
    sqs_client: SqsClient | None,
    db: Database,
    model_version: str,
    s3_client: S3Client | None = None,
    screen: ScreenFn | None = None,
    fetcher: AudioFetcher | None = None,
    queue: WorkQueue | None = None,
    shutdown: ShutdownController | None = None,
    policy: StopPolicy | None = None,
    health_file: str | None = None,
    on_tick: Callable[[WorkerStats], None] | None = None,
    worker_id: str | None = None,
    heartbeat_fraction: float = 0.5,
    source_check: Callable[[Sequence[WorkItem]], Mapping[str, bool]] | None = None,
    defer_seconds: int = DEFER_SECONDS,
) -> Worker:
    """A ready-to-run worker: indexes ensured, pools started, nothing polled yet.

    Raises ``ConfigError`` on an empty allowlist and ``MongoUnavailable`` when results cannot be
    indexed. ``screen`` replaces the process pool with an in-thread function; ``queue`` replaces
    the queue built on ``sqs_client`` (which then only feeds the queue-depth metrics, if any).
    """
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.adapters.storage import Fetcher, ensure_allowlist
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    ensure_allowlist(settings)
    settings.require("sqs_queue_url")
    worker_id = worker_id or default_worker_id()
    repo = ResultRepository(
        db[settings.mongo_result_collection], reuse_is_anomaly=settings.reuse_within_student_is_anomaly
    )
    repo.ensure_indexes()
    if queue is None:
        if sqs_client is None:
            raise ValueError("build_worker needs sqs_client or queue")
        queue = SqsQueue(sqs_client, settings.sqs_queue_url)
    metrics = _metrics(settings, model_version)
    pool = ScreenPool(
        fetcher if fetcher is not None else Fetcher(settings, s3_client),
        io_workers=settings.max_concurrency,
        model_version=model_version,
        max_duration_s=settings.max_duration_seconds,
        cpu_workers=settings.cpu_workers,
        model_dir=settings.model_dir,
        model_ref=settings.model_version or None,
        screen=screen,
        thresholds=ProgrammeThresholds.from_settings(settings).to_dict(),
    )
    pool.warm_up()
    source = db[settings.mongo_source_collection]
    backlink = None
    if settings.enable_source_backlink_update:
        from anomaly_cli.worker.backlink import Backlinker

        backlink = Backlinker(source, settings.tz)
    claims = Claims(
        db[claims_collection_name(settings.mongo_result_collection)], worker_id, settings.visibility_timeout_seconds
    )
    claims.ensure_indexes()
    held = HeldMessages()
    stats = WorkerStats(metrics=metrics)
    breaker = AccessDeniedBreaker(settings.access_denied_limit)
    processor = BatchProcessor(
        queue=queue,
        repo=repo,
        pool=pool,
        source_check=source_check or source_checker(source, settings.subject_name),
        held=held,
        stats=stats,
        breaker=breaker,
        worker_id=worker_id,
        backlink=backlink,
        claims=claims,
        defer_seconds=defer_seconds,
        source_gone=SourceGoneBreaker(settings.source_gone_window, settings.source_gone_threshold),
    )
    heartbeat = Heartbeat(queue, held, settings.visibility_timeout_seconds, fraction=heartbeat_fraction)
    worker = Worker(
        settings,
        queue=queue,
        processor=processor,
        held=held,
        heartbeat=heartbeat,
        stats=stats,
        shutdown=shutdown or ShutdownController(),
        policy=policy,
        health_file=health_file,
        on_tick=on_tick,
        pool=pool,
    )
    if metrics is not None:
        metrics.bind(stats=stats, breaker=breaker)
        pool.on_restart = metrics.screening_restart
        if sqs_client is not None:
            metrics.watch_queues(sqs_client, settings.sqs_queue_url, settings.sqs_dlq_url)
    started = {k: v for k, v in settings.redacted().items() if k in STARTED_FIELDS}
    log.info(
        "worker_started",
        worker_id=worker_id,
        model_version=model_version,
        cpu_processes=pool.cpu_workers,
        max_held=worker.max_held,
        batch_threads=worker.batch_threads,
        **started,
    )
    return worker
