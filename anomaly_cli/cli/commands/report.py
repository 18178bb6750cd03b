"""`anomaly results report`: the self-contained HTML page a programme manager opens."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from anomaly_cli.cli import context
from anomaly_cli.cli.commands._progress import progress
from anomaly_cli.cli.output import Output, out
from anomaly_cli.cli.params import parse_date


def command(
    ctx: typer.Context,
    test_date: Annotated[
        str,
        typer.Argument(
            parser=parse_date, metavar="DATE", help="Test date YYYY-MM-DD (the first of a range with --to)."
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", parser=parse_date, metavar="DATE", help="Last test date of a range (inclusive)."),
    ] = None,
    out_path: Annotated[
        str | None, typer.Option("--out", help="Where to write the page (default report-DATE[-lang].html).")
    ] = None,
    lang: Annotated[Literal["en", "mr"], typer.Option("--lang", help="Page language (mr: Marathi).")] = "en",
    min_count: Annotated[
        int, typer.Option("--min-count", min=1, help="Places need this many screened results to be ranked.")
    ] = 10,
    no_coverage: Annotated[
        bool, typer.Option("--no-coverage", help="Skip the coverage section (it reads the source collection).")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print where the page went (and its totals) as JSON.")
    ] = False,
) -> None:
    """Write one self-contained HTML page (charts, tables, CSV downloads; opens with no network) and print its path.

    Exit codes: 0, 2 bad date / language, 4 MongoDB unreachable.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.extras import require
        from anomaly_cli.ops.report import build_report
        from anomaly_cli.report.page import write

        require("report", "anomaly results report")  # before reading anything: the charts need matplotlib
        settings = cli.settings()
        with progress("report", enabled=o.progress_enabled) as update:
            data = build_report(
                settings,
                cli.db,
                test_date,
                to,
                min_count=min_count,
                with_coverage=not no_coverage,
                on_progress=lambda what, n: update(n, f"{what} read"),
            )
        path = out_path or default_name(data.date_from, data.date_to, lang)
        size = write(data, path, lang)
    c = data.overall
    payload = {
        "path": str(path),
        "bytes": size,
        "lang": lang,
        "date_from": data.date_from,
        "date_to": data.date_to,
        "results": c.total,
        "anomalies": c.anomalies,
        "failed": c.failed,
    }
    o.note(
        f"{c.total} result(s): {c.anomalies} anomalies ({c.rate:.1%} of {c.ok} screened), {c.failed} failed; "
        f"{len(data.clusters)} duplicate cluster(s); page {size / 1024:.0f} kB"
    )
    # the path alone on stdout: `xdg-open "$(anomaly results report DATE)"` works
    o.result(payload, lambda: out().print(str(path), highlight=False, markup=False, soft_wrap=True))


def default_name(date_from: str, date_to: str, lang: str) -> str:
    """``report-2025-12-20.html``, ``report-2025-12-20_2026-01-20-mr.html``."""
    dates = date_from if date_from == date_to else f"{date_from}_{date_to}"
    return f"report-{dates}{'' if lang == 'en' else '-' + lang}.html"
