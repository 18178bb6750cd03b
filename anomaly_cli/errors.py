"""The one error tree of the project.

Adapters translate ``botocore`` / ``pymongo`` / decoder exceptions into these classes with
``raise ... from e``. Whether a failure is *transient* (leave the SQS message unacked, retry
later) or *permanent* (write a terminal result and ack) is a property of the class, decided
here and nowhere else: see :func:`is_transient`.

Every class carries a stable machine ``code`` that ends up in result documents
(``processing.error.code``), JSON output and logs.
"""

from __future__ import annotations


class AnomalyError(Exception):
    """Raised for any failure the project knows how to name; the root of the tree."""

    code: str = "error"
    transient: bool = False

    def __init__(self, message: str = "", *, code: str | None = None, hint: str | None = None):
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code
        self.hint = hint

    @property
    def message(self) -> str:
        return str(self)


# --- configuration -------------------------------------------------------------------------
class ConfigError(AnomalyError):
    """Raised when a setting is missing or invalid; the message names the variable."""

    code = "config_invalid"

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.field = field


# --- infrastructure ------------------------------------------------------------------------
class ConnectionFailed(AnomalyError):
    """Raised when a backing service (MongoDB, SQS, S3) cannot be reached or timed out."""

    code = "connection_failed"
    transient = True


class MongoUnavailable(ConnectionFailed):
    """Raised when MongoDB is unreachable, failing over, or timed out (AutoReconnect & co)."""

    code = "mongo_unavailable"


class CursorLost(MongoUnavailable):
    """Raised when the server ended an open cursor (killed when idle, its session expired, the
    member it read from stepped down or shut down): the data is still there, a new cursor reads it."""

    code = "mongo_cursor_lost"


class MongoWriteFailed(AnomalyError):
    """Raised when MongoDB refused a write for a reason retrying will not fix."""

    code = "mongo_write_failed"


class QueueError(AnomalyError):
    """Raised when an SQS call fails for a reason retrying will not fix (no queue, no access)."""

    code = "queue_error"


class QueueUnavailable(QueueError):
    """Raised when SQS throttles, answers 5xx or cannot be reached: retry with backoff."""

    code = "queue_unavailable"
    transient = True


class LeaseHeld(AnomalyError):
    """Raised when another discovery run holds the live lease of the same test date."""

    code = "lease_held"


# --- the contract --------------------------------------------------------------------------
class ContractError(AnomalyError):
    """Raised when an SQS body or an input row does not follow the 13-field message contract."""

    code = "malformed_message"


# --- fetching audio ------------------------------------------------------------------------
class FetchError(AnomalyError):
    """Raised when a recording could not be fetched (permanent unless a subclass says so)."""

    code = "fetch_failed"


class FetchTransient(FetchError):
    """Raised for timeouts, connection resets, throttling and 5xx while fetching: retry later."""

    code = "fetch_transient"
    transient = True


class NotFound(FetchError):
    """Raised when the recording does not exist (HTTP 404, S3 NoSuchKey / NoSuchBucket)."""

    code = "not_found"


class AccessDenied(FetchError):
    """Raised when the store refused access (HTTP 401/403, S3 AccessDenied)."""

    code = "access_denied"


class UrlNotAllowed(FetchError):
    """Raised before any request when a URL (or a redirect) is outside the allowlist or unsafe."""

    code = "url_not_allowed"


class InvalidUrl(FetchError):
    """Raised when an audio URL cannot be parsed into something fetchable."""

    code = "invalid_url"


class TooLarge(FetchError):
    """Raised while streaming when a recording exceeds the byte cap."""

    code = "too_large"


# --- decoding and the model ----------------------------------------------------------------
class DecodeError(AnomalyError):
    """Raised when bytes cannot be decoded to audio (empty, not audio, corrupt stream)."""

    code = "undecodable"


class ModelError(AnomalyError):
    """Raised when a model artifact is missing, unreadable or does not match the code."""

    code = "model_error"


class ScreeningProcessLost(AnomalyError):
    """Raised for the items of a screening process that died (OOM kill, native crash); retried later."""

    code = "screening_process_lost"
    transient = True


class SourceGoneDrain(AnomalyError):
    """Raised when a worker's deliveries are overwhelmingly ``source_gone``: the source looks wrong."""

    code = "source_gone_drain"


class ExportFailed(AnomalyError):
    """Raised when an output file could not be written (a full disk, a read-only or missing folder)."""

    code = "export_failed"


class CredentialsProblem(AnomalyError):
    """Raised when a run of access-denied answers points at credentials or policy, not data."""

    code = "credentials_problem"


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed (the message must stay unacked)."""
    if isinstance(exc, AnomalyError):
        return exc.transient
    # Unknown exceptions are treated as transient: an unexplained failure must never be turned
    # into a permanent answer about a child's recording. Redrive caps the retries.
    return True


def error_code(exc: BaseException) -> str:
    """The stable code of an exception (``internal_error`` for anything outside the tree)."""
    return exc.code if isinstance(exc, AnomalyError) else "internal_error"
