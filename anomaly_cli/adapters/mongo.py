"""MongoDB adapter: the client factory and the translation of pymongo errors.

``MONGO_URI=mongomock://`` (optionally ``mongomock://name``) selects the embedded in-process
MongoDB double (mongomock-ng, installed with the ``demo`` / ``dev`` extras). It is a backend
choice like any other URI: one shared in-process server per name, so every client a process
makes sees the same data. Nothing else in the code knows which backend it talks to.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from anomaly_cli.config import Settings, redact_uri
from anomaly_cli.errors import ConfigError, MongoUnavailable, MongoWriteFailed

EMBEDDED_SCHEME = "mongomock://"
_embedded: dict[str, Any] = {}
_embedded_lock = threading.Lock()


def connect(uri: str, *, timeout_ms: int = 10000, app_name: str = "anomaly") -> Any:
    """A ``MongoClient`` for ``uri`` (or the embedded double for ``mongomock://``)."""
    if uri.startswith(EMBEDDED_SCHEME):
        name = uri[len(EMBEDDED_SCHEME) :].strip("/") or "default"
        with _embedded_lock:
            if name not in _embedded:
                try:
                    import mongomock_ng
                except ImportError as e:  # pragma: no cover - depends on the install
                    raise ConfigError(
                        "MONGO_URI=mongomock:// needs the embedded Mongo double: pip install 'anomaly-cli[demo]'",
                        field="MONGO_URI",
                    ) from e
                _embedded[name] = mongomock_ng.MongoClient(tz_aware=True)
            return _embedded[name]
    import pymongo
    from pymongo.errors import ConfigurationError, InvalidURI

    try:
        return pymongo.MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 3, 30000),
            appname=app_name,
            tz_aware=True,
            retryWrites=True,
        )
    except (ConfigurationError, InvalidURI, ValueError) as e:
        raise ConfigError(f"MONGO_URI is invalid ({redact_uri(uri)}): {e}", field="MONGO_URI") from e


def database(settings: Settings, client: Any | None = None) -> Any:
    """The configured database (``MONGO_DB_NAME``) on ``client`` or a new client."""
    client = client if client is not None else connect(settings.mongo_uri, timeout_ms=settings.mongo_timeout_ms)
    return client[settings.mongo_db_name]


def read_preference(name: str) -> Any:
    """A pymongo read preference from its name (``secondaryPreferred`` ...)."""
    from pymongo import read_preferences

    return {
        "primary": read_preferences.Primary(),
        "primaryPreferred": read_preferences.PrimaryPreferred(),
        "secondary": read_preferences.Secondary(),
        "secondaryPreferred": read_preferences.SecondaryPreferred(),
        "nearest": read_preferences.Nearest(),
    }[name]


@contextlib.contextmanager
def mongo_errors(what: str) -> Iterator[None]:
    """Translate pymongo exceptions raised inside the block into the project's error tree.

    Network trouble, elections and timeouts become :class:`MongoUnavailable` (transient);
    other operation failures become :class:`MongoWriteFailed` (permanent).
    """
    from pymongo import errors as pe

    try:
        yield
    except (
        pe.AutoReconnect,
        pe.ServerSelectionTimeoutError,
        pe.NetworkTimeout,
        pe.ExecutionTimeout,
        pe.WTimeoutError,
        pe.ConnectionFailure,
    ) as e:
        raise MongoUnavailable(f"MongoDB unavailable during {what}: {type(e).__name__}") from e
    except pe.BulkWriteError as e:
        raise
    except pe.OperationFailure as e:
        if e.has_error_label("RetryableWriteError") or e.has_error_label("TransientTransactionError"):
            raise MongoUnavailable(f"MongoDB transient failure during {what}: {e.code}") from e
        raise MongoWriteFailed(f"MongoDB refused {what}: {e.code} {str(e)[:200]}") from e


def ping(db: Any) -> None:
    """Round-trip to the server; raises :class:`MongoUnavailable`."""
    with mongo_errors("ping"):
        db.command("ping")
