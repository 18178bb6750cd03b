"""`anomaly push-urls`: screen ad-hoc recordings (URLs from a file or stdin) through the pipeline."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.commands.seed_sqs import render, send
from anomaly_cli.cli.output import Output
from anomaly_cli.cli.params import parse_date


def command(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(help="File of URLs (one a line, or CSV with url[,student_id,udise,test_date]); '-' = stdin."),
    ] = "-",
    test_date: Annotated[
        Optional[str],
        typer.Option(
            "--test-date",
            parser=parse_date,
            metavar="DATE",
            help="Test date YYYY-MM-DD for rows without one (default today UTC).",
        ),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Names the input: source_collection becomes adhoc:NAME (default: file name)."),
    ] = None,
    queue_url: Annotated[Optional[str], typer.Option("--queue-url", help="Target queue (env SQS_QUEUE_URL).")] = None,
    rescreen: Annotated[bool, typer.Option("--rescreen", help="Overwrite results of URLs screened before.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and count; send nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Build `adhoc` work items from audio URLs and send them; the worker screens them without a source check.

    Exit codes: 0 all sent, 3 config, 4 connection, 5 some lines bad or refused by SQS.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.config import validate_test_date
        from anomaly_cli.ops import push_urls

        settings = cli.settings(sqs_queue_url=queue_url)
        day = validate_test_date(
            test_date or dt.datetime.now(dt.timezone.utc).date().isoformat(), field_name="--test-date"
        )
        queue = None if dry_run else cli.queue()
        if source == "-":
            if sys.stdin.isatty():
                o.fail(
                    "usage",
                    "push-urls reads URLs from a file or stdin",
                    hint="anomaly push-urls urls.txt  |  cat urls.txt | anomaly push-urls -",
                    exit_code=exit_codes.RET_USAGE,
                )
            fh, label = sys.stdin, name or "stdin"
        else:
            try:
                fh = open(source, encoding="utf-8-sig", newline="")
            except OSError as e:
                o.fail("config_invalid", f"cannot read {source}: {e.strerror}", exit_code=exit_codes.RET_CONFIG)
            label = name or Path(source).name
        try:
            items = push_urls.read_urls(
                fh, source_name=label, default_test_date=day, subject_name=settings.subject_name
            )
            report = send(o, "push-urls", queue, items, settings, rescreen=rescreen, dry_run=dry_run)
        except UnicodeDecodeError as e:
            o.fail(
                "config_invalid",
                f"{label}: not UTF-8 text ({e.reason})",
                hint="save the list as UTF-8",
                exit_code=exit_codes.RET_CONFIG,
            )
        finally:
            if fh is not sys.stdin:
                fh.close()
    render(report, o, title=f"push-urls (source_collection adhoc:{label})")
    if report.bad_count or report.failed:
        raise typer.Exit(exit_codes.RET_PARTIAL)
