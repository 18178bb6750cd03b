"""Output helpers: stdout carries data (tables, JSON), stderr carries logs, progress and errors.

:class:`Output` is the one place that knows ``--json``: a command makes one
(``o = Output(json_out)``), hands its result to ``o.result(payload, render)`` (or its rows to
``o.stream(rows, render)``) and ends errors through ``o.fail(...)`` or ``with o.errors():``.
Under ``--json`` an error is ``{"error": {"code", "message", "hint"}}`` on stdout; otherwise a
human line on stderr. Both raise ``typer.Exit`` with a named exit code. No command passes a
``json_mode`` flag around or writes JSON itself (``tests/cli/test_output.py`` checks it).

Progress bars and the worker's live panel are for a person: they are drawn only when stderr
is a terminal and the events there are human lines (:func:`interactive`), never under ``--json``
or ``LOG_FORMAT=json``, where every stderr line must be JSON (``Output.progress_enabled``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console

from anomaly_cli.cli import exit_codes
from anomaly_cli.log import get_logger

log = get_logger("cli")

_out: Console | None = None
_err: Console | None = None
_log_format = "json"  # what configure_logging chose for this process (see set_log_format)
_log_stream: Any = None  # the stderr it chose it for


def out() -> Console:
    """The data console (stdout)."""
    global _out
    if _out is None or _out.file is not sys.stdout:
        _out = Console(file=sys.stdout, soft_wrap=True)
    return _out


def err() -> Console:
    """The human console (stderr): progress, panels about problems, hints."""
    global _err
    if _err is None or _err.file is not sys.stderr:
        _err = Console(file=sys.stderr)
    return _err


def set_log_format(chosen: str) -> None:
    """Record the stderr format logging chose (``console`` or ``json``) for the current stderr."""
    global _log_format, _log_stream
    _log_format, _log_stream = chosen, sys.stderr


def stderr_is_json() -> bool:
    """Whether this command's stderr carries JSON lines: what logging chose for it, or, before the
    settings are loaded (a usage error, an invalid setting), what it would choose (``LOG_FORMAT``,
    a terminal or not)."""
    if _log_stream is sys.stderr:
        return _log_format == "json"
    import os

    from anomaly_cli.log import LOG_FORMATS, resolve_format

    fmt = os.environ.get("LOG_FORMAT", "auto").strip().lower()
    return resolve_format(fmt if fmt in LOG_FORMATS else "auto", sys.stderr) == "json"


def interactive() -> bool:
    """True when stderr is a terminal showing human lines: progress displays may be drawn."""
    return _log_format == "console" and err().is_terminal


def fact_table(title: str | None = None, *, numbers: bool = False) -> Any:
    """A two-column ``label | value`` table (bold labels; values right-aligned when ``numbers``)."""
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("", style="bold")
    t.add_column("", justify="right" if numbers else "left")
    return t


def to_jsonable(value: Any) -> Any:
    """Convert datetimes, ObjectIds, numpy scalars and tuples for ``json.dumps``."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def emit_json(payload: Any) -> None:
    """Print one JSON document on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(payload), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _json_event(level: str, event: str, fields: dict[str, Any]) -> None:
    """One JSON line on stderr: through logging where it is set up for this stderr, else written here
    in the same shape (before the settings loaded)."""
    if _log_stream is sys.stderr:
        getattr(log, level)(event, **fields)
        return
    import logging

    from anomaly_cli.log import JsonFormatter

    record = logging.LogRecord("anomaly.cli", getattr(logging, level.upper()), __file__, 0, event, None, None)
    record.event, record.fields = event, fields
    sys.stderr.write(JsonFormatter().format(record) + "\n")
    sys.stderr.flush()


def confirm(question: str) -> bool:
    """Ask ``question`` (yes/no, default no) before a destructive step.

    On a terminal it is Click's prompt on stderr. Where stderr carries JSON lines (not a terminal,
    or ``LOG_FORMAT=json``), the question is one ``confirmation_required`` event like every other
    line there, and the answer one line read from stdin (``y`` / ``yes``; anything else is no);
    nothing is written to stdout, which stays the command's data. End of input aborts (Click's
    ``Abort``: an ``aborted`` error), as Ctrl-C does.
    """
    if not stderr_is_json():
        return bool(typer.confirm(question, err=True))
    _json_event("warning", "confirmation_required", {"question": question, "answer": "y or yes on stdin; --yes skips"})
    line = sys.stdin.readline()
    if not line:
        raise typer.Abort()
    return line.strip().lower() in ("y", "yes")


def _print_error(code: str, message: str, hint: str | None, json_mode: bool, exit_code: int | None = None) -> None:
    """An error in the CLI's one shape: ``{"error": ...}`` on stdout under ``--json``; else on stderr
    human lines, or, where stderr carries JSON lines, one ``command_failed`` event like every other line."""
    from anomaly_cli.redact import redact_text

    message = redact_text(message)
    if json_mode:
        emit_json({"error": {"code": code, "message": message, "hint": hint}})
    elif stderr_is_json():
        _json_event("error", "command_failed", {"code": code, "message": message, "hint": hint, "exit_code": exit_code})
    else:
        from rich.markup import escape

        # message and hint are plain text: escaped, so "pip install 'anomaly-cli[demo]'" keeps its [demo]
        err().print(f"[bold red]error[/] [dim]({code})[/]: {escape(message)}", markup=True, highlight=False)
        if hint:
            err().print(f"[yellow]hint[/]: {escape(hint)}", highlight=False)


def _with_flag(e: Any) -> str | None:
    """A missing/invalid setting's hint, plus the running command's flag for it when it has one.

    Core errors cannot know the CLI's flags; the command's own options say which setting they
    set (``(env NAME`` in their help), so a hint never offers a flag that does not exist.
    """
    field = getattr(e, "field", None)
    if not field or not e.hint:
        return e.hint
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return e.hint
    for p in ctx.command.params:
        if getattr(p, "param_type_name", "") == "option" and f"(env {field}" in (getattr(p, "help", None) or ""):
            flag = next((o for o in p.opts if o.startswith("--")), None)
            if flag:
                return f"{e.hint}, or pass {flag}"
    return e.hint


@contextlib.contextmanager
def _handle_errors(json_mode: bool) -> Iterator[None]:
    """Turn project errors escaping a command into an error and an exit code chosen by their type."""
    from anomaly_cli.errors import AnomalyError

    try:
        yield
    except typer.Exit:
        raise
    except AnomalyError as e:
        code = exit_codes.for_exception(e)
        _print_error(e.code, str(e), _with_flag(e), json_mode, code)
        raise typer.Exit(code) from None
    except KeyboardInterrupt:
        _print_error("interrupted", "interrupted", None, json_mode, exit_codes.RET_INTERRUPTED)
        raise typer.Exit(exit_codes.RET_INTERRUPTED) from None


class Output:
    """What a command prints, in one place: JSON on stdout under ``--json``, tables otherwise.

    ``result`` prints the payload (or calls ``render``), ``stream`` prints rows as they come,
    ``fail`` ends the command with an error in the same voice (``error`` only prints one),
    ``errors()`` turns project errors escaping a block into ``fail`` with the exit code of their
    type, ``note`` is a human remark, and ``progress_enabled`` says whether progress may be drawn.
    """

    def __init__(self, json_mode: bool = False):
        self.json = json_mode

    @property
    def progress_enabled(self) -> bool:
        return not self.json and interactive()

    def result(self, payload: Any, render: Callable[[], object] | None = None) -> None:
        """Print ``payload`` as JSON under ``--json``, else call ``render()`` (tables on stdout)."""
        if self.json or render is None:
            emit_json(payload)
        else:
            render()

    def stream(self, rows: Iterable[Any], render: Callable[[list[Any]], object]) -> list[Any]:
        """Under ``--json`` print each row as it comes (one JSON document a line); else collect them
        and call ``render(rows)`` at the end. Returns the rows seen."""
        seen = []
        for row in rows:
            seen.append(row)
            if self.json:
                emit_json(row)
        if not self.json:
            render(seen)
        return seen

    def error(self, code: str, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        """Print an error in the command's voice without ending it (the caller chooses the exit)."""
        _print_error(code, message, hint, self.json, exit_code)

    def fail(
        self, code: str, message: str, *, hint: str | None = None, exit_code: int = exit_codes.RET_ERROR
    ) -> NoReturn:
        """End the command with an error, machine-readable under ``--json``."""
        _print_error(code, message, hint, self.json, exit_code)
        raise typer.Exit(exit_code)

    def note(self, text: str) -> None:
        """A human remark on stderr (hints, 'exported N rows'); silent under ``--json``."""
        if not self.json:
            err().print(text, highlight=False)

    def errors(self) -> contextlib.AbstractContextManager[None]:
        return _handle_errors(self.json)
