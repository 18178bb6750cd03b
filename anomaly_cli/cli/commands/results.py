"""`anomaly results inspect | show | dedupe | report`: the results of a test date, one result explained,
the order-independent duplicate sweep, and the HTML report (``report.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.commands import report as report_cmd
from anomaly_cli.cli.commands._progress import progress
from anomaly_cli.cli.output import Output, fact_table, out
from anomaly_cli.cli.params import DateArgument

if TYPE_CHECKING:
    from anomaly_cli.ops.results import InspectReport
    from anomaly_cli.results.repository import DuplicateLink, SweepReport

app = typer.Typer(no_args_is_help=True, help="Inspect, explain, de-duplicate and report screening results.")
app.command("report")(report_cmd.command)


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    test_date: DateArgument,
    anomalies_only: Annotated[
        bool, typer.Option("--anomalies-only", help="Only results flagged as anomalies.")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Only results with this reason code.")] = None,
    udise: Annotated[str | None, typer.Option("--udise", help="Only this school (UDISE code).")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Results listed (latest first) and schools ranked.")
    ] = 10,
    min_count: Annotated[
        int, typer.Option("--min-count", min=1, help="Schools need this many results to be ranked.")
    ] = 10,
    export: Annotated[
        str | None, typer.Option("--export", help="Also stream every matching result to FILE.csv or FILE.jsonl.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Summarise a test date: totals and anomaly rate, reasons, record types, failures, schools, duplicates.

    Exit codes: 0, 3 bad date / export name, 4 MongoDB unreachable.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.ops import results as R

        settings = cli.settings()
        coll = cli.db[settings.mongo_result_collection]
        filters = R.Filters(test_date, anomalies_only=anomalies_only, reason=reason, udise=udise)
        report = R.inspect(coll, filters, limit=limit, min_school_count=min_count)
        exported = None
        if export:
            with progress("export", enabled=o.progress_enabled) as update:
                exported = R.export(coll, filters, export, on_progress=lambda n: update(n, export))
    o.result({**report.to_dict(), "exported": exported, "export_file": export}, lambda: render_inspect(report))
    if export:
        o.note(f"exported {exported} result(s) to {export}")


def render_inspect(r: InspectReport) -> None:
    """The human summary of an :class:`~anomaly_cli.ops.results.InspectReport` (the demo prints it too)."""
    filt = ", ".join(f"{k}={v}" for k, v in r.filters.items() if v)
    head = fact_table(f"results {r.test_date}" + (f" ({filt})" if filt else ""))
    head.add_row("screened", str(r.total))
    head.add_row("anomalies", f"{r.anomalies} ({r.anomaly_rate:.1%} of {r.ok} screened ok)")
    head.add_row("processing failures", str(r.failed))
    d, u = r.duplicates, r.reuse
    head.add_row(
        "duplicate uploads", f"{d.clusters} cluster(s) of {d.recordings} results, {d.copies} flagged as copies"
    )
    if u.clusters:
        head.add_row("re-used in one student", f"{u.clusters} cluster(s) of {u.recordings} results")
    head.add_row("processed", f"{_ts(r.processed_from)} .. {_ts(r.processed_to)}")
    out().print(head)
    if r.by_reason:
        out().print(_counts("by reason", r.by_reason))
    if r.by_record_type:
        t = _table("by record type", "record type", "total", "anomalies", "failed")
        for k, v in r.by_record_type.items():
            t.add_row(k, str(v["total"]), str(v["anomalies"]), str(v["failed"]))
        out().print(t)
    if r.failures_by_code:
        out().print(_counts("processing failures by error code", r.failures_by_code))
    if r.top_schools:
        t = _table("schools with the highest anomaly rate", "udise", "screened", "anomalies", "rate")
        for s in r.top_schools:
            t.add_row(str(s["udise"]), str(s["total"]), str(s["anomalies"]), f"{s['rate']:.1%}")
        out().print(t)
    if r.rows:
        out().print(_rows_table(r.rows, r.total))


#: characters of a result id listed by ``inspect``; ``results show`` takes any unique prefix of 8+
SHORT_ID = 12


def _rows_table(rows: list[dict[str, Any]], total: int) -> Any:
    """The latest results, one row each: the id ``results show`` takes, why, where, how it went."""
    from rich.table import Table

    shown = f"latest {len(rows)} of {total}" if total > len(rows) else f"all {total}"
    t = Table(title=f"results ({shown}; `anomaly results show ID` explains one, --limit lists more)")
    t.add_column("id", no_wrap=True)
    t.add_column("status")
    t.add_column("reasons")
    t.add_column("school")
    t.add_column("record")
    for row in rows:
        status = "failed" if row["status"] == "failed" else "anomaly" if row["is_anomaly"] else "normal"
        colour = {"anomaly": "red", "failed": "yellow", "normal": "green"}[status]
        reasons = row["reason_codes"].replace(";", ", ") or "-"
        if row["status"] == "failed" and row.get("error_code"):
            reasons = str(row["error_code"])
        t.add_row(
            str(row["_id"])[:SHORT_ID],
            f"[{colour}]{status}[/]",
            reasons,
            str(row.get("udise") or "-"),
            f"{row.get('record_type')} {row.get('subject_id')}",
        )
    return t


def _table(title: str, key: str, *numbers: str) -> Any:
    """A table whose first column (the key) is left-aligned and the counts right-aligned."""
    from rich.table import Table

    t = Table(title=title)
    t.add_column(key)
    for c in numbers:
        t.add_column(c, justify="right")
    return t


def _ts(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else "-"


def _counts(title: str, counts: dict[str, int]) -> Any:
    from rich.table import Table

    t = Table(title=title)
    t.add_column("code")
    t.add_column("count", justify="right")
    for k, v in counts.items():
        t.add_row(k, str(v))
    return t


@app.command("show")
def show(
    ctx: typer.Context,
    key: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="A result id or its first 8+ characters (as `results inspect` lists them), or a source "
            "mongo_doc_id (lists its results).",
        ),
    ],
    expires: Annotated[
        int, typer.Option("--expires", min=1, max=3600, help="Seconds the listening link stays valid.")
    ] = 300,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result(s) as JSON on stdout.")] = False,
) -> None:
    """Explain a result: verdict, reasons with values and thresholds, audio facts, and a short-lived listening link.

    Exit codes: 0, 1 not found, 4 MongoDB unreachable.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.ops import results as R

        settings = cli.settings()
        docs = R.find_for_show(cli.db[settings.mongo_result_collection], key)
        if not docs:
            o.fail(
                "not_found",
                f"no result with _id or mongo_doc_id {key!r}",
                hint="`anomaly results inspect DATE` lists result ids",
                exit_code=exit_codes.RET_ERROR,
            )
        shown = []
        for doc in docs:
            link, why = R.listen_link(cli.s3_client, doc, expires) if len(docs) == 1 else (None, None)
            shown.append({**R.explain(doc, listen_url=link), "listen_unavailable": why})
    o.result(
        shown[0] if len(shown) == 1 else {"results": shown},
        lambda: _render_list(key, shown) if len(shown) > 1 else _render_one(shown[0], expires),
    )


