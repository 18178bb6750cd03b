"""Reading the source collection: the subject rows of a document, and the worker's re-check.

Both discovery and the worker see a source row only through
:func:`anomaly_cli.contract.normalize_subject_row` (the one normaliser), so "the row discovery
enqueued" and "the row the worker re-checks" are the same thing by construction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Mapping, Sequence

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import ReadCollection
from anomaly_cli.contract import (
    RECORD_PATHS,
    RejectedRow,
    SubjectRow,
    WorkItem,
    doc_id_text,
    doc_id_values,
    normalize_subject_row,
    subject_matches,
    test_date_matches,
)


def raw_rows(assessment: Any, record_type: str) -> list[Mapping[str, Any]]:
    """The raw subject rows of one assessment for ``record_type``; malformed shapes give ``[]``."""
    if not isinstance(assessment, Mapping):
        return []
    record = assessment.get(RECORD_PATHS[record_type])
    subjects = record.get("subjects") if isinstance(record, Mapping) else None
    if not isinstance(subjects, list):
        return []
    return [s for s in subjects if isinstance(s, Mapping)]


def iter_subject_rows(
    doc: Mapping[str, Any],
    *,
    subject_name: str,
    test_date: str | None = None,
    tz: dt.tzinfo | None = None,
    now: dt.datetime | None = None,
) -> Iterator[SubjectRow | RejectedRow]:
    """Every row of ``subject_name`` in a source document, normalised (both record types).

    With ``test_date`` (and ``tz``), only assessments of that day count. A document whose
    ``assessments`` is not a list yields nothing instead of raising.
    """
    assessments = doc.get("assessments")
    if not isinstance(assessments, list):
        return
    for assessment in assessments:
        if test_date is not None and not (
            isinstance(assessment, Mapping)
            and test_date_matches(assessment.get("test_date"), test_date, tz or dt.timezone.utc)
        ):
            continue
        for record_type in RECORD_PATHS:
            for raw in raw_rows(assessment, record_type):
                if subject_matches(raw, subject_name):
                    yield normalize_subject_row(
                        mongo_doc_id=doc["_id"], record_type=record_type, raw=raw, student=doc, now=now
                    )


def existing_source_rows(
    collection: ReadCollection,
    items: Sequence[WorkItem],
    *,
    subject_name: str,
    now: dt.datetime | None = None,
    tz: dt.tzinfo | None = None,
) -> dict[str, bool]:
    """For a batch of work items, whether each source row is still there, unchanged: ONE query.

    Returns ``{result_id: True}`` when the document still has a valid row of
    ``subject_name`` with the item's ``record_type`` and ``subject_id`` whose normalised
    ``audio_url`` equals the item's. Ad-hoc items (``push-urls``) have no source row and are
    always ``True``. The test date is only checked when ``tz`` is given: the worker does not
    know ``TEST_DATE_TIMEZONE`` of the run that enqueued the item, and a subject id is unique
    within a document in practice, so a wrong guess must not turn live rows into "gone".
    """
    out: dict[str, bool] = {}
    sourced = [it for it in items if not it.is_adhoc]
    for it in items:
        if it.is_adhoc:
            out[it.result_id] = True
    if not sourced:
        return out
    projection = {"assessments": 1, "student_id": 1, "udise": 1}
    with mongo_errors("source re-check"):
        docs = list(collection.find({"_id": {"$in": doc_id_values([it.mongo_doc_id for it in sourced])}}, projection))
    rows: dict[str, set[tuple[str, str, str, str]]] = {}
    for doc in docs:
        key = doc_id_text(doc["_id"])
        bucket = rows.setdefault(key, set())
        listed = doc.get("assessments")
        assessments = listed if isinstance(listed, list) else []
        for assessment in assessments:
            day = None
            if isinstance(assessment, Mapping):
                day = assessment.get("test_date")
            for row in iter_subject_rows(
                {
                    "_id": doc["_id"],
                    "assessments": [assessment],
                    "student_id": doc.get("student_id"),
                    "udise": doc.get("udise"),
                },
                subject_name=subject_name,
                now=now,
            ):
                if isinstance(row, SubjectRow):
                    dates = {it.test_date for it in sourced if it.mongo_doc_id == key}
                    for d in dates:
                        if tz is None or test_date_matches(day, d, tz):
                            bucket.add((d, row.record_type, row.subject_id, row.audio_url))
    for it in sourced:
        found = (it.test_date, it.record_type, it.subject_id, it.audio_s3_url.strip())
        out[it.result_id] = found in rows.get(it.mongo_doc_id, set())
    return out
