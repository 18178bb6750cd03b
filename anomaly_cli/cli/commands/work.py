"""``anomaly work``: run the SQS worker (poll, screen, store results, ack)."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomaly_cli.cli import context, exit_codes, output
from anomaly_cli.sqs_quotas import MAX_LONG_POLL_SECONDS, MAX_VISIBILITY_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from anomaly_cli.config import Settings
    from anomaly_cli.worker.stats import WorkerStats

#: After the access-denied breaker stopped the worker, /metrics stays up this long (one scrape
#: interval of docs/deployment: 15 s) so the open breaker is scraped before the process exits.
METRICS_LINGER_SECONDS = 15.0


def command(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            help="Downloads in flight (env MAX_CONCURRENCY); screening runs beside them on CPU_WORKERS processes.",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Messages per batch (env BATCH_SIZE).")
    ] = None,
    flush_seconds: Annotated[
        float | None,
        typer.Option("--flush-seconds", help="Dispatch a partial batch after this long (env FLUSH_SECONDS)."),
    ] = None,
    wait_seconds: Annotated[
        int | None,
        typer.Option(
            "--wait-seconds", min=0, max=MAX_LONG_POLL_SECONDS, help="SQS long-poll wait (env SQS_WAIT_SECONDS)."
        ),
    ] = None,
    visibility_timeout: Annotated[
        int | None,
        typer.Option(
            "--visibility-timeout",
            min=0,
            max=MAX_VISIBILITY_TIMEOUT_SECONDS,
            help="Visibility asked for received messages (env SQS_VISIBILITY_TIMEOUT).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Receive N messages, process them, exit 0.")
    ] = None,
    max_messages: Annotated[int | None, typer.Option("--max-messages", min=1, hidden=True)] = None,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", metavar="URL", help="The work queue (env SQS_QUEUE_URL).")
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option("--idle-exit", min=0.1, help="Exit 0 after this many seconds with nothing to do (within ~1 s)."),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option("--model-version", help="Model version to load (env MODEL_VERSION; default newest)."),
    ] = None,
    health_file: Annotated[
        str | None, typer.Option("--health-file", help="Touched every loop, for a liveness probe.")
    ] = None,
    drain_seconds: Annotated[
        float, typer.Option("--drain-seconds", help="On SIGTERM: how long running batches may finish.")
    ] = 30.0,
    ready_file: Annotated[
        str | None,
        typer.Option(
            "--ready-file",
            help="Written once the screening processes have loaded the model, removed on stop (readiness probe).",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve Prometheus metrics on this port at /metrics (env METRICS_PORT).",
        ),
    ] = None,
) -> None:
    """Screen recordings from the SQS queue and store one result per recording.

    First SIGTERM/SIGINT: stop polling, finish running items (up to --drain-seconds), release
    the rest, exit 0. A second signal releases and exits 130 at once.
    """
    cli = context.get(ctx)
    cli.waits_for_mongo = True  # may start before its database: waits MONGO_TIMEOUT_MS for it
    o = output.Output()  # no --json: the worker's report is its events and exit code
    with o.errors():
        settings = cli.settings(
            max_concurrency=concurrency,
            batch_size=batch_size,
            flush_seconds=flush_seconds,
            sqs_wait_seconds=wait_seconds,
            visibility_timeout_seconds=visibility_timeout,
            model_version=model_version,
            metrics_port=metrics_port,
            sqs_queue_url=queue_url,
        )
        code = _run(
            cli,
            settings,
            o,
            max_messages=limit or max_messages,  # --max-messages: the old spelling, still accepted
            idle_exit=idle_exit,
            health_file=health_file,
            drain_seconds=drain_seconds,
            ready_file=ready_file,
        )
    raise typer.Exit(code)


def _run(
    cli: context.CliContext,
    settings: Settings,
    o: output.Output,
    *,
    max_messages: int | None,
    idle_exit: float | None,
    health_file: str | None,
    drain_seconds: float,
    ready_file: str | None = None,
) -> int:
    from anomaly_cli.adapters.storage import ensure_allowlist
    from anomaly_cli.model import artifacts
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.loop import WorkerReport
    from anomaly_cli.worker.shutdown import AnyOf, ForcedStop, IdleShutdown, MaxMessages, ShutdownController
    from anomaly_cli.worker.source_guard import ensure_source

    ensure_allowlist(settings)  # refuse before loading anything heavy
    settings.require("sqs_queue_url")
    # The parent only reads the metadata (no scikit-learn here: memory); the screening processes
    # load the model during start-up and a failure there ends the command before any polling.
    model_path = artifacts.resolve(settings.model_dir, settings.model_version or None)
    model_version = str(artifacts.read_metadata(model_path).get("version") or model_path.name)
    policies = [
        p
        for p in (MaxMessages(max_messages) if max_messages else None, IdleShutdown(idle_exit) if idle_exit else None)
        if p is not None
    ]
    from anomaly_cli.adapters.mongo import EMBEDDED_ALONE_HINT, embedded_alone
    from anomaly_cli.errors import ConfigError

    try:
        ensure_source(
            cli.db,
            database=settings.mongo_db_name,
            collection=settings.mongo_source_collection,
            adhoc_only=settings.worker_adhoc_only,
        )
    except ConfigError as e:
        if embedded_alone(settings.mongo_uri):  # the fix is not a collection name: it is one process
            e.hint = EMBEDDED_ALONE_HINT + " A worker that screens push-urls items only sets WORKER_ADHOC_ONLY=true."
        raise
    shutdown = ShutdownController(drain_seconds=drain_seconds)
    live = _LiveView() if output.interactive() else None
    restore = shutdown.install()
    try:
        # No S3 client here: the fetcher creates one on its first s3:// recording, so a worker
        # whose recordings are all https does not carry boto3's S3 model (~6 MB) for nothing.
        worker = build_worker(
            settings,
            sqs_client=cli.sqs_client,
            db=cli.db,
            model_version=model_version,
            shutdown=shutdown,
            policy=AnyOf(tuple(policies)) if policies else None,
            health_file=health_file,
            on_tick=live.update if live else None,
        )
        ready = _Ready(ready_file, model_version)
        if live:
            live.start()
        try:
            report = worker.run()
            if report.reason == "credentials" and worker.stats.metrics is not None:
                # the breaker stops the worker within seconds: keep /metrics up for one more
                # scrape so the access-denied alert sees the open breaker (a signal ends it)
                shutdown.wait(METRICS_LINGER_SECONDS)
        except ForcedStop:  # a second signal before the loop started: nothing is held yet
            report = WorkerReport(reason="forced")
        finally:
            ready.clear()
            if worker.stats.metrics is not None:
                worker.stats.metrics.close()
            if live:
                live.stop()
    except ForcedStop:  # two signals during start-up: nothing was received yet
        return exit_codes.RET_INTERRUPTED
    finally:
        restore()
    code = exit_codes.RET_OK
    if report.reason == "forced":
        code = exit_codes.RET_INTERRUPTED
    elif report.error is not None:
        code = exit_codes.for_exception(report.error)
        o.error(report.error.code, str(report.error), hint=report.error.hint, exit_code=code)
    if report.lingering or code == exit_codes.RET_INTERRUPTED:
        # threads stuck in downloads must not hold the exit: everything held was released already
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


class _Ready:
    """The readiness file: written when the model is loaded in every screening process (the pool's
    warm-up returned), removed when the worker stops. A probe tests that it exists; its text
    (model version, pid) is for people."""

    def __init__(self, path: str | None, model_version: str):
        from pathlib import Path

        self.path = Path(path) if path else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"model_version={model_version}\npid={os.getpid()}\n", encoding="utf-8")

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class _LiveView:
    """The rich live panel on stderr (TTY only); refreshed at most 4 times a second."""

    def __init__(self) -> None:
        from rich.live import Live

        self._live = Live(console=output.err(), refresh_per_second=4, transient=False)
        self._last = 0.0

    def start(self) -> None:
        self._live.start()

    def stop(self) -> None:
        self._live.stop()

    def update(self, stats: WorkerStats) -> None:
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        self._live.update(_render(stats.snapshot()))


def _render(s: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title="anomaly work", show_header=False, box=None)
    failed = ", ".join(f"{k} {v}" for k, v in sorted(s["failed_by_stage"].items())) or "0"
    rows = [
        ("received", s["received"]),
        ("succeeded", s["succeeded"]),
        ("anomalies", s["anomalies"]),
        ("skipped (exists / source gone)", f"{s['skipped_result_exists']} / {s['skipped_source_gone']}"),
        ("failed by stage", failed),
        ("retrying (transient)", s["transient"]),
        ("malformed", s["malformed"]),
        ("in flight", s["in_flight"]),
        ("items/s", s["items_per_s"]),
        ("p50 / p95 latency ms", f"{s['latency_p50_ms']} / {s['latency_p95_ms']}"),
    ]
    for k, v in rows:
        t.add_row(k, str(v))
    return t