def _render_list(key: str, shown: list[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title=f"results of source document {key}")
    for c in ("id", "test date", "record type", "subject", "verdict", "reasons"):
        t.add_column(c, no_wrap=c == "id")
    for s in shown:
        t.add_row(
            str(s["_id"])[:SHORT_ID],
            s["source"]["test_date"],
            str(s["source"].get("record_type")),
            str(s["source"].get("subject_id")),
            s["verdict"],
            ", ".join(r["code"] for r in s["reasons"]) or "-",
        )
    out().print(t)


def _render_one(s: dict[str, Any], expires: int) -> None:
    from rich.table import Table

    colour = {"anomaly": "red", "failed": "yellow", "normal": "green"}[s["verdict"]]
    src, proc = s["source"], s["processing"]
    failed = s["verdict"] == "failed"
    t = fact_table(f"result {s['_id']}")
    e = proc.get("error") or {}
    if failed:  # a failure is shown as one: what went wrong first, no score, no made-up audio facts
        t.add_row("verdict", f"[{colour}]failed[/] at {e.get('stage') or '?'}: {e.get('code') or '?'}")
        t.add_row("error", str(e.get("message") or "-"))
    else:
        t.add_row("verdict", f"[{colour}]{s['verdict']}[/]")
        t.add_row("score / threshold", f"{_num(s['anomaly_score'])} / {_num(s['threshold'])}")
    for k in ("test_date", "record_type", "mongo_doc_id", "subject_id", "student_id", "udise", "audio_url"):
        t.add_row(k, str(src.get(k)))
    t.add_row(
        "processed",
        f"{_ts(proc.get('processed_at'))} by {proc.get('worker_id')} (attempt {proc.get('attempt')}, "
        f"model {proc.get('model_version')})",
    )
    if e and not failed:
        t.add_row("error", f"{e.get('code')} at {e.get('stage')}: {e.get('message')}")
    audio = _audio_text(s["audio"])
    if audio:
        t.add_row("audio", audio)
    if s["duplicate_of"]:
        t.add_row("duplicate of", ", ".join(s["duplicate_of"]))
    if s.get("reuse_of"):
        t.add_row("same recording as", ", ".join(s["reuse_of"]) + " (other row(s) of this student)")
    t.add_row(
        "listen",
        f"link below, valid {expires} s (a child's recording: do not share it)"
        if s["listen_url"]
        else f"none: {s['listen_unavailable']}",
    )
    out().print(t)
    if s["listen_url"]:
        out().print(s["listen_url"], soft_wrap=True, highlight=False, markup=False)  # never cut: a cut link is useless
    if s["reasons"]:
        r = Table(title="reasons")
        for c in ("code", "value", "threshold", "detail"):
            r.add_column(c)
        for reason in s["reasons"]:
            r.add_row(
                str(reason.get("code")),
                _num(reason.get("value")),
                _num(reason.get("threshold")),
                str(reason.get("detail") or ""),
            )
        out().print(r)


def _num(v: Any) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _audio_text(a: dict[str, Any]) -> str:
    """What is known of the recording (only the facts that were measured; nothing for a failed fetch)."""
    parts = []
    if a.get("format"):
        parts.append(str(a["format"]))
    if a.get("sample_rate"):
        parts.append(f"{a['sample_rate']} Hz" + (f" x{a['channels']}" if a.get("channels") else ""))
    if a.get("duration_s") is not None:
        parts.append(f"{a['duration_s']} s")
    if a.get("bytes"):
        parts.append(f"{a['bytes']} bytes")
    return ", ".join(parts)


@app.command("dedupe")
def dedupe(
    ctx: typer.Context,
    test_date: DateArgument,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Find duplicates; flag nothing.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")] = False,
) -> None:
    """Sweep a whole test date for duplicate recordings (order-independent) and flag the later ones.

    Catches pairs two workers screened at the same moment. Exit codes: 0, 3 bad date, 4 MongoDB unreachable.
    """
    cli = context.get(ctx)
    o = Output(json_out)
    with o.errors():
        from anomaly_cli.config import validate_test_date
        from anomaly_cli.results.repository import ResultRepository

        validate_test_date(test_date, field_name="TEST_DATE")
        settings = cli.settings()
        with progress("dedupe", enabled=o.progress_enabled) as update:
            update(0, f"sweeping {test_date}")
            repo = ResultRepository(
                cli.db[settings.mongo_result_collection], reuse_is_anomaly=settings.reuse_within_student_is_anomaly
            )
            report = repo.dedupe_sweep(test_date, dry_run=dry_run)
    payload = {
        "test_date": report.test_date,
        "scanned": report.scanned,
        "clusters": [c.to_dict() for c in report.clusters],
        "links": [_link(k) for k in report.links],
        "reuse_clusters": [c.to_dict() for c in report.reuse_clusters],
        "reuse_links": [_link(k) for k in report.reuse_links],
        "would_flag": report.would_flag,
        "newly_flagged": report.newly_flagged,
        "dry_run": report.dry_run,
    }
    o.result(payload, lambda: _render_dedupe(report, test_date, dry_run))


def _render_dedupe(report: SweepReport, test_date: str, dry_run: bool) -> None:
    t = fact_table(f"duplicate sweep {test_date}" + (" (dry run: nothing flagged)" if dry_run else ""), numbers=True)
    t.add_row("results scanned", str(report.scanned))
    t.add_row("clusters", str(len(report.clusters)))
    t.add_row("results in clusters", str(sum(len(c.members) for c in report.clusters)))
    t.add_row("duplicate links", str(len(report.links)))
    t.add_row("re-used within a student", f"{len(report.reuse_clusters)} cluster(s), {len(report.reuse_links)} link(s)")
    t.add_row(
        "would flag" if dry_run else "newly flagged",
        str(len(report.would_flag) if dry_run else len(report.newly_flagged)),
    )
    out().print(t)
    for link in report.links[:20]:
        out().print(f"  {link.later} duplicates {link.earlier} ({_how(link)})")
    for link in report.reuse_links[:20]:
        out().print(f"  {link.later} re-uses {link.earlier} of the same student ({_how(link)})")


def _link(link: DuplicateLink) -> dict[str, Any]:
    return {"later": link.later, "earlier": link.earlier, "how": link.how, "ber": link.ber, "offset_s": link.offset_s}


def _how(link: DuplicateLink) -> str:
    extra = f", BER {link.ber:.2f}" if link.ber is not None else ""
    if link.offset_s:
        extra += f", at {link.offset_s:+.1f} s"
    return link.how + extra
