"""MongoDB adapter: the client factory and the translation of pymongo errors.

``MONGO_URI=mongomock://`` (optionally ``mongomock://name``) selects the embedded in-process
MongoDB double (mongomock-ng, installed with the ``demo`` / ``dev`` extras). It is a backend
choice like any other URI: one shared in-process server per name, so every client a process
makes sees the same data. Nothing else in the code knows which backend it talks to.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from anomaly_cli.adapters.protocols import Collection, Database, MongoClient
from anomaly_cli.config import Settings
from anomaly_cli.errors import ConfigError, CursorLost, MongoUnavailable, MongoWriteFailed
from anomaly_cli.redact import redact_text, redact_uri

EMBEDDED_SCHEME = "mongomock://"
#: ``return_document`` of ``find_one_and_update`` for the document after the update
#: (pymongo's ``ReturnDocument.AFTER`` is this boolean).
RETURN_AFTER = True
#: MongoDB's duplicate key error (E11000):
#: https://www.mongodb.com/docs/manual/reference/error-codes/
DUPLICATE_KEY = 11000

# Server error codes that end a cursor while its data stays readable (a new cursor reads on):
# CursorNotFound (idle past cursorTimeoutMillis, or its session expired), CursorKilled,
# QueryPlanKilled, Interrupted / InterruptedAtShutdown / InterruptedDueToReplStateChange,
# ShutdownInProgress, PrimarySteppedDown, NotWritablePrimary, NotPrimaryNoSecondaryOk,
# NotPrimaryOrSecondary, HostUnreachable / HostNotFound, NetworkTimeout, SocketException.
# From MongoDB's error_codes.yml.
CURSOR_LOST_CODES = frozenset({43, 237, 175, 11601, 11600, 11602, 91, 189, 10107, 13435, 13436, 6, 7, 89, 9001})

VALID_SCHEMES = ("mongodb", "mongodb+srv", "mongomock")
_embedded: dict[str, MongoClient] = {}
_embedded_lock = threading.Lock()
_held: set[str] = set()  # embedded servers a long-lived process (the sandbox) keeps for its commands
#: What to tell someone whose data "vanished" between two commands on the embedded double.
EMBEDDED_ALONE_HINT = (
    "MONGO_URI=mongomock:// is an in-process double: it starts empty in every command and vanishes when "
    "the command ends, so nothing an earlier command wrote is here. Run the commands one after another "
    "inside `anomaly sandbox`, or point MONGO_URI at a real MongoDB (e.g. `docker run -p 27017:27017 mongo:8` "
    "and MONGO_URI=mongodb://localhost:27017)."
)


def _embedded_name(uri: str) -> str:
    return uri[len(EMBEDDED_SCHEME) :].strip("/") or "default"


def hold_embedded(uri: str) -> None:
    """Mark the embedded server of ``uri`` as kept alive for several commands (the sandbox)."""
    _held.add(_embedded_name(uri))


def embedded_alone(uri: str) -> bool:
    """True when ``uri`` is the embedded double and no sandbox keeps it: it holds only this command's data."""
    return uri.startswith(EMBEDDED_SCHEME) and _embedded_name(uri) not in _held


