"""`anomaly replay-dlq`: move failed messages from the dead-letter queue back to the work queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.commands._progress import progress
from anomaly_cli.cli.output import Output, err, fact_table, out

if TYPE_CHECKING:
    from anomaly_cli.ops.replay import MoveReport, PeekReport


def command(
    ctx: typer.Context,
    dlq_url: Annotated[
        str | None, typer.Option("--dlq-url", help="The DLQ (default SQS_DLQ_URL, else the queue's RedrivePolicy).")
    ] = None,
    queue_url: Annotated[
        str | None, typer.Option("--queue-url", help="Where messages go back to (env SQS_QUEUE_URL).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Move at most N messages.")] = None,
    max_messages: Annotated[int | None, typer.Option("--max", min=1, hidden=True)] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="test_date=YYYY-MM-DD or record_type=teacher|admin|adhoc (repeatable)."),
    ] = None,
    include_invalid: Annotated[
        bool, typer.Option("--include-invalid", help="Also move bodies that do not parse (they stay otherwise).")
    ] = False,
    native: Annotated[
        bool, typer.Option("--native", help="Use SQS StartMessageMoveTask (all messages, no filters).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Peek and summarise the DLQ; consume nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Replay the DLQ: peek with --dry-run, move with body, attributes and FIFO group kept, delete only after
    a successful send.

    Exit codes: 0 done, 3 config (no DLQ), 4 connection, 5 some messages could not be moved.
    """
    max_messages = limit or max_messages  # --max: the old spelling, still accepted
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.adapters.sqs import SqsQueue
        from anomaly_cli.ops import replay

        settings = cli.settings(sqs_queue_url=queue_url, sqs_dlq_url=dlq_url)
        wanted = replay.parse_filters(filters)
        if native and (wanted or max_messages or include_invalid or dry_run):
            o.fail(
                "usage",
                "--native moves every message: it takes no --filter, --max, --include-invalid or --dry-run",
                exit_code=exit_codes.RET_USAGE,
            )
        dlq = SqsQueue(cli.sqs_client, replay.resolve_dlq(cli.sqs_client, settings.sqs_queue_url, settings.sqs_dlq_url))
        wait = min(1, settings.sqs_wait_seconds)  # a short long-poll: see ops.replay (SQS_WAIT_SECONDS=0 for none)
        with progress("replay-dlq", total=max_messages, enabled=o.progress_enabled) as update:
            if dry_run:
                report: PeekReport | MoveReport = replay.peek(
                    dlq,
                    max_messages=max_messages,
                    filters=wanted,
                    wait_seconds=wait,
                    on_progress=lambda n: update(n, "peeked"),
                )
            elif native:
                report = replay.move_native(
                    cli.sqs_client,
                    dlq,
                    cli.queue(),
                    on_progress=lambda t: update(
                        int(t.get("ApproximateNumberOfMessagesMoved", 0) or 0), t.get("Status", "")
                    ),
                )
            else:
                report = replay.move(
                    dlq,
                    cli.queue(),
                    max_messages=max_messages,
                    filters=wanted,
                    include_invalid=include_invalid,
                    wait_seconds=wait,
                    on_progress=lambda r: update(r.moved, f"moved {r.moved}, failed {r.failed}"),
                )
    o.result(
        report.to_dict(),
        lambda: _render_peek(report) if isinstance(report, replay.PeekReport) else _render_move(report),
    )
    if isinstance(report, replay.MoveReport) and report.partial:  # a dry run only peeked
        raise typer.Exit(exit_codes.RET_PARTIAL)


def _render_peek(r: PeekReport) -> None:
    t = fact_table("DLQ contents (dry run: nothing consumed)")
    t.add_row("approximate messages", str(r.approximate))
    t.add_row("seen", str(r.seen))
    t.add_row("matching --filter", str(r.matching))
    t.add_row("test dates", ", ".join(f"{k}: {v}" for k, v in sorted(r.test_dates.items())) or "-")
    t.add_row("record types", ", ".join(f"{k}: {v}" for k, v in sorted(r.record_types.items())) or "-")
    t.add_row("receive counts", ", ".join(f"{k}x: {v}" for k, v in sorted(r.receive_counts.items())) or "-")
    t.add_row("bodies that do not parse", str(r.invalid))
    out().print(t)
    for sample in r.invalid_samples:
        err().print(f"[yellow]unparseable[/]: {sample!r}", highlight=False)


def _render_move(r: MoveReport) -> None:
    t = fact_table("replay-dlq" + (" (native move task)" if r.native else ""), numbers=True)
    t.add_row("moved", str(r.moved))
    if r.native:
        t.add_row("task status", str(r.native_status))
    else:
        t.add_row("skipped (body does not parse)", str(r.skipped_invalid))
        t.add_row("skipped (not matching --filter)", str(r.skipped_filter))
        t.add_row("failed (left in the DLQ)", str(r.failed))
        if r.delete_failed:
            t.add_row("sent but not deleted from the DLQ", str(r.delete_failed))
    out().print(t)
    for code, n in sorted(r.failure_codes.items()):
        err().print(f"[red]failed[/] {code}: {n}")
