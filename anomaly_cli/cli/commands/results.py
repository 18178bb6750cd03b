"""Command group (being built; see the issue that owns it)."""

import typer

app = typer.Typer(no_args_is_help=True)
