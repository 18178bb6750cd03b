"""`anomaly coverage`: eligible rows vs enqueued vs results vs queues for one test date."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from anomaly_cli.cli import context
from anomaly_cli.cli.commands._progress import progress
from anomaly_cli.cli.output import Output, err, fact_table, out
from anomaly_cli.cli.params import DateArgument

if TYPE_CHECKING:
    from anomaly_cli.ops.coverage import CoverageReport


def command(
    ctx: typer.Context,
    test_date: DateArgument,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows without a result to list.")] = 20,
    no_queue: Annotated[bool, typer.Option("--no-queue", help="Skip the SQS counts (no AWS access needed).")] = False,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", metavar="URL", help="The work queue to count (env SQS_QUEUE_URL).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Show how far a test date got: eligible source rows, enqueued, results (ok / anomaly / failed),
    messages in the queue and the DLQ, and the eligible rows that have no result.

    Exit codes: 0, 3 config, 4 connection.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.adapters.sqs import SqsQueue
        from anomaly_cli.ops.coverage import coverage

        settings = cli.settings(sqs_queue_url=queue_url)
        queue = dlq = None
        if not no_queue and settings.sqs_queue_url:
            from anomaly_cli.errors import ConfigError
            from anomaly_cli.ops.replay import resolve_dlq

            queue = cli.queue()
            try:
                dlq = SqsQueue(
                    cli.sqs_client, resolve_dlq(cli.sqs_client, settings.sqs_queue_url, settings.sqs_dlq_url)
                )
            except ConfigError:
                dlq = None  # no redrive policy: doctor reports that; coverage shows what exists
        with progress("coverage", enabled=o.progress_enabled) as update:
            report = coverage(
                settings,
                cli.db,
                test_date,
                queue=queue,
                dlq=dlq,
                limit=limit,
                on_progress=lambda n: update(n, "source rows read"),
            )
    o.result(report.to_dict(), lambda: _render(report))


def _render(r: CoverageReport) -> None:
    from rich.table import Table

    t = fact_table(f"coverage {r.test_date} ({r.source_collection})", numbers=True)
    t.add_row("eligible source rows", str(r.eligible))
    t.add_row("invalid reading rows (never enqueued)", str(r.invalid_rows))
    t.add_row("enqueued (state, all runs)", str(r.enqueued) if r.state_found else "no state document")
    t.add_row("results", str(r.results_total))
    t.add_row("  ok / anomaly / failed", f"{r.results_ok} / {r.results_anomaly} / {r.results_failed}")
    for name, counts in (("queue", r.queue), ("DLQ", r.dlq)):
        if counts is not None:
            t.add_row(f"{name}: visible / in flight", f"{counts['visible']} / {counts['in_flight']}")
    t.add_row("eligible rows without a result", str(r.missing))
    t.add_row("  enqueued, not screened yet", str(r.missing_enqueued))
    t.add_row("  behind the watermark, never enqueued", str(r.missing_behind_watermark))
    out().print(t)
    if r.missing_rows:
        m = Table(title="rows without a result")
        for c in ("mongo_doc_id", "record type", "subject", "created", "state"):
            m.add_column(c)
        for row in r.missing_rows:
            m.add_row(
                row["mongo_doc_id"],
                row["record_type"],
                row["subject_id"],
                row["subject_created_at"].isoformat(timespec="seconds"),
                row["state"],
            )
        out().print(m)
    if r.missing_behind_watermark:
        err().print(
            f"[yellow]{r.missing_behind_watermark} row(s) behind the watermark were never enqueued[/] "
            f"(synced late): run `anomaly discover --mode sweep --test-date {r.test_date}`"
        )
