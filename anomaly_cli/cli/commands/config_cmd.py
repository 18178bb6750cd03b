"""`anomaly config show`: every effective setting, where it came from, secrets redacted."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from anomaly_cli.cli import context
from anomaly_cli.cli.output import Output, out

app = typer.Typer(no_args_is_help=True, help="Inspect the effective configuration.")


@app.command("show")
def show(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the settings as JSON on stdout.")] = False,
) -> None:
    """Show every setting: value (secrets redacted), source (default, .env, env, flag) and variable.

    Exit codes: 0, or 3 when a setting is invalid (the message names it).
    """
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.config import env_name, setting_fields

        settings = context.get(ctx).settings()
        values = settings.redacted()
        rows = [
            {
                "name": f.name,
                "env": env_name(f.name),
                "value": values[f.name],
                "source": settings.sources.get(f.name, "default"),
                "help": f.metadata["help"],
            }
            for f in setting_fields()
        ]
    o.result({"settings": rows}, lambda: _render(rows))


def _render(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="effective settings (defaults < .env < environment < flags)")
    for col in ("variable", "value", "source"):
        table.add_column(col)
    for r in rows:
        value = r["value"]
        shown = ",".join(value) if isinstance(value, list) else ("" if value is None else str(value))
        style = "" if r["source"] == "default" else "bold"
        table.add_row(r["env"], shown, r["source"], style=style)
    out().print(table)
