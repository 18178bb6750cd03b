"""The optional backlink (``ENABLE_SOURCE_BACKLINK_UPDATE``): the result summary written into
the subject row of the source document, as ``anomaly: {result_id, is_anomaly, reasons,
model_version, checked_at}``.

The row is addressed by positional index (``assessments.<i>.<record>.subjects.<j>``) with a
filter that also matches that position's ``subject_id``: nested array filters are not
available in the test doubles, and this form works on every MongoDB. If the row moved between
the read and the write (the filter no longer matches), it is resolved again, a few times. Any
failure is logged and never undoes the result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from anomaly_cli.adapters.protocols import Collection
from anomaly_cli.contract import RECORD_PATHS, WorkItem, doc_id_values, test_date_matches
from anomaly_cli.errors import error_code
from anomaly_cli.log import get_logger

log = get_logger("worker")
MAX_RESOLVE_ATTEMPTS = 3


def locate(doc: dict[str, Any], item: WorkItem, tz: dt.tzinfo) -> tuple[str, Any] | None:
    """(dotted path, stored subject_id) of the item's subject row in ``doc`` (None when gone)."""
    record = RECORD_PATHS.get(item.record_type)
    if record is None:
        return None
    for i, assessment in enumerate(doc.get("assessments") or []):
        if not isinstance(assessment, dict) or not test_date_matches(assessment.get("test_date"), item.test_date, tz):
            continue
        subjects = ((assessment.get(record) or {}).get("subjects")) or []
        for j, row in enumerate(subjects):
            if isinstance(row, dict) and str(row.get("subject_id")) == item.subject_id:
                return f"assessments.{i}.{record}.subjects.{j}", row.get("subject_id")
    return None


class Backlinker:
    """Writes backlinks into the source collection (injected)."""

    def __init__(self, collection: Collection, tz: dt.tzinfo):
        self.collection = collection
        self.tz = tz

    def __call__(self, written: list[tuple[WorkItem, dict[str, Any]]]) -> None:
        for item, result in written:
            try:
                self.write(item, result)
            except Exception as e:  # noqa: BLE001 - a backlink never undoes a result
                log.warning("backlink_failed", result_id=item.result_id, error=error_code(e), reason=str(e)[:200])

    def write(self, item: WorkItem, result: dict[str, Any]) -> bool:
        """Write one backlink; True when it landed."""
        inf = result.get("inference") or {}
        payload = {
            "result_id": result["_id"],
            "is_anomaly": bool(inf.get("is_anomaly")),
            "reasons": list(inf.get("reason_codes") or []),
            "model_version": (result.get("processing") or {}).get("model_version"),
            "checked_at": dt.datetime.now(dt.timezone.utc),
        }
        for _ in range(MAX_RESOLVE_ATTEMPTS):
            doc = self.collection.find_one({"_id": {"$in": doc_id_values([item.mongo_doc_id])}}, {"assessments": 1})
            found = locate(doc, item, self.tz) if doc else None
            if doc is None or found is None:
                log.info("backlink_skipped", result_id=item.result_id, reason="row_gone")
                return False
            path, stored_id = found
            res = self.collection.update_one(
                {"_id": doc["_id"], f"{path}.subject_id": stored_id}, {"$set": {f"{path}.anomaly": payload}}
            )
            if res.matched_count:
                return True
        log.warning("backlink_failed", result_id=item.result_id, error="row_moving", reason="row kept moving")
        return False
