"""Named exit codes, the only place they are defined (the README's table mirrors this)."""

RET_OK = 0  #: everything asked for was done
RET_ERROR = 1  #: an unexpected or unclassified failure
RET_USAGE = 2  #: bad command-line usage (Click's own code)
RET_CONFIG = 3  #: a setting is missing or invalid (the message names it)
RET_CONNECTION = 4  #: MongoDB / SQS / S3 could not be reached or refused access
RET_PARTIAL = 5  #: the run finished but some items failed (e.g. rows not enqueued); rerun is safe
RET_CREDENTIALS = 6  #: the worker stopped on a run of access-denied answers (credentials / policy)
RET_UNHEALTHY = 7  #: ``doctor`` found a problem
RET_SOURCE_GONE = 8  #: the worker stopped: its deliveries were overwhelmingly source_gone (wrong source?)
RET_INTERRUPTED = 130  #: stopped by a second SIGINT / SIGTERM (or Ctrl-C outside a clean drain)

ALL = {
    "ok": RET_OK,
    "error": RET_ERROR,
    "usage": RET_USAGE,
    "config": RET_CONFIG,
    "connection": RET_CONNECTION,
    "partial": RET_PARTIAL,
    "credentials": RET_CREDENTIALS,
    "unhealthy": RET_UNHEALTHY,
    "source_gone": RET_SOURCE_GONE,
    "interrupted": RET_INTERRUPTED,
}


def for_exception(exc: BaseException) -> int:
    """The exit code a command ends with when ``exc`` escapes it: decided by the error's type, here only.

    A missing or unreadable model is a configuration problem (``MODEL_DIR`` / ``MODEL_VERSION``), for
    ``work`` as for ``score``; an SQS configuration problem is a :class:`ConfigError` raised by the
    adapter; any other :class:`QueueError` means the queue is gone or refuses access.
    """
    from anomaly_cli.errors import (
        ConfigError,
        ConnectionFailed,
        CredentialsProblem,
        ModelError,
        QueueError,
        SourceGoneDrain,
    )

    if isinstance(exc, KeyboardInterrupt):
        return RET_INTERRUPTED
    if isinstance(exc, (ConfigError, ModelError)):
        return RET_CONFIG
    if isinstance(exc, CredentialsProblem):
        return RET_CREDENTIALS
    if isinstance(exc, SourceGoneDrain):
        return RET_SOURCE_GONE
    if isinstance(exc, (ConnectionFailed, QueueError)):  # QueueUnavailable is a QueueError
        return RET_CONNECTION
    return RET_ERROR
