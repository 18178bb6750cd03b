"""The enqueue log: when discovery last sent each row (``MONGO_ENQUEUE_LOG_COLLECTION``).

One document per result id, ``{_id: result_id, enqueued_at, test_date, mongo_doc_id, subject_id}``,
written for every row sent in any mode and expired by a TTL index after 7 days. Sweep reads it to
skip rows enqueued recently (still in the queue or being screened); ``coverage`` reads it to say a
missing result is *enqueued*. The log is a hint, never the truth: a lost mark only means a row may
be sent once more, which the result ``_id`` and FIFO deduplication make harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from anomaly_cli.adapters.mongo import insert_many_new, mongo_errors
from anomaly_cli.adapters.protocols import Collection
from anomaly_cli.contract import SubjectRow

#: How long a mark lives (the TTL index): longer than any row stays in the queue.
TTL_SECONDS = 7 * 24 * 3600
#: Result ids per ``$in`` query when reading marks.
READ_CHUNK = 500


class EnqueueLog:
    """Reads and writes the enqueue log collection."""

    def __init__(self, collection: Collection):
        self.collection = collection

    def ensure_indexes(self) -> None:
        """The TTL index on ``enqueued_at`` (idempotent)."""
        with mongo_errors("enqueue log index"):
            self.collection.create_index("enqueued_at", expireAfterSeconds=TTL_SECONDS, name="enqueued_at_ttl")

    def record(self, test_date: str, rows: Sequence[tuple[str, SubjectRow]], now: dt.datetime) -> None:
        """Record that ``rows`` (``(result_id, row)``) were sent at ``now``.

        One unordered insert per page; only the rows that had a mark already (sent before: a
        sweep, a re-run) get it moved to ``now`` with one ``update_many``. The first send of a row
        is the common case, so a page costs one write, not a delete and an insert: the delete's
        ``$in`` was 60 % of a 10^4-row backfill on the embedded double (which scans a collection
        for it) and a round trip per page on MongoDB. A crash between the two writes only leaves
        an older mark (a sweep may send that row once more).
        """
        if not rows:
            return
        docs = [
            {
                "_id": rid,
                "enqueued_at": now,
                "test_date": test_date,
                "mongo_doc_id": r.mongo_doc_id,
                "subject_id": r.subject_id,
            }
            for rid, r in rows
        ]
        existed = insert_many_new(self.collection, docs, what="enqueue log write")
        if existed:
            with mongo_errors("enqueue log write"):
                self.collection.update_many({"_id": {"$in": list(existed)}}, {"$set": {"enqueued_at": now}})

    def logged(self, result_ids: Sequence[str], *, since: dt.datetime | None = None) -> set[str]:
        """The ids among ``result_ids`` with a mark (enqueued at or after ``since`` when given)."""
        ids = list(result_ids)
        found: set[str] = set()
        with mongo_errors("enqueue log read"):
            for i in range(0, len(ids), READ_CHUNK):
                query: dict[str, Any] = {"_id": {"$in": ids[i : i + READ_CHUNK]}}
                if since is not None:
                    query["enqueued_at"] = {"$gte": since}
                found |= {d["_id"] for d in self.collection.find(query, {"_id": 1})}
        return found
