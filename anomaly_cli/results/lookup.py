""" "Does a result exist?" answered by the deterministic ``_id`` **or** the natural key.

The original deployment's id recipe is unknown, so old results must be recognised by
(``source.mongo_doc_id``, ``source.test_date``, ``source.record_type``, ``source.subject_id``)
too (the spec's first result index serves that). One query per batch, never one per item.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Sequence

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import ReadCollection
from anomaly_cli.contract import test_date_datetime

NaturalKey = tuple[str, str, str, str]  # (mongo_doc_id, test_date YYYY-MM-DD, record_type, subject_id)


def _natural_clause(key: NaturalKey) -> dict[str, Any]:
    doc_id, test_date, record_type, subject_id = key
    return {
        "source.mongo_doc_id": doc_id,
        "source.test_date": test_date_datetime(test_date),
        "source.record_type": record_type,
        "source.subject_id": subject_id,
    }


def existing_results(collection: ReadCollection, keys: Sequence[tuple[str, NaturalKey]]) -> set[str]:
    """Of ``(result_id, natural_key)`` pairs, the result ids that already have a result.

    A pair counts as existing when a document has its ``_id`` or its natural key.
    """
    if not keys:
        return set()
    ids = [rid for rid, _ in keys]
    clauses: list[dict[str, Any]] = [{"_id": {"$in": ids}}]
    clauses += [_natural_clause(k) for _, k in keys]
    projection = {
        "_id": 1,
        "source.mongo_doc_id": 1,
        "source.test_date": 1,
        "source.record_type": 1,
        "source.subject_id": 1,
    }
    with mongo_errors("existing results lookup"):
        found = list(collection.find({"$or": clauses}, projection))
    by_id = set(ids)
    found_ids = {d["_id"] for d in found if d["_id"] in by_id}
    found_keys = set()
    for d in found:
        src = d.get("source") or {}
        td = src.get("test_date")
        td_s = td.date().isoformat() if isinstance(td, dt.datetime) else str(td)[:10]
        found_keys.add((str(src.get("mongo_doc_id")), td_s, src.get("record_type"), str(src.get("subject_id"))))
    return {rid for rid, key in keys if rid in found_ids or key in found_keys}


def existing_ids_for(collection: ReadCollection, pairs: Iterable[tuple[str, NaturalKey]], chunk: int = 200) -> set[str]:
    """:func:`existing_results` over any number of pairs, ``chunk`` at a time."""
    out: set[str] = set()
    batch: list[tuple[str, NaturalKey]] = []
    for pair in pairs:
        batch.append(pair)
        if len(batch) >= chunk:
            out |= existing_results(collection, batch)
            batch = []
    if batch:
        out |= existing_results(collection, batch)
    return out