def connect(uri: str, *, timeout_ms: int = 10000, app_name: str = "anomaly") -> MongoClient:
    """A ``MongoClient`` for ``uri`` (or the embedded double for ``mongomock://``)."""
    if uri.startswith(EMBEDDED_SCHEME):
        import warnings

        # the double says server-side options (allowDiskUse, batchSize) are no-ops: true, and no news
        warnings.filterwarnings("ignore", message=".*no-op in mongomock", category=UserWarning)
        name = _embedded_name(uri)
        with _embedded_lock:
            if name not in _embedded:
                try:
                    import mongomock_ng
                except ImportError as e:  # pragma: no cover - depends on the install
                    from anomaly_cli.extras import DEMO_HINT

                    raise ConfigError(
                        "MONGO_URI=mongomock:// needs the embedded Mongo double (mongomock-ng, the 'demo' extra)",
                        field="MONGO_URI",
                        hint=DEMO_HINT,
                    ) from e
                from anomaly_cli.adapters.embedded import speed_up_double

                speed_up_double()
                _embedded[name] = mongomock_ng.MongoClient(tz_aware=True)
            return _embedded[name]
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme.lower() not in VALID_SCHEMES:
        raise ConfigError(
            f"MONGO_URI {redact_uri(uri)!r} does not start with a MongoDB scheme; valid: "
            + ", ".join(f"{s}://" for s in VALID_SCHEMES)
            + " (mongomock:// is the embedded in-process double)",
            field="MONGO_URI",
        )
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
        raise ConfigError(f"MONGO_URI is invalid ({redact_uri(uri)}): {redact_text(str(e))}", field="MONGO_URI") from e
    except OSError as e:  # pymongo opens tlsCertificateKeyFile / tlsCAFile while it builds the client
        raise ConfigError(
            f"MONGO_URI names a file that cannot be read ({redact_uri(uri)}): {e.strerror or e}",
            field="MONGO_URI",
            hint="check the tlsCertificateKeyFile / tlsCAFile paths in MONGO_URI and that this user may read them",
        ) from e


def database(settings: Settings, client: MongoClient | None = None) -> Database:
    """The configured database (``MONGO_DB_NAME``) on ``client`` or a new client."""
    client = client if client is not None else connect(settings.mongo_uri, timeout_ms=settings.mongo_timeout_ms)
    return client[settings.mongo_db_name]


#: How long an operator command lets pymongo's first check of the hosts run before it decides
#: (docs/configuration.md, "An unreachable MongoDB"); never longer than MONGO_TIMEOUT_MS.
FIRST_CONTACT_SECONDS = 1.0


def first_contact_failures(client: Any, *, within: float = FIRST_CONTACT_SECONDS) -> list[str]:
    """``["host:port: cause", ...]`` when pymongo's first check of every host failed within ``within``
    seconds (connection refused, a name that does not resolve, a TLS or protocol failure); empty
    when a server answered, or when a host has not answered yet (a slow link, a server starting:
    server selection waits MONGO_TIMEOUT_MS for it). Nothing is sent: it reads the topology
    pymongo's monitors build from the moment the client exists, so the hosts are pymongo's own
    (a replica set's seed list, the hosts an SRV record named when the client was built; a load
    balancer has no monitor and is never judged here).
    """
    import time

    from pymongo.server_type import SERVER_TYPE

    deadline = time.monotonic() + within
    while True:
        servers = client.topology_description.server_descriptions()
        if any(sd.server_type != SERVER_TYPE.Unknown for sd in servers.values()):
            return []
        if servers and all(sd.error is not None for sd in servers.values()):
            return [_host_cause(f"{host}:{port}", sd.error) for (host, port), sd in sorted(servers.items())]
        if time.monotonic() >= deadline:
            return []
        time.sleep(0.02)


def _host_cause(address: str, error: Exception) -> str:
    text = redact_text(str(error).split(" (configured timeouts", 1)[0].strip()) or type(error).__name__
    return text if text.startswith(address) else f"{address}: {text}"


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
        raise MongoUnavailable(f"MongoDB unavailable during {what}: {_cause(e)}") from e
    except pe.BulkWriteError:
        raise  # the callers read its per-operation errors (unordered_write)
    except pe.OperationFailure as e:
        if e.code in CURSOR_LOST_CODES:
            raise CursorLost(f"MongoDB ended the cursor during {what}: {e.code} {type(e).__name__}") from e
        if e.has_error_label("RetryableWriteError") or e.has_error_label("TransientTransactionError"):
            raise MongoUnavailable(f"MongoDB transient failure during {what}: {e.code}") from e
        raise MongoWriteFailed(f"MongoDB refused {what}: {e.code} {str(e)[:200]}") from e


@contextlib.contextmanager
def duplicate_key_as(exc: type[Exception]) -> Iterator[None]:
    """Raise ``exc`` (chained to pymongo's error) when a write in the block hits an existing
    document's unique key (E11000), for callers that expect it: an upsert that lost a race."""
    from pymongo.errors import DuplicateKeyError

    try:
        yield
    except DuplicateKeyError as e:
        raise exc() from e


