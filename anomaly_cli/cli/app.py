"""The ``anomaly`` command: composition only. Each command lives in ``cli/commands/``."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from anomaly_cli import __version__
from anomaly_cli.cli.commands import (
    config_cmd,
    coverage,
    demo,
    discover,
    doctor,
    model,
    push_urls,
    replay_dlq,
    rescreen,
    results,
    sandbox,
    score,
    seed_sqs,
    state,
    work,
)
from anomaly_cli.cli.context import CliContext
from anomaly_cli.cli.params import AnomalyGroup

app = typer.Typer(
    name="anomaly",
    cls=AnomalyGroup,
    help="Screen children's oral-reading recordings for problems: Mongo -> SQS -> workers -> results.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # locals would print settings and credentials
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anomaly {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    env_file: Annotated[
        str | None, typer.Option("--env-file", help="Read settings from this .env file (default ./.env).")
    ] = None,
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None,
        typer.Option("--log-level", case_sensitive=False, help="Level of the events on stderr (env LOG_LEVEL)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Operator toolkit for the reading-audio anomaly pipeline."""
    ctx.obj = CliContext(env_file=env_file, log_level=log_level)


app.command("discover")(discover.command)
app.command("work")(work.command)
app.command("score")(score.command)
app.command("seed-sqs")(seed_sqs.command)
app.command("push-urls")(push_urls.command)
app.command("replay-dlq")(replay_dlq.command)
app.command("rescreen")(rescreen.command)
app.command("coverage")(coverage.command)
app.command("doctor")(doctor.command)
app.command("demo")(demo.command)
app.command("sandbox")(sandbox.command)
app.add_typer(state.app, name="state")
app.add_typer(results.app, name="results")
app.add_typer(model.app, name="model")
app.add_typer(config_cmd.app, name="config")


def main() -> None:
    """Console-script entry point (``anomaly``, or ``python -m anomaly_cli``: help says ``anomaly`` either way)."""
    app(prog_name="anomaly")
