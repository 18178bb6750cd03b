"""Structured JSON event logging on stderr.

One JSON object per line: ``{"ts", "level", "event", "component", ...fields}``. ``event`` uses
the spec's names (``discovery_page_fetched``, ``results_upserted`` ...). Values that look like
audio URLs lose their query string (presigned signatures) and any credentials in free text are
masked, so a log line is always safe to paste into a ticket.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from anomaly_cli.config import redact_text, redact_url

LOGGER_NAME = "anomaly"
_URL_KEYS = {"audio_url", "audio_s3_url", "url", "input"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; ``record.fields`` holds the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
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


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send the ``anomaly`` loggers to ``stream`` (stderr) as JSON lines at ``level``."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


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
