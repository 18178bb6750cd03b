"""The discovery aggregation: one MongoDB pipeline from source documents to sorted subject rows.

Decisions (the issue leaves the how open):

- The first stage is a ``$match`` on ``assessments.test_date`` and on the subject name of
  either record path: exactly the fields of the spec's recommended source indexes, so the
  planner can serve it from an index. Discovery never creates indexes on the source.
- Test dates: a date-typed value belongs to its calendar day in ``TEST_DATE_TIMEZONE``
  (a ``[start, end)`` range in UTC); a string is matched whole by
  :func:`~anomaly_cli.contract.string_test_date_pattern`: the date alone or followed by
  ``THH:MM`` (``2025-12-20T00:00`` strings count, ``2025-12-2099`` does not), still an
  index-bounded regex (it starts with the literal date).
- Subject names are matched in MongoDB *broadly*: the NFC and NFD spellings, plus an anchored
  regex allowing surrounding whitespace. The exact decision is made afterwards in Python with
  :func:`~anomaly_cli.contract.subject_matches` (NFC + trim), so Mongo narrows and Python
  decides; a name that only differs in other ways is never enqueued by accident.
- Malformed documents never break the aggregation: a non-array ``subjects`` becomes ``[]``
  (``$isArray``), a non-object assessment or row simply matches nothing.
- Order: (``source_updated_at``, ``_id``, ``record_type``, ``subject_id``). The after-watermark
  filter in MongoDB is the coarse ``source_updated_at >= watermark timestamp``, also put into
  the first ``$match`` on the spec's indexed ``subjects.subject_created_at`` fields (a document
  none of whose rows is that recent is not even read: an incremental poll of a test date with
  10^6 rows behind its watermark reads only the new documents, and a reopened cursor only what
  is left); the exact tuple
  comparison is done in Python on normalised keys (subject ids may be numbers or strings in the
  source, and MongoDB compares those by type first).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from anomaly_cli.contract import RECORD_PATHS, string_test_date_pattern, test_date_window

TD = "assessments.test_date"


def subject_name_forms(subject_name: str) -> list[Any]:
    """Values for an ``$in`` that catch the name's NFC/NFD spellings, with or without spaces."""
    base = subject_name.strip()
    forms = list(dict.fromkeys([unicodedata.normalize("NFC", base), unicodedata.normalize("NFD", base)]))
    pattern = r"^\s*(?:" + "|".join(re.escape(f) for f in forms) + r")\s*$"
    return [*forms, re.compile(pattern)]


def test_date_clause(
    test_date: str, tz: dt.tzinfo, *, field: str = TD, widen: dt.timedelta | None = None
) -> dict[str, Any]:
    """Match ``field`` holding ``test_date`` as a date (its day in ``tz``) or as a string.

    ``widen`` extends the date range on both sides (the dry-run's time-zone trap check).
    """
    start, end = test_date_window(test_date, tz)
    if widen:
        start, end = start - widen, end + widen
        day = dt.date.fromisoformat(test_date)
        days = [(day + dt.timedelta(days=k)).isoformat() for k in range(-widen.days, widen.days + 1)]
        string = re.compile(string_test_date_pattern(days))
    else:
        string = re.compile(string_test_date_pattern([test_date]))
    return {"$or": [{field: {"$gte": start, "$lt": end}}, {field: string}]}


def first_match(
    test_date: str,
    tz: dt.tzinfo,
    subject_name: str,
    *,
    widen: dt.timedelta | None = None,
    after: dt.datetime | None = None,
) -> dict[str, Any]:
    """The first ``$match``: date and subject name (and, with ``after``, a row at least that
    recent), on the spec's indexed source fields."""
    names = subject_name_forms(subject_name)
    clauses = [
        test_date_clause(test_date, tz, widen=widen),
        {"$or": [{f"assessments.{path}.subjects.subject_name": {"$in": names}} for path in RECORD_PATHS.values()]},
    ]
    if after is not None:
        clauses.append(
            {
                "$or": [
                    {f"assessments.{path}.subjects.subject_created_at": {"$gte": after}}
                    for path in RECORD_PATHS.values()
                ]
            }
        )
    return {"$and": clauses}


def build_pipeline(
    test_date: str, tz: dt.tzinfo, subject_name: str, *, after: dt.datetime | None = None
) -> list[dict[str, Any]]:
    """The aggregation producing one document per candidate subject row, in discovery order.

    Output documents: ``{_id, student_id, udise, record_type, row, row_index, source_updated_at}``
    where ``row`` is the raw subject row. ``after`` keeps rows with
    ``source_updated_at >= after`` (the exact tuple filter happens in Python).
    """

    def tagged(record_type: str, path: str) -> dict[str, Any]:
        arr = f"$assessments.{path}.subjects"
        return {
            "$map": {
                "input": {"$cond": [{"$isArray": arr}, arr, []]},
                "as": "s",
                "in": {"record_type": record_type, "row": "$$s"},
            }
        }

    names = subject_name_forms(subject_name)
    pipeline: list[dict[str, Any]] = [
        {"$match": first_match(test_date, tz, subject_name, after=after)},
        # $unwind treats a non-array ``assessments`` (an object) as one element; the worker's
        # re-check (source.iter_subject_rows) does not, so such rows would be enqueued and then
        # found "gone". A document whose assessments is not a list is malformed: never enqueued.
        {"$match": {"assessments": {"$type": "array"}}},
        {"$unwind": "$assessments"},
        # re-match: only the assessment of the test date, not a sibling assessment of the same student
        {"$match": test_date_clause(test_date, tz)},
        {
            "$project": {
                "student_id": 1,
                "udise": 1,
                "rows": {"$concatArrays": [tagged(rt, path) for rt, path in RECORD_PATHS.items()]},
            }
        },
        {"$unwind": {"path": "$rows", "includeArrayIndex": "row_index"}},
        {"$match": {"rows.row.subject_name": {"$in": names}}},
        {
            "$project": {
                "student_id": 1,
                "udise": 1,
                "row_index": 1,
                "record_type": "$rows.record_type",
                "row": "$rows.row",
                "source_updated_at": "$rows.row.subject_created_at",
            }
        },
    ]
    if after is not None:
        pipeline.append({"$match": {"source_updated_at": {"$gte": after}}})
    pipeline.append({"$sort": {"source_updated_at": 1, "_id": 1, "record_type": 1, "row.subject_id": 1}})
    return pipeline
