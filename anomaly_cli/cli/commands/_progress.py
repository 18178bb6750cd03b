"""A small rich progress helper for the operator commands (stderr; drawn only when
:func:`~anomaly_cli.cli.output.interactive`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from anomaly_cli.cli.output import err


@contextlib.contextmanager
def progress(label: str, *, total: int | None = None, enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Yield ``update(completed, description="", total=None)``; a no-op when not ``enabled`` (pass
    ``Output.progress_enabled``) or stderr is not for a person."""
    from anomaly_cli.cli.output import interactive

    if not (enabled and interactive()):
        yield lambda *a, **k: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn(f"[bold]{label}[/] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total)

        def update(completed: int, description: str = "", total: int | None = None, **_: Any) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.update(task, completed=completed, description=description)

        yield update
