"""`anomaly seed-sqs`: put work items on the queue from a file (JSONL/CSV) or synthetic ones."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.commands._progress import progress
from anomaly_cli.cli.output import Output, err, fact_table, out
from anomaly_cli.cli.params import parse_date

if TYPE_CHECKING:
    from anomaly_cli.adapters.protocols import WorkQueue
    from anomaly_cli.config import Settings
    from anomaly_cli.contract import WorkItem
    from anomaly_cli.ops.seed import BadRow, SendReport

USAGE_HINT = (
    "give --from FILE (.jsonl: one 13-field message per line; .csv: a header of the 13 field names) "
    "or --synthetic N --bucket BUCKET [--prefix P] [--test-date D]"
)


def command(
    ctx: typer.Context,
    from_file: Annotated[
        Optional[str],
        typer.Option("--from", help="JSONL or CSV of work items (13 contract fields); '-' reads JSONL from stdin."),
    ] = None,
    synthetic: Annotated[Optional[int], typer.Option("--synthetic", min=1, help="Send N synthetic test items.")] = None,
    bucket: Annotated[
        Optional[str], typer.Option("--bucket", help="--synthetic: bucket holding the test audio.")
    ] = None,
    prefix: Annotated[str, typer.Option("--prefix", help="--synthetic: key prefix of the test audio.")] = "synthetic",
    ext: Annotated[str, typer.Option("--ext", help="--synthetic: file extension of the test audio.")] = "wav",
    test_date: Annotated[
        Optional[str],
        typer.Option(
            "--test-date",
            parser=parse_date,
            metavar="DATE",
            help="--synthetic: test date YYYY-MM-DD (default TEST_DATE, else today UTC).",
        ),
    ] = None,
    queue_url: Annotated[Optional[str], typer.Option("--queue-url", help="Target queue (env SQS_QUEUE_URL).")] = None,
    rescreen: Annotated[
        bool, typer.Option("--rescreen", help="Mark messages so the worker overwrites existing results.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and count; send nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Send work items to SQS in chunks of 10 (bad input rows are reported with their line, good ones sent).

    Exit codes: 0 all sent, 2 nothing to do (no --from / --synthetic), 3 config, 4 connection,
    5 some rows bad or refused by SQS.
    """
    o = Output(json_out)
    if not from_file and not synthetic:
        o.fail("usage", "seed-sqs needs a source of work items", hint=USAGE_HINT, exit_code=exit_codes.RET_USAGE)
    if from_file and synthetic:
        o.fail("usage", "--from and --synthetic exclude each other", exit_code=exit_codes.RET_USAGE)
    cli = context.get(ctx)
    with o.errors():
        from anomaly_cli.config import validate_test_date
        from anomaly_cli.ops import seed

        settings = cli.settings(sqs_queue_url=queue_url)
        queue = None if dry_run else cli.queue()
        if synthetic:
            if not bucket:
                o.fail("usage", "--synthetic needs --bucket", hint=USAGE_HINT, exit_code=exit_codes.RET_USAGE)
            day = validate_test_date(
                test_date or settings.test_date or dt.datetime.now(dt.timezone.utc).date().isoformat(),
                field_name="--test-date",
            )
            items: Iterable[WorkItem | BadRow] = seed.synthetic_items(
                synthetic, bucket=bucket, prefix=prefix, test_date=day, ext=ext, subject_name=settings.subject_name
            )
            total: int | None = synthetic
        elif from_file == "-":
            import sys

            items, total = seed.items_only(seed.read_items("stdin.jsonl", stream=sys.stdin)), None
        else:
            assert from_file is not None  # exactly one of --from-file / --synthetic (checked above)
            items, total = seed.items_only(seed.read_items(from_file)), None
        report = send(o, "seed-sqs", queue, items, settings, rescreen=rescreen, dry_run=dry_run, total=total)
    render(report, o, title="seed-sqs")
    if report.bad_count or report.failed:
        raise typer.Exit(exit_codes.RET_PARTIAL)


def send(
    o: Output,
    name: str,
    queue: WorkQueue | None,
    items: Iterable[WorkItem | BadRow],
    settings: Settings,
    *,
    rescreen: bool,
    dry_run: bool,
    total: int | None = None,
) -> SendReport:
    """``seed.send_items`` behind the command's progress bar (shared with push-urls)."""
    from anomaly_cli.ops import seed

    with progress(name, total=total, enabled=o.progress_enabled) as update:
        return seed.send_items(
            queue,
            items,
            group_id=settings.sqs_fifo_group_id,
            rescreen=rescreen,
            dry_run=dry_run,
            on_progress=lambda r: update(r.read, f"sent {r.sent}"),
        )


def render(report: SendReport, o: Output, *, title: str) -> None:
    """Print a :class:`~anomaly_cli.ops.seed.SendReport` (shared with push-urls and rescreen)."""
    o.result(report.to_dict(), lambda: _render_table(report, title))


def _render_table(report: SendReport, title: str) -> None:
    table = fact_table(title + (" (dry run: nothing sent)" if report.dry_run else ""), numbers=True)
    table.add_row("rows read", str(report.read))
    table.add_row("would send" if report.dry_run else "sent", str(report.sent))
    table.add_row("refused by SQS", str(report.failed))
    table.add_row("bad rows", str(report.bad_count))
    out().print(table)
    for code, n in sorted(report.failure_codes.items()):
        err().print(f"[red]refused[/] {code}: {n}")
    for bad in report.bad_rows[:20]:
        err().print(f"[yellow]line {bad.line}[/]: {bad.reason}", highlight=False, markup=True)
    if report.bad_count > 20:
        err().print(f"... and {report.bad_count - 20} more bad rows (--json lists up to 1000)")
