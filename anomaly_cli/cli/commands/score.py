"""``anomaly score PATH_OR_URL...``: screen recordings directly and explain each verdict.

Inputs are local files, folders (their audio files; ``--recursive`` descends), ``s3://`` and
https URLs (fetched through the same Fetcher as the worker, so the allowlist applies). The work is
``ops/score.py``: the worker's screening pool and processes, so a folder costs per item what the
worker's bench says. A bad
input is a result (``corrupt``, ``unavailable``), never a crash; the exit code is non-zero only
for usage or configuration errors (no model, empty allowlist for a remote input).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from anomaly_cli.cli import context, exit_codes, output


def command(
    ctx: typer.Context,
    inputs: Annotated[
        list[str], typer.Argument(help="audio files, folders, s3://bucket/key or https URLs", show_default=False)
    ],
    json_out: Annotated[bool, typer.Option("--json", help="one JSON object per input on stdout")] = False,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="model version (default: newest)")
    ] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="descend into sub-folders")] = False,
) -> None:
    """Screen recordings and explain each verdict (reasons with measured value and threshold)."""
    cli = context.get(ctx)
    o = output.Output(json_out)
    with o.errors():
        settings = cli.settings()
        from anomaly_cli.model.engine import load_model
        from anomaly_cli.model.thresholds import ProgrammeThresholds

        model = load_model(
            settings.model_dir,
            model_version or settings.model_version or None,
            ProgrammeThresholds.from_settings(settings),
        )
        from anomaly_cli.ops import score as scoring

        items = list(scoring.expand_inputs(inputs, recursive=recursive))
        if not items:
            o.fail("no_inputs", "no audio files found in the given folders", exit_code=exit_codes.RET_USAGE)
        remote = _fetcher(cli) if any(scoring.is_remote(i) for i in items) else None
        # --json: one object per input as it is screened; else one table at the end
        o.stream(scoring.score(items, settings, model, remote=remote), lambda rows: _render(rows, model.version))


def _fetcher(cli: context.CliContext) -> Any:
    from anomaly_cli.adapters.storage import Fetcher
    from anomaly_cli.adapters.urls import ensure_allowlist

    settings = cli.settings()
    ensure_allowlist(settings)  # an empty allowlist is a configuration error for remote inputs
    return Fetcher(settings, s3_client=cli.s3_client)


def _render(rows: list[dict[str, Any]], version: str) -> None:
    from rich.table import Table

    table = Table(title=f"anomaly score (model {version})", title_justify="left")
    for col in ("input", "verdict", "score", "reasons", "duration", "format"):
        table.add_column(col, overflow="fold", justify="right" if col in ("score", "duration") else "left")
    for r in rows:
        verdict = "[red]ANOMALY[/]" if r["is_anomaly"] else "[green]ok[/]"
        reasons = "\n".join(_reason_text(x) for x in r["reasons"]) or "-"
        dur = r["audio"].get("duration_s")
        table.add_row(
            r["input"],
            verdict,
            f"{r['anomaly_score']:.2f}",
            reasons,
            "-" if dur is None else f"{dur:.1f} s",
            str(r["audio"].get("format", "-")),
        )
    output.out().print(table)
    flagged = sum(r["is_anomaly"] for r in rows)
    output.err().print(f"{len(rows)} screened, {flagged} flagged")


def _reason_text(reason: dict[str, Any]) -> str:
    # the detail names the measurement(s) and threshold(s): "low_volume: level_p95_dbfs -49.63 < -42"
    return f"{reason['code']}: {reason.get('detail') or reason.get('value')}"[:160]
