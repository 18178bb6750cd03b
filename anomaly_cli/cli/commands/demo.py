"""`anomaly demo`: the whole pipeline on this machine, no cloud: moto (SQS + S3) and the
embedded Mongo double, generated recordings, the real discover and work code paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomaly_cli.cli import context
from anomaly_cli.cli.output import Output, err, out

if TYPE_CHECKING:
    from anomaly_cli.ops.demo import DemoReport

#: The demo's page (``/demo-output/`` is git-ignored).
DEFAULT_REPORT = "demo-output/report-2025-12-20.html"


def command(
    ctx: typer.Context,
    students: Annotated[
        int, typer.Option("--students", min=5, max=5000, help="Students in the generated source collection.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated world (same seed, same recordings).")] = 7,
    report: Annotated[
        str, typer.Option("--report", help="Where to write the HTML results report of the demo's world ('' = none).")
    ] = DEFAULT_REPORT,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Run the pipeline end to end on a laptop: generate a school's worth of recordings, discover, screen, report.

    Changes nothing outside this process (its moto server and Mongo double vanish at the end).
    Exit codes: 0, or the code of the error that stopped a stage (e.g. 4 connection, 1 unexpected).
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.ops.demo import run_demo

        base = cli.settings()
        with _Phases(enabled=o.progress_enabled) as on_phase:
            result = run_demo(students, seed, base=base, on_phase=on_phase, report_path=report or None)
    o.result(result.to_dict(), lambda: _render(result))


class _Phases:
    """One rich progress bar per demo phase (stderr)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tasks: dict[str, Any] = {}
        self.progress: Any = None

    def __enter__(self) -> Any:
        from anomaly_cli.cli.output import interactive

        if not (self.enabled and interactive()):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err()
        )
        self.progress.start()
        self.update("set up", 0, None)  # moto, queues, model: a pulsing bar at once, not a blank screen
        return self.update

    def update(self, phase: str, done: int, total: int | None) -> None:
        if phase not in self.tasks:
            for task_id in self.tasks.values():  # a new phase means the previous ones are over
                task = self.progress.tasks[task_id]
                end = task.total or task.completed or 1
                self.progress.update(task_id, total=end, completed=end)
            self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.update(self.tasks[phase], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _render(r: DemoReport) -> None:
    from rich.table import Table

    from anomaly_cli.cli.commands.results import render_inspect

    d = r.discovery
    out().print(
        f"[bold]demo[/]: {r.students} students, {r.recordings} recordings in S3 (moto), model {r.model_version}"
        + (" [yellow](trained just now: no model in MODEL_DIR)[/]" if r.model_trained_here else "")
    )
    out().print(
        f"discover backfill: {d.get('enqueued')} enqueued in {d.get('pages')} page(s), "
        f"{sum((d.get('skipped_invalid') or {}).values())} row(s) without audio skipped; "
        f"work: {r.worker.get('succeeded')} screened, {r.worker.get('failed_terminal')} terminal failures, "
        f"{r.worker.get('items_per_s')} recordings/s"
    )
    render_inspect(r.inspect)
    t = Table(title="planted vs found")
    for c in ("planted kind", "planted", "flagged", "recall", "with that reason"):
        t.add_column(c, justify="left" if c == "planted kind" else "right")
    for kind, row in r.per_kind.items():
        if kind == "normal":
            continue
        t.add_row(
            kind, str(row["planted"]), str(row["flagged"]), f"{row['recall']:.0%}", f"{row['recall_right_reason']:.0%}"
        )
    out().print(t)
    rate = r.false_alarms / r.normals if r.normals else 0.0
    out().print(f"false alarms: {r.false_alarms} of {r.normals} normal readings ({rate:.1%})")
    tm = r.timings_s
    out().print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in tm.items()))
    if r.report_path:
        out().print(f"report: {r.report_path}", highlight=False, markup=False, soft_wrap=True)
