"""Event logging on stderr: JSON lines for machines, short human lines for a person.

JSON (``LOG_FORMAT=json``, or ``auto`` when stderr is not a terminal): one object per line,
``{"ts", "level", "event", "component", ...fields}``. ``event`` uses the spec's names
(``discovery_page_fetched``, ``results_upserted`` ...). Every line the process writes to stderr
is then JSON: Python warnings of third-party libraries become ``python_warning`` events, native
decoder chatter becomes ``native_library_message`` (see ``worker/pool.py``).

Console (``LOG_FORMAT=console``, or ``auto`` on a terminal): rich's logging handler prints one
short line per event on the same console as the progress bars and the worker's live panel, so
lines appear above the live display instead of being redrawn through it. Warnings and errors
are coloured. Lifecycle events that fire per page, chunk or batch (:data:`CONSOLE_DEBUG_ONLY`)
are shown on a terminal only at ``DEBUG``: the live display already counts them, and the JSON
stream still carries them at their level for dashboards.

In both forms values that look like audio URLs lose their query string (presigned signatures)
and credentials in free text are masked, so a log line is always safe to paste into a ticket.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import warnings
from typing import TYPE_CHECKING, Any, TextIO

from anomaly_cli.redact import redact_text, redact_url

if TYPE_CHECKING:
    from rich.console import Console

LOGGER_NAME = "anomaly"
_URL_KEYS = {"audio_url", "audio_s3_url", "url", "input"}
LOG_FORMATS = ("auto", "json", "console")
#: Per page / chunk / batch lifecycle events: on a terminal they would scroll past faster than
#: anyone reads them (the progress bar and live panel count the same things), so the console
#: shows them only at DEBUG. JSON keeps them at their own level.
CONSOLE_DEBUG_ONLY = frozenset(
    {
        "discovery_page_fetch_started",
        "discovery_page_fetch_completed",
        "discovery_page_fetched",
        "discovery_candidates_resolved",
        "enqueue_chunk_started",
        "enqueue_chunk_completed",
        "existing_results_checked",
        "watermark_advanced",
        "messages_polled",
        "batch_dispatched",
        "batch_processing_started",
        "eligible_keys_resolved",
        "inference_batch_started",
        "feature_build_completed",
        "inference_batch_completed",
        "results_upserted",
        "processed_items_acked",
        "batch_processed",
        "replay_chunk_completed",
    }
)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; ``record.fields`` holds the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "event": getattr(record, "event", None) or record.getMessage(),
            "component": record.name.removeprefix(LOGGER_NAME + ".") if record.name != LOGGER_NAME else "anomaly",
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            payload[key] = _safe(key, value)
        if record.exc_info and record.exc_info[0] is not None:
            payload["exc_type"] = record.exc_info[0].__name__
            payload["exc"] = redact_text(str(record.exc_info[1]))
        return json.dumps(payload, default=_default, ensure_ascii=False)


def _safe(key: str, value: Any) -> Any:
    if key in _URL_KEYS and isinstance(value, str):
        return redact_url(value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _safe(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(key, v) for v in value]
    return value


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


class ConsoleFormatter(logging.Formatter):
    """The message part of a console line: ``component  event  key=value ...`` (rich adds time and level)."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or record.getMessage()
        component = record.name.removeprefix(LOGGER_NAME + ".") if record.name != LOGGER_NAME else "anomaly"
        fields = " ".join(
            f"{k}={_text(_safe(k, v))}" for k, v in (getattr(record, "fields", None) or {}).items() if v is not None
        )
        line = f"{component:<9} {event}" + (f"  {fields}" if fields else "")
        if record.exc_info and record.exc_info[0] is not None:
            line += f"  ({record.exc_info[0].__name__}: {redact_text(str(record.exc_info[1]))})"
        return line


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_default, ensure_ascii=False)
    return str(value)


class _ConsoleHandler:
    """Build rich's :class:`~rich.logging.RichHandler` on the shared stderr console (lazy: rich is
    only imported here)."""

    @staticmethod
    def make(console: Console | None) -> logging.Handler:
        from rich.logging import RichHandler
        from rich.text import Text

        class Handler(RichHandler):
            def render_message(self, record: logging.LogRecord, message: str) -> Text:
                style = {logging.WARNING: "yellow", logging.ERROR: "bold red"}.get(record.levelno, "")
                if record.levelno >= logging.ERROR:
                    style = "bold red"
                return Text(message, style=style)

            def filter(self, record: logging.LogRecord) -> bool:
                if getattr(record, "event", None) in CONSOLE_DEBUG_ONLY:
                    return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG)
                return super().filter(record)

        handler = Handler(
            console=console, show_path=False, markup=False, rich_tracebacks=False, log_time_format="%H:%M:%S"
        )
        handler.setFormatter(ConsoleFormatter())
        return handler


def resolve_format(fmt: str, stream: TextIO) -> str:
    """``json`` or ``console``: ``auto`` is console on a terminal, JSON anywhere else."""
    fmt = (fmt or "auto").lower()
    if fmt == "auto":
        try:
            return "console" if stream.isatty() else "json"
        except (AttributeError, ValueError):
            return "json"
    return fmt


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, *, fmt: str = "json", console: Console | None = None
) -> str:
    """Send the ``anomaly`` loggers (and Python warnings) to ``stream`` (stderr) at ``level``.

    ``fmt`` is ``json``, ``console`` or ``auto`` (see the module docstring); ``console`` is the
    rich console the progress displays use (console format only). Returns the format chosen.
    """
    stream = stream or sys.stderr
    chosen = resolve_format(fmt, stream)
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    if chosen == "console":
        if console is None:
            from rich.console import Console

            console = Console(file=stream)
        handler: logging.Handler = _ConsoleHandler.make(console)
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    _route_warnings()
    return chosen


_warnings_log: EventLogger | None = None


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """``warnings.showwarning`` replacement: a warning is an event like any other (JSON or console)."""
    assert _warnings_log is not None
    _warnings_log.warning(
        "python_warning", category=category.__name__, message=str(message)[:500], source=f"{filename}:{lineno}"
    )


def _route_warnings() -> None:
    """Python warnings (mongomock-ng, botocore, numpy ...) go through the event logger, not bare text on stderr.

    The multiprocessing resource tracker is a separate interpreter that prints its own warning
    when a forced stop (second Ctrl-C) left semaphores behind; it still removes them, so its
    notice is silenced through ``sys.warnoptions``, which the tracker inherits as ``-W``.
    """
    global _warnings_log
    _warnings_log = EventLogger("python")
    warnings.showwarning = _show_warning
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)


class EventLogger:
    """A thin wrapper: ``log.info("watermark_advanced", test_date=..., ...)``."""

    def __init__(self, component: str):
        self._logger = logging.getLogger(f"{LOGGER_NAME}.{component}")

    def _emit(self, level: int, event: str, exc_info: Any = None, **fields: Any) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"event": event, "fields": fields}, exc_info=exc_info)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, **fields)

    def error(self, event: str, exc_info: Any = None, **fields: Any) -> None:
        self._emit(logging.ERROR, event, exc_info=exc_info, **fields)


def get_logger(component: str) -> EventLogger:
    """The event logger of a component (``discovery``, ``worker``, ``fetch`` ...)."""
    return EventLogger(component)
