"""`anomaly state show|list|reset`: the discovery state (watermark, counters, lease) per test date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.output import Output, confirm, err, out
from anomaly_cli.cli.params import DateArgument

if TYPE_CHECKING:
    from anomaly_cli.config import Settings

app = typer.Typer(no_args_is_help=True, help="Show, list or reset the discovery state of a test date.")

DateArg = DateArgument
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def _repo(ctx: typer.Context) -> Any:
    from anomaly_cli.discovery.state import StateRepository

    cli = context.get(ctx)
    s = cli.settings()
    return StateRepository(
        cli.db[s.mongo_state_collection],
        pipeline_name=s.pipeline_name,
        source_collection=s.mongo_source_collection,
        lease_seconds=s.discovery_lease_seconds,
    )


def cli_settings(ctx: typer.Context) -> Any:
    return context.get(ctx).settings()


def _not_found_hint(settings: Settings, test_date: str) -> str:
    from anomaly_cli.adapters.mongo import EMBEDDED_ALONE_HINT, embedded_alone

    if embedded_alone(settings.mongo_uri):
        return EMBEDDED_ALONE_HINT
    return f"run: anomaly discover --mode backfill --test-date {test_date}"


def _age(value: Any, now: dt.datetime) -> str:
    if not isinstance(value, dt.datetime):
        return "-"
    from anomaly_cli.contract import utc

    secs = int((now - utc(value)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(secs) >= size:
            return f"{secs // size}{unit} ago"
    return f"{secs}s ago"


def _lease_text(doc: Mapping[str, Any], live: bool) -> str:
    lease = doc.get("lease") or {}
    if not lease:
        return "free"
    return f"{lease.get('holder')} until {lease.get('expires_at')}" + ("" if live else " (expired)")


@app.command("show")
def show(ctx: typer.Context, test_date: DateArg, json_out: JsonOpt = False) -> None:
    """Show the state of one test date: status, mode, watermark, counters, last run, lease."""
    o = Output(json_out)
    with o.errors():
        repo = _repo(ctx)
        doc = repo.get(test_date)
        if doc is None:
            o.fail(
                "state_not_found",
                f"no discovery state for {test_date} (id {repo.id_for(test_date)})",
                hint=_not_found_hint(cli_settings(ctx), test_date),
                exit_code=exit_codes.RET_ERROR,
            )
        live = repo.lease_live(doc)
    o.result(doc | {"lease_live": live}, lambda: _render_show(doc, live))


def _render_show(doc: Mapping[str, Any], live: bool) -> None:
    from rich.panel import Panel
    from rich.table import Table

    now = dt.datetime.now(dt.UTC)
    t = Table(show_header=False, box=None)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("status", str(doc.get("status")))
    t.add_row("mode", str(doc.get("mode")))
    wm = doc.get("watermark") or {}
    t.add_row(
        "watermark",
        " ".join(
            str(wm.get(k))
            for k in (
                "last_processed_timestamp",
                "last_processed_doc_id",
                "last_processed_record_type",
                "last_processed_subject_id",
            )
        )
        if wm
        else "- (none yet)",
    )
    t.add_row("totals", _stats_text(doc.get("stats") or {}))
    last = doc.get("last_run") or {}
    if last:
        t.add_row(
            "last run",
            f"{last.get('mode')} {last.get('status')} started {last.get('started_at')} "
            f"finished {last.get('finished_at') or '-'}" + (f" error: {last['error']}" if last.get("error") else ""),
        )
        t.add_row("last run stats", _stats_text(last.get("stats") or {}))
        if last.get("progress"):
            t.add_row("polling", _progress_text(last["progress"], now))
    t.add_row("updated", f"{doc.get('updated_at')} ({_age(doc.get('updated_at'), now)})")
    t.add_row("lease", _lease_text(doc, live))
    out().print(Panel(t, title=str(doc["_id"]), expand=False))


def _progress_text(p: Mapping[str, Any], now: dt.datetime) -> str:
    """An incremental run's progress: polls, the last poll, rows behind, rate, last heartbeat."""
    behind = p.get("rows_behind")
    behind_text = (
        "caught up (0 rows behind)"
        if behind == 0
        else f"catching up ({p.get('last_poll_rows', 0)} rows in the last poll)"
    )
    return (
        f"{p.get('polls', 0)} polls, last {p.get('last_poll_at')} ({_age(p.get('last_poll_at'), now)}), "
        f"{behind_text}, {p.get('enqueued', 0)} enqueued at {p.get('rate_rows_per_s', 0)} rows/s, "
        f"heartbeat {_age(p.get('heartbeat_at'), now)}"
    )


