"""``anomaly score PATH_OR_URL...``: screen recordings directly and explain each verdict.

Inputs are local files, folders (their audio files; ``--recursive`` descends), ``s3://`` and
https URLs (fetched through the same Fetcher as the worker, so the allowlist applies). A bad
input is a result (``corrupt``, ``unavailable``), never a crash; the exit code is non-zero only
for usage or configuration errors (no model, empty allowlist for a remote input).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Iterator

import typer

from anomaly_cli.adapters.protocols import AudioFetcher
from anomaly_cli.cli import context, exit_codes, output

#: Extensions picked up when a folder is given (a file named explicitly is always screened).
AUDIO_EXTENSIONS = {
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".m4a",
    ".mp4",
    ".aac",
    ".3gp",
    ".amr",
    ".webm",
    ".wma",
}


def _is_remote(item: str) -> bool:
    return "://" in item


def expand_inputs(items: list[str], *, recursive: bool) -> Iterator[str]:
    """Inputs in order; folders become their audio files (sorted)."""
    for item in items:
        p = Path(item)
        if not _is_remote(item) and p.is_dir():
            files = p.rglob("*") if recursive else p.iterdir()
            yield from (str(f) for f in sorted(files) if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        else:
            yield item


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
    from anomaly_cli.errors import ModelError

    cli = context.get(ctx)
    with output.handle_errors(json_out):
        settings = cli.settings()
        from anomaly_cli.model.engine import load_model

        try:
            model = load_model(settings.model_dir, model_version or settings.model_version or None)
        except ModelError as e:
            output.fail(e.code, str(e), hint=e.hint, exit_code=exit_codes.for_exception(e), json_mode=json_out)
        items = list(expand_inputs(inputs, recursive=recursive))
        if not items:
            output.fail(
                "no_inputs",
                "no audio files found in the given folders",
                exit_code=exit_codes.RET_USAGE,
                json_mode=json_out,
            )
        fetcher = _fetcher(cli) if any(_is_remote(i) for i in items) else None
        rows = []
        for item in items:
            row = score_one(item, model, settings, fetcher)
            if json_out:
                output.emit_json(row)
            else:
                rows.append(row)
        if not json_out:
            _render(rows, model.version)


def _fetcher(cli: context.CliContext) -> Any:
    from anomaly_cli.adapters.storage import Fetcher
    from anomaly_cli.adapters.urls import ensure_allowlist

    settings = cli.settings()
    ensure_allowlist(settings)  # an empty allowlist is a configuration error for remote inputs
    return Fetcher(settings, s3_client=cli.s3_client)


def score_one(item: str, model: Any, settings: Any, fetcher: AudioFetcher | None) -> dict[str, Any]:
    """Fetch or read one input and screen it; the JSON row of ``anomaly score --json``."""
    from anomaly_cli.adapters import storage
    from anomaly_cli.errors import FetchError
    from anomaly_cli.model.engine import screen_bytes, screen_fetch_error
    from anomaly_cli.redact import redact_url

    shown = redact_url(item) if _is_remote(item) else item
    try:
        if _is_remote(item):
            assert fetcher is not None  # the caller makes one when any item is remote
            got = fetcher.fetch(item)
        else:
            got = storage.read_local(item, max_bytes=settings.max_audio_bytes)
    except FetchError as e:
        s = screen_fetch_error(e, model.version)
    else:
        s = screen_bytes(got.data, model, max_duration_s=settings.max_duration_seconds)
    row = {
        "input": shown,
        "is_anomaly": s.is_anomaly,
        "anomaly_score": s.anomaly_score,
        "reasons": [r.to_dict() for r in s.reasons],
        "features": s.features,
        "model_version": s.model_version,
        "status": s.status,
        "audio": {k: v for k, v in s.audio.items() if k not in ("fingerprint", "fp_bands")},
    }
    if s.error:
        row["error"] = s.error
    return row


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
