"""`anomaly rescreen`: re-enqueue results of a test date so the worker screens them again."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.commands._progress import progress
from anomaly_cli.cli.commands.seed_sqs import render
from anomaly_cli.cli.output import Output
from anomaly_cli.cli.params import DateArgument


def command(
    ctx: typer.Context,
    test_date: DateArgument,
    status: Annotated[
        Literal["ok", "failed"] | None, typer.Option("--status", help="Only results with this status.")
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Only results with this reason code.")] = None,
    model_older_than: Annotated[
        str | None,
        typer.Option("--model-older-than", help="Only results of model versions before V (natural order)."),
    ] = None,
    queue_url: Annotated[str | None, typer.Option("--queue-url", help="Target queue (env SQS_QUEUE_URL).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be re-enqueued; send nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Re-enqueue matching results with the `rescreen` attribute: the worker overwrites them (same result id).

    For a new model, a fixed allowlist, or an error that was wrongly permanent. Exit codes: 0, 3 config,
    4 connection, 5 some items refused by SQS.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.ops.rescreen import rescreen

        settings = cli.settings(sqs_queue_url=queue_url)
        queue = None if dry_run else cli.queue()
        with progress("rescreen", enabled=o.progress_enabled) as update:
            report = rescreen(
                cli.db[settings.mongo_result_collection],
                queue,
                test_date,
                status=status,
                reason=reason,
                model_older_than=model_older_than,
                group_id=settings.sqs_fifo_group_id,
                dry_run=dry_run,
                on_progress=lambda r: update(r.read, f"sent {r.sent}"),
            )
    render(report, o, title=f"rescreen {test_date}")
    if report.bad_count or report.failed:
        raise typer.Exit(exit_codes.RET_PARTIAL)