def unordered_write(write: Callable[[], object], *, what: str) -> set[int]:
    """Run one unordered bulk write (``bulk_write`` / ``insert_many`` with ``ordered=False``) and
    return the indexes of its operations refused as duplicate keys: another writer got there first,
    which the callers treat as an answer, not an error. Every other operation was applied.

    Any other refused operation raises :class:`MongoWriteFailed`; network trouble
    :class:`MongoUnavailable` (as :func:`mongo_errors`).
    """
    from pymongo.errors import BulkWriteError

    try:
        with mongo_errors(what):
            write()
    except BulkWriteError as e:
        refused = e.details.get("writeErrors", [])
        other = [err for err in refused if err.get("code") != DUPLICATE_KEY]
        if other:
            raise MongoWriteFailed(f"MongoDB refused {what}: {str(other[0].get('errmsg', ''))[:200]}") from e
        return {int(err["index"]) for err in refused}
    return set()


def insert_many_new(collection: Collection, docs: Sequence[dict[str, Any]], *, what: str) -> set[Any]:
    """Insert ``docs`` unordered, keeping the stored document where an ``_id`` exists already;
    returns the ``_id`` values that existed (see :func:`unordered_write`)."""
    docs = list(docs)
    taken = unordered_write(lambda: collection.insert_many(docs, ordered=False), what=what)
    return {docs[i]["_id"] for i in taken}


def upsert_absent(collection: Collection, docs: Sequence[Mapping[str, Any]], *, what: str) -> set[str]:
    """One unordered bulk write of ``UpdateOne({_id}, {$setOnInsert: doc}, upsert=True)`` per document:
    the stored document of an existing ``_id`` is never touched. Returns the ids (as text) inserted
    now. Any refused operation raises :class:`MongoWriteFailed` ("<what> refused: ..."), network
    trouble :class:`MongoUnavailable`."""
    from pymongo import UpdateOne
    from pymongo.errors import BulkWriteError

    ops = [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": dict(d)}, upsert=True) for d in docs]
    try:
        with mongo_errors(what):
            res = collection.bulk_write(ops, ordered=False)
    except BulkWriteError as e:
        raise MongoWriteFailed(f"{what} refused: {str(e.details.get('writeErrors', ''))[:300]}") from e
    return {str(v) for v in (res.upserted_ids or {}).values()}


def upsert_where(
    collection: Collection, ops: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], *, what: str
) -> set[int]:
    """One unordered bulk write of ``UpdateOne(filter, update, upsert=True)`` per ``(filter, update)``;
    returns the indexes refused as duplicate keys (a filter that did not match an existing ``_id``:
    the conditional upsert lost to the stored document), see :func:`unordered_write`."""
    from pymongo import UpdateOne

    requests = [UpdateOne(dict(f), dict(u), upsert=True) for f, u in ops]
    return unordered_write(lambda: collection.bulk_write(requests, ordered=False), what=what)


def replace_each(collection: Collection, docs: Sequence[Mapping[str, Any]], *, what: str) -> None:
    """One unordered bulk write of ``ReplaceOne({_id}, doc, upsert=True)`` per document."""
    from pymongo import ReplaceOne

    with mongo_errors(what):
        collection.bulk_write([ReplaceOne({"_id": d["_id"]}, dict(d), upsert=True) for d in docs], ordered=False)


def _cause(e: Exception) -> str:
    """The host and the cause pymongo reports (``localhost:27017: [Errno 111] Connection refused``),
    without its topology dump; credentials never appear in it (pymongo prints host:port only)."""
    from anomaly_cli.redact import redact_text

    text = str(e).split(", Timeout:", 1)[0].split(" (configured timeouts", 1)[0].strip()
    return f"{type(e).__name__}: {redact_text(text)[:300]}" if text else type(e).__name__


def ping(db: Database) -> None:
    """Round-trip to the server; raises :class:`MongoUnavailable`."""
    with mongo_errors("ping"):
        db.command("ping")
