"""`anomaly push-urls` (being built; see the issue that owns it)."""

import typer


def command() -> None:
    """Not built yet."""
    raise typer.Exit(1)
