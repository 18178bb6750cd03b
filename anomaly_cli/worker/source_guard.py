"""Guards against the source-gone drain: a worker pointed at the wrong source acks everything.

A worker decides ``source_gone`` when the row behind a message is no longer in the source
collection, and acks the message (the row was deleted or its recording replaced: nothing to
screen). Pointed at the wrong database (a typo in ``MONGO_DB_NAME``, an empty ``mongomock://``
store in another process), *every* row is "gone": the queue is emptied and nothing is screened.
Two guards:

- :func:`ensure_source` at start: the source collection must exist and hold a document, else
  the worker refuses to start with a :class:`~anomaly_cli.errors.ConfigError` naming the
  database and collection. A worker meant for ``push-urls`` (adhoc) items only, whose source may
  well be empty, says so with ``WORKER_ADHOC_ONLY=true``.
- :class:`SourceGoneBreaker` while running: when ``SOURCE_GONE_THRESHOLD`` (default 0.95) of the
  last ``SOURCE_GONE_WINDOW`` (default 200) sourced deliveries were ``source_gone``, the worker
  stops (exit code ``RET_SOURCE_GONE``) and releases what it holds; the delivery that trips it and
  every later one are released, not acked.

Why those defaults never trigger on a healthy fleet: ``source_gone`` needs a row deleted or its
``audio_url`` changed in the minutes between discovery and the worker, well under 1 % of
deliveries in practice, and deliveries of one school are interleaved with every other school's.
190 of 200 consecutive sourced deliveries gone is not a deletion pattern, it is a wrong source (or
a bulk delete an operator should look at before the queue is emptied). The acks spent before the
breaker trips (at most ``threshold x window``) lose nothing for good: their rows have no result,
so the next ``discover --mode backfill`` of that date sends them again.
"""

from __future__ import annotations

import threading
from collections import deque

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import Database
from anomaly_cli.errors import ConfigError


def ensure_source(db: Database, *, database: str, collection: str, adhoc_only: bool) -> None:
    """Refuse to start on a missing or empty source collection (unless ``adhoc_only``)."""
    if adhoc_only:
        return
    coll = db[collection]
    with mongo_errors("source collection check"):
        any_doc = coll.find_one({}, {"_id": 1})
    if any_doc is not None:
        return
    state = "holds no documents"
    try:  # listCollections may not be granted to the worker's role: the message is then less precise
        with mongo_errors("source collection check"):
            if collection not in db.list_collection_names():
                state = "does not exist"
    except Exception:  # noqa: BLE001 - best effort wording only
        state = "does not exist or holds no documents"
    raise ConfigError(
        f"source collection {database}.{collection} {state}: every message would be acked as source_gone",
        field="MONGO_SOURCE_COLLECTION",
        hint=(
            f"check MONGO_DB_NAME ({database}) and MONGO_SOURCE_COLLECTION ({collection}); a worker that "
            "screens push-urls items only sets WORKER_ADHOC_ONLY=true"
        ),
    )


class SourceGoneBreaker:
    """A sliding window over sourced deliveries; trips when ``threshold`` of a full window is gone."""

    def __init__(self, window: int, threshold: float):
        self.window = window
        self.threshold = threshold
        self.limit = max(1, int(round(window * threshold)))
        self._seen: deque[bool] = deque(maxlen=window)
        self._gone = 0
        self._lock = threading.Lock()
        self.tripped = False

    def observe(self, gone: bool) -> bool:
        """Record one sourced delivery; True when this one must be released instead of acked."""
        with self._lock:
            if self.tripped:
                return gone
            if len(self._seen) == self.window and self._seen[0]:
                self._gone -= 1
            self._seen.append(gone)
            self._gone += gone
            if gone and self._gone >= self.limit:
                self.tripped = True
                return True
            return False

    @property
    def gone_in_window(self) -> int:
        return self._gone
