"""The discovery state repository: one document per (source collection, test date).

``_id`` is ``audio_anomaly:enqueue:<source_collection>:<test_date>`` (the spec's literal
prefix); the fields are the spec's (``_id, pipeline_name, stage, source_collection, test_date,
mode, status, watermark, stats, last_run, created_at, updated_at``) plus ``lease``.

Two runs on one test date must not both advance the watermark. A run holds a *lease*
(``lease.holder``, ``lease.expires_at``) taken and renewed by ONE conditional
``find_one_and_update`` (free, expired, or already ours); a crashed run's lease simply expires.
The watermark only moves forward: its update is conditional on the stored key being smaller.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Mapping

from anomaly_cli.adapters.mongo import RETURN_AFTER, duplicate_key_as, mongo_errors
from anomaly_cli.adapters.protocols import Collection
from anomaly_cli.contract import utc
from anomaly_cli.errors import LeaseHeld

ID_PREFIX = "audio_anomaly:enqueue:"
STAGE = "enqueue"
STATUSES = ("running", "completed", "failed", "interrupted")
STAT_COUNTERS = ("pages", "discovered", "enqueued", "skipped_existing", "skipped_recent", "failed")
Clock = Callable[[], dt.datetime]

#: A watermark as stored: (timestamp, doc id, record type, subject id)
WatermarkKey = tuple[dt.datetime, str, str, str]


def state_id(source_collection: str, test_date: str) -> str:
    """The state document ``_id`` of a test date."""
    return f"{ID_PREFIX}{source_collection}:{test_date}"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def watermark_doc(key: WatermarkKey) -> dict[str, Any]:
    ts, doc_id, record_type, subject_id = key
    return {
        "last_processed_timestamp": ts,
        "last_processed_doc_id": doc_id,
        "last_processed_record_type": record_type,
        "last_processed_subject_id": subject_id,
    }


def watermark_key(doc: Mapping[str, Any] | None) -> WatermarkKey | None:
    """The stored watermark as a comparable key, or ``None`` when there is none."""
    wm = (doc or {}).get("watermark") or {}
    ts = wm.get("last_processed_timestamp")
    if not isinstance(ts, dt.datetime):
        return None
    return (
        utc(ts),
        str(wm.get("last_processed_doc_id") or ""),
        str(wm.get("last_processed_record_type") or ""),
        str(wm.get("last_processed_subject_id") or ""),
    )


def _behind(key: WatermarkKey) -> dict[str, Any]:
    """A filter true when the stored watermark is strictly before ``key`` (or absent)."""
    ts, doc_id, rt, sid = key
    p = "watermark.last_processed_"
    return {
        "$or": [
            {"watermark": None},  # a null sub-document: mongomock does not match {"watermark.x": None} then
            {f"{p}timestamp": None},
            {f"{p}timestamp": {"$lt": ts}},
            {f"{p}timestamp": ts, f"{p}doc_id": {"$lt": doc_id}},
            {f"{p}timestamp": ts, f"{p}doc_id": doc_id, f"{p}record_type": {"$lt": rt}},
            {f"{p}timestamp": ts, f"{p}doc_id": doc_id, f"{p}record_type": rt, f"{p}subject_id": {"$lt": sid}},
        ]
    }


class _Taken(Exception):
    """The upsert hit the existing document: its lease belongs to someone else and is live."""


#: What ``state reset`` shows and therefore what must be unchanged for its delete to happen.
RESET_GUARD_FIELDS = ("lease", "watermark", "status", "stats")


class StateRepository:
    """Reads and writes state documents in ``MONGO_STATE_COLLECTION``."""

    def __init__(
        self,
        collection: Collection,
        *,
        pipeline_name: str,
        source_collection: str,
        clock: Clock = now_utc,
        lease_seconds: float = 300.0,
    ):
        self.collection = collection
        self.pipeline_name = pipeline_name
        self.source_collection = source_collection
        self.clock = clock
        self.lease_seconds = lease_seconds

    def ensure_indexes(self) -> None:
        """The spec's unique index (idempotent; on the state collection, never on the source)."""
        with mongo_errors("state index creation"):
            self.collection.create_index(
                [("pipeline_name", 1), ("stage", 1), ("source_collection", 1), ("test_date", 1)],
                unique=True,
                name="pipeline_stage_source_test_date",
            )

    def id_for(self, test_date: str) -> str:
        return state_id(self.source_collection, test_date)

    # ----- reading -----
    def get(self, test_date: str) -> dict[str, Any] | None:
        with mongo_errors("state read"):
            return self.collection.find_one({"_id": self.id_for(test_date)})

    def list(self) -> list[dict[str, Any]]:
        """Every state document of this stage, newest test date first."""
        with mongo_errors("state list"):
            return list(self.collection.find({"stage": STAGE}).sort([("test_date", -1), ("source_collection", 1)]))

    def lease_live(self, doc: Mapping[str, Any] | None) -> bool:
        lease = (doc or {}).get("lease") or {}
        exp = lease.get("expires_at")
        return isinstance(exp, dt.datetime) and utc(exp) > self.clock()

    # ----- the lease -----
    def acquire(self, test_date: str, holder: str, *, mode: str) -> dict[str, Any]:
        """Take (or renew) the lease of ``test_date`` for ``holder``; creates the document.

        Raises :class:`LeaseHeld` when another holder's lease is still live.
        """
        now = self.clock()
        lease = {
            "holder": holder,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + dt.timedelta(seconds=self.lease_seconds),
        }
        filt = {
            "_id": self.id_for(test_date),
            "$or": [{"lease": None}, {"lease.expires_at": {"$lte": now}}, {"lease.holder": holder}],
        }
        update = {
            "$set": {"lease": lease, "updated_at": now},
            "$setOnInsert": {
                "pipeline_name": self.pipeline_name,
                "stage": STAGE,
                "source_collection": self.source_collection,
                "test_date": test_date,
                "mode": mode,
                "status": "running",
                "watermark": None,
                "stats": {c: 0 for c in STAT_COUNTERS} | {"skipped_invalid": {}},
                "last_run": None,
                "created_at": now,
            },
        }
        try:
            with mongo_errors("lease acquire"), duplicate_key_as(_Taken):
                doc = self.collection.find_one_and_update(filt, update, upsert=True, return_document=RETURN_AFTER)
            assert doc is not None  # an upsert answering the document after it is never empty
            return doc
        except _Taken as e:
            # the document exists but the filter did not match: someone else's live lease
            doc = self.get(test_date) or {}
            lease_doc = doc.get("lease") or {}
            raise LeaseHeld(
                f"test date {test_date} is being discovered by {lease_doc.get('holder')} "
                f"(lease until {lease_doc.get('expires_at')})",
                hint="wait for it to finish or for the lease to expire (DISCOVERY_LEASE_SECONDS)",
            ) from e

    def renew(self, test_date: str, holder: str) -> None:
        """Extend ``holder``'s lease; raises :class:`LeaseHeld` if it was lost meanwhile."""
        now = self.clock()
        with mongo_errors("lease renew"):
            res = self.collection.update_one(
                {"_id": self.id_for(test_date), "lease.holder": holder, "lease.expires_at": {"$gt": now}},
                {
                    "$set": {
                        "lease.renewed_at": now,
                        "lease.expires_at": now + dt.timedelta(seconds=self.lease_seconds),
                        "updated_at": now,
                    }
                },
            )
        if res.matched_count == 0:
            raise LeaseHeld(
                f"lost the lease of test date {test_date} (expired or taken over)",
                hint="raise DISCOVERY_LEASE_SECONDS if pages take longer than the lease",
            )

    def release(self, test_date: str, holder: str) -> None:
        with mongo_errors("lease release"):
            self.collection.update_one(
                {"_id": self.id_for(test_date), "lease.holder": holder},
                {"$set": {"lease": None, "updated_at": self.clock()}},
            )

    # ----- runs -----
    def start_run(self, test_date: str, holder: str, *, mode: str, run_id: str) -> dict[str, Any]:
        """Mark a run as started (status running, fresh ``last_run``); returns the document."""
        now = self.clock()
        with mongo_errors("state run start"):
            self.collection.update_one(
                {"_id": self.id_for(test_date), "lease.holder": holder},
                {
                    "$set": {
                        "mode": mode,
                        "status": "running",
                        "updated_at": now,
                        "last_run": {
                            "run_id": run_id,
                            "mode": mode,
                            "status": "running",
                            "started_at": now,
                            "finished_at": None,
                            "holder": holder,
                            "error": None,
                            "stats": {c: 0 for c in STAT_COUNTERS} | {"skipped_invalid": {}},
                        },
                    }
                },
            )
        return self.get(test_date) or {}

    def record_page(self, test_date: str, holder: str, counts: Mapping[str, int], invalid: Mapping[str, int]) -> None:
        """Add one page's counts to the cumulative ``stats`` and to ``last_run.stats``."""
        inc: dict[str, int] = {}
        for name, n in counts.items():
            if n:
                inc[f"stats.{name}"] = n
                inc[f"last_run.stats.{name}"] = n
        for reason, n in invalid.items():
            inc[f"stats.skipped_invalid.{reason}"] = n
            inc[f"last_run.stats.skipped_invalid.{reason}"] = n
        update: dict[str, Any] = {"$set": {"updated_at": self.clock()}}
        if inc:
            update["$inc"] = inc
        with mongo_errors("state stats update"):
            self.collection.update_one({"_id": self.id_for(test_date), "lease.holder": holder}, update)

    def record_progress(self, test_date: str, holder: str, progress: Mapping[str, Any]) -> None:
        """Store an incremental run's progress (polls, last poll, rows behind, rate) in
        ``last_run.progress``, where ``state show`` reads it while the run goes on."""
        with mongo_errors("state progress update"):
            self.collection.update_one(
                {"_id": self.id_for(test_date), "lease.holder": holder},
                {"$set": {"last_run.progress": dict(progress), "updated_at": self.clock()}},
            )

    def advance_watermark(self, test_date: str, holder: str, key: WatermarkKey) -> bool:
        """Move the watermark to ``key`` only if that is forward; True when it moved."""
        filt = {"_id": self.id_for(test_date), "lease.holder": holder, **_behind(key)}
        with mongo_errors("watermark advance"):
            res = self.collection.update_one(
                filt, {"$set": {"watermark": watermark_doc(key), "updated_at": self.clock()}}
            )
        return res.modified_count == 1

    def finish_run(self, test_date: str, holder: str, *, status: str, error: str | None = None) -> None:
        """Record the run's end (status, finish time, error) and release the lease."""
        assert status in STATUSES
        now = self.clock()
        with mongo_errors("state run finish"):
            self.collection.update_one(
                {"_id": self.id_for(test_date), "lease.holder": holder},
                {
                    "$set": {
                        "status": status,
                        "updated_at": now,
                        "last_run.status": status,
                        "last_run.finished_at": now,
                        "last_run.error": error,
                        "lease": None,
                    }
                },
            )

    def reset(self, test_date: str, *, expected: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Delete the state of ``test_date``; returns what was deleted (``None`` if nothing).

        With ``expected`` (the document an operator was shown), only if its lease, watermark,
        status and counters are still exactly those: a run that took or renewed the lease, or
        moved the watermark, while the operator read the confirmation prompt keeps its state.
        """
        query: dict[str, Any] = {"_id": self.id_for(test_date)}
        if expected is not None:
            query.update({k: expected.get(k) for k in RESET_GUARD_FIELDS})
        with mongo_errors("state reset"):
            return self.collection.find_one_and_delete(query)
