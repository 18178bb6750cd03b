"""`anomaly doctor`: check settings, MongoDB, indexes, the queue, audio access and the model."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.output import Output, out

_STYLE = {"ok": "[green]  ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}


def command(
    ctx: typer.Context,
    sample_url: Annotated[
        Optional[str],
        typer.Option("--sample-url", help="Recording to test read access on (default: the newest result's)."),
    ] = None,
    no_aws: Annotated[bool, typer.Option("--no-aws", help="Skip the SQS and S3 checks.")] = False,
    queue_url: Annotated[
        Optional[str], typer.Option("--queue-url", metavar="URL", help="The work queue to check (env SQS_QUEUE_URL).")
    ] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="Skip loading the model.")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Ask MongoDB how it plans discovery's first $match (explain, read-only): index or collection scan.",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checklist as JSON on stdout.")] = False,
) -> None:
    """Run the deployment checklist; every problem comes with a concrete fix. Changes nothing.

    Exit codes: 0 healthy (warnings allowed), 7 something is broken, 3 settings invalid.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.ops.doctor import FAIL, run_checks, to_dicts

        settings = cli.settings(sqs_queue_url=queue_url)
        checks = run_checks(
            settings,
            db=lambda: cli.db,
            sqs_client=None if no_aws else (lambda: cli.sqs_client),
            s3_client=None if no_aws else (lambda: cli.s3_client),
            sample_url=sample_url,
            model=not no_model,
            explain=explain,
        )
    broken = [c for c in checks if c.status == FAIL]
    o.result({"healthy": not broken, "checks": to_dicts(checks)}, lambda: _render(checks))
    if broken:
        raise typer.Exit(exit_codes.RET_UNHEALTHY)


def _render(checks: list[Any]) -> None:
    # A checklist, not a table: fixes are commands people copy, so they must never be cut or wrapped mid-word.
    out().print("[bold]anomaly doctor[/]")
    for c in checks:
        out().print(f"{_STYLE[c.status]}  [bold]{c.area}[/] / {c.name}: {c.detail}", highlight=False)
        if c.fix and c.status != "ok":
            for line in c.fix.splitlines():
                out().print(f"      fix: {line}", soft_wrap=True, highlight=False, markup=False)
    fails = sum(c.status == "fail" for c in checks)
    warns = sum(c.status == "warn" for c in checks)
    out().print(f"{fails} problem(s), {warns} warning(s)" if fails or warns else "[green]all checks passed[/]")