def _stats_text(stats: Mapping[str, Any]) -> str:
    invalid = stats.get("skipped_invalid") or {}
    parts = [
        f"{k} {stats.get(k, 0)}"
        for k in ("pages", "discovered", "enqueued", "skipped_existing", "skipped_recent", "failed")
    ]
    parts.append("invalid " + (", ".join(f"{k} {v}" for k, v in sorted(invalid.items())) or "0"))
    return ", ".join(parts)


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List every discovery state document, one row each."""
    o = Output(json_out)
    with o.errors():
        repo = _repo(ctx)
        docs = repo.list()
        rows = [
            {
                "test_date": d.get("test_date"),
                "source_collection": d.get("source_collection"),
                "status": d.get("status"),
                "mode": d.get("mode"),
                "watermark": (d.get("watermark") or {}).get("last_processed_timestamp"),
                "enqueued": (d.get("stats") or {}).get("enqueued", 0),
                "updated_at": d.get("updated_at"),
                "lease_live": repo.lease_live(d),
            }
            for d in docs
        ]
    o.result(rows, lambda: _render_list(rows))


def _render_list(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    t = Table(title="discovery state")
    for col in ("test date", "source", "status", "mode", "watermark", "enqueued", "updated", "lease"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            str(r["test_date"]),
            str(r["source_collection"]),
            str(r["status"]),
            str(r["mode"]),
            str(r["watermark"] or "-"),
            str(r["enqueued"]),
            str(r["updated_at"]),
            "held" if r["lease_live"] else "free",
        )
    out().print(t)
    if not rows:
        err().print("no discovery state yet")


@app.command("reset")
def reset(
    ctx: typer.Context,
    test_date: DateArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Reset even while a live lease is held by a running discover.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete the state of a test date (watermark and counters): the next incremental starts over."""
    o = Output(json_out)
    with o.errors():
        repo = _repo(ctx)
        doc = repo.get(test_date)
        if doc is None:
            o.fail("state_not_found", f"no discovery state for {test_date}; nothing to reset")
        if repo.lease_live(doc) and not force:
            o.fail(
                "lease_held",
                f"a discover run holds the lease of {test_date}: {_lease_text(doc, True)}",
                hint="stop that run first, or pass --force",
                exit_code=exit_codes.RET_ERROR,
            )
        if not yes and not confirm(
            f"Reset the discovery state of {test_date} "
            f"(watermark, {(doc.get('stats') or {}).get('enqueued', 0)} enqueued counted)?"
        ):
            o.fail("aborted", "not reset", exit_code=exit_codes.RET_ERROR)
        deleted = repo.reset(test_date, expected=doc)
        if deleted is None:
            now = repo.get(test_date)
            if now is not None:
                o.fail(
                    "state_changed",
                    f"the state of {test_date} changed while waiting for confirmation "
                    f"(lease: {_lease_text(now, repo.lease_live(now))}); nothing was deleted",
                    hint="run state show, then reset again",
                    exit_code=exit_codes.RET_ERROR,
                )
    summary = {
        "reset": deleted is not None,
        "_id": repo.id_for(test_date),
        "test_date": test_date,
        "watermark": (deleted or {}).get("watermark"),
        "stats": (deleted or {}).get("stats"),
    }
    o.result(
        summary,
        lambda: out().print(
            f"reset {summary['_id']}: watermark and counters deleted (was {_stats_text(summary['stats'] or {})})"
        ),
    )
