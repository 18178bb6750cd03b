"""Short claims on result ids, so a message delivered twice *at the same time* (two workers, or
two batches of one worker) is screened once.

SQS delivers at least once; insert-if-absent already makes the *result* effectively-once, but
without a claim both deliveries would download and screen. A claim is a tiny document
``{_id: result_id, worker_id, expires_at}`` in ``<result collection>_claims``, taken for all
eligible items of a batch in ONE bulk write (an upsert whose filter only matches an expired
claim or our own: a live claim of another worker makes the upsert hit the unique ``_id`` and
fail for that entry alone; our own live claim counts too, so two batches of one
worker compete the same way). The loser defers its message (short visibility) and, when it comes
back, finds the result. Claims expire after the visibility timeout (TTL index), so a crashed
worker's claims never block anyone for long.
"""

from __future__ import annotations

import datetime as dt
from typing import Sequence

from anomaly_cli.adapters.mongo import mongo_errors, upsert_where
from anomaly_cli.adapters.protocols import Collection


def claims_collection_name(result_collection: str) -> str:
    """The claims collection next to the results collection."""
    return f"{result_collection}_claims"


class Claims:
    """Take and drop claims for one worker."""

    def __init__(self, collection: Collection, worker_id: str, ttl_seconds: float):
        self.collection = collection
        self.worker_id = worker_id
        self.ttl = dt.timedelta(seconds=max(30.0, ttl_seconds))

    def ensure_indexes(self) -> None:
        with mongo_errors("claims index"):
            self.collection.create_index("expires_at", expireAfterSeconds=0)

    def claim(self, result_ids: Sequence[str]) -> set[str]:
        """Claim ``result_ids``; returns those this worker now holds (others hold the rest)."""
        ids = list(dict.fromkeys(result_ids))
        if not ids:
            return set()
        now = dt.datetime.now(dt.timezone.utc)
        # only an expired claim can be taken over, also our own: two batches of this worker compete too
        ops = [
            (
                {"_id": rid, "expires_at": {"$lt": now}},
                {"$set": {"worker_id": self.worker_id, "expires_at": now + self.ttl, "claimed_at": now}},
            )
            for rid in ids
        ]
        # a duplicate key is a live claim held elsewhere: the filter did not match, the upsert collided
        taken = upsert_where(self.collection, ops, what="claim results")
        return set(ids) - {ids[i] for i in taken}

    def release(self, result_ids: Sequence[str]) -> None:
        """Drop our claims (best effort: they expire anyway)."""
        if result_ids:
            with mongo_errors("release claims"):
                self.collection.delete_many({"_id": {"$in": list(result_ids)}, "worker_id": self.worker_id})
