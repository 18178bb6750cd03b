"""`anomaly discover`: find reading rows of a test date in MongoDB and enqueue them to SQS."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.output import Output, err, fact_table, out
from anomaly_cli.cli.params import DateOption

if TYPE_CHECKING:
    from anomaly_cli.discovery.service import DiscoveryReport


class _Signals:
    """First SIGINT/SIGTERM: stop after the current page (state saved). Second: stop now."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        err().print("[yellow]stopping after the current page (again to stop now)[/]")

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def command(
    ctx: typer.Context,
    mode: Annotated[
        Literal["backfill", "incremental", "sweep"] | None,
        typer.Option("--mode", help="What to discover (env MONGO_TO_SQS_MODE)."),
    ] = None,
    test_date: DateOption = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, max=10000, help="Rows per page (env DISCOVERY_BATCH_SIZE).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Stop after N rows fetched this run (env MAX_RECORDS).")
    ] = None,
    max_records: Annotated[int | None, typer.Option("--max-records", min=1, hidden=True)] = None,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", metavar="URL", help="The work queue (env SQS_QUEUE_URL).")
    ] = None,
    subject_name: Annotated[
        str | None, typer.Option("--subject-name", help="Subject to screen (env SUBJECT_NAME, default वाचन).")
    ] = None,
    poll_interval: Annotated[
        float | None,
        typer.Option(
            "--poll-interval",
            min=0.001,
            help="Incremental: seconds to sleep when nothing is new (env POLL_INTERVAL_SECONDS).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be enqueued; change nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the run report as JSON on stdout.")] = False,
) -> None:
    """Discover reading rows of a test date and enqueue one SQS message per recording.

    Exit codes: 0 done, 3 config, 4 connection, 5 partial (rows not enqueued; rerun is safe),
    130 a backfill/sweep stopped by a signal before it finished.
    """
    cli = context.get(ctx)
    cli.waits_for_mongo = True  # may start before its database: waits MONGO_TIMEOUT_MS for it
    o = Output(json_out)
    with o.errors():
        settings = cli.settings(
            mongo_to_sqs_mode=mode,
            test_date=test_date,
            discovery_batch_size=batch_size,
            max_records=limit or max_records,  # --max-records: the old spelling, still accepted
            subject_name=subject_name,
            poll_interval_seconds=poll_interval,
        )
        settings.require("test_date")
        from anomaly_cli.discovery.service import build_service

        queue = None if dry_run else cli.queue(queue_url)
        with _Signals() as signals, _Progress(settings.max_records, enabled=o.progress_enabled) as on_page:
            service = build_service(settings, cli.db, queue, stop=signals.stop, on_page=on_page)
            report = service.run(settings.mongo_to_sqs_mode, dry_run=dry_run)
    o.result(report.to_dict(), lambda: _render(report))
    if report.partial:
        if o.json:  # the report on stdout says so (partial, failed): one JSON document, nothing more
            raise typer.Exit(exit_codes.RET_PARTIAL)
        o.fail(
            "enqueue_failed",
            f"{report.failed} row(s) could not be enqueued; the watermark stops before the first",
            hint="rerun the same command: it sends what was missed",
            exit_code=exit_codes.RET_PARTIAL,
        )
    if report.stopped and report.mode != "incremental":
        raise typer.Exit(exit_codes.RET_INTERRUPTED)


class _Progress:
    """A rich progress bar on stderr (pages, rows of the cap, rate); a no-op under --json."""

    def __init__(self, cap: int | None, *, enabled: bool):
        self.cap = cap
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Any:
        from anomaly_cli.cli.output import interactive

        if not (self.enabled and interactive()):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]discover[/] {task.fields[pages]} pages"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.0f} rows/s"),
            TextColumn("enqueued {task.fields[enqueued]}"),
            TimeElapsedColumn(),
            console=err(),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("discover", total=self.cap, pages=0, rate=0.0, enqueued=0)
        return self.update

    def update(self, snap: Mapping[str, Any]) -> None:
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        self._progress.update(
            self._task,
            completed=snap["fetched"],
            pages=snap["pages"],
            enqueued=snap["enqueued"],
            rate=(snap["fetched"] / elapsed) if elapsed > 0 else 0.0,
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _render(report: DiscoveryReport) -> None:
    from rich.table import Table

    title = f"discover {report.mode} {report.test_date}" + (" (dry run)" if report.dry_run else "")
    table = fact_table(title)
    table.add_row("status", report.status)
    table.add_row("pages", str(report.pages))
    table.add_row("rows fetched", str(report.fetched))
    if report.dry_run:
        table.add_row("would enqueue", str(report.would_enqueue))
    else:
        table.add_row("enqueued", str(report.enqueued))
    table.add_row("skipped (result exists)", str(report.skipped_existing))
    if report.mode == "sweep":
        table.add_row("skipped (recently enqueued)", str(report.skipped_recent))
    invalid = ", ".join(f"{k} {v}" for k, v in sorted(report.skipped_invalid.items())) or "0"
    table.add_row("skipped (invalid)", invalid)
    table.add_row("failed to enqueue", str(report.failed))
    wm = report.watermark
    table.add_row(
        "watermark",
        f"{wm['last_processed_timestamp'].isoformat()} {wm['last_processed_doc_id']} "
        f"{wm['last_processed_record_type']} {wm['last_processed_subject_id']}"
        if wm
        else "-",
    )
    out().print(table)
    if report.sample:
        rows = Table(title="first rows that would be enqueued")
        for col in ("source_updated_at", "mongo_doc_id", "record_type", "subject_id"):
            rows.add_column(col)
        for r in report.sample:
            rows.add_row(r["source_updated_at"].isoformat(), r["mongo_doc_id"], r["record_type"], r["subject_id"])
        out().print(rows)
    if report.dry_run and report.fetched == 0 and report.nearby_documents:
        err().print(
            f"[yellow]hint[/]: 0 rows on {report.test_date}, but {report.nearby_documents} document(s) have "
            "rows within a day either side: is TEST_DATE_TIMEZONE right? (apps in India often store local "
            "midnight, 18:30 UTC the day before: try TEST_DATE_TIMEZONE=Asia/Kolkata)"
        )
