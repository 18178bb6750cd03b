"""The aggregation: an index-servable first stage, then the spec's filter on messy real data."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zoneinfo
from typing import Any

import pytest

from anomaly_cli.contract import RejectedRow, SubjectRow
from anomaly_cli.discovery.pipeline import build_pipeline
from anomaly_cli.discovery.service import candidates

from .conftest import DAY, MATH, READING, UTC, assessment, at, student_doc, subject

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
INDEXED = {
    "assessments.test_date",
    "assessments.teacher_record.subjects.subject_name",
    "assessments.admin_record.subjects.subject_name",
}
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")


def _fields(clause: Any) -> set[str]:
    """Every field a query clause touches (through $and/$or)."""
    out: set[str] = set()
    if isinstance(clause, dict):
        for k, v in clause.items():
            if k in ("$and", "$or"):
                for sub in v:
                    out |= _fields(sub)
            else:
                assert not k.startswith("$"), f"operator {k} at field level cannot use an index"
                out.add(k)
    return out


def test_first_stage_is_a_match_on_the_spec_source_indexes() -> None:
    pipeline = build_pipeline(DAY, UTC, READING)
    first = pipeline[0]
    assert list(first) == ["$match"]
    assert _fields(first["$match"]) <= INDEXED
    # both the date and the subject are constrained (AND), each through an indexed field
    assert {"assessments.test_date"} < _fields(first["$match"])
    assert "$expr" not in repr(first) and "$where" not in repr(first)
    # the date is a real range on dates plus an anchored (index-bounded) prefix for strings
    date_or = first["$match"]["$and"][0]["$or"]
    assert date_or[0]["assessments.test_date"] == {
        "$gte": dt.datetime(2025, 12, 20, tzinfo=UTC),
        "$lt": dt.datetime(2025, 12, 21, tzinfo=UTC),
    }
    assert date_or[1]["assessments.test_date"].pattern.startswith("^2025")
    # the sort is the decided order key
    assert pipeline[-1] == {"$sort": {"source_updated_at": 1, "_id": 1, "record_type": 1, "row.subject_id": 1}}


def _rows(source: Any, tz: dt.tzinfo = UTC, name: str = READING) -> list[SubjectRow | RejectedRow]:
    cursor = source.aggregate(build_pipeline(DAY, tz, name))
    return [c.row for c in candidates(iter(cursor), subject_name=name, now=at(12, day=21))]


def test_filter_selects_reading_rows_of_the_date_in_both_records(source: Any) -> None:
    # GIVEN a student with three assessments (the day before, the day, the day after),
    # reading + math rows in both records, and a subject id present in both records
    doc = student_doc(
        assessment(at(0, day=19), teacher=[subject(sid="old", created=at(5, day=19))]),
        assessment(
            teacher=[subject(sid="s1", created=at(5)), subject(MATH, sid="m1", created=at(5, 5))],
            admin=[subject(sid="s1", created=at(9)), subject(MATH, sid="m2", created=at(9))],
        ),
        assessment("2025-12-21", teacher=[subject(sid="next", created=at(5, day=21))]),
    )
    other = student_doc(assessment(teacher=[subject(MATH, created=at(6))]))
    source.insert_many([doc, other])
    rows = _rows(source)
    # THEN exactly the two reading rows of the day, teacher then admin, in time order
    assert [(r.record_type, r.subject_id) for r in rows] == [("teacher", "s1"), ("admin", "s1")]
    assert all(
        isinstance(r, SubjectRow) and r.student_id == doc["student_id"] and r.udise == "27251200104" for r in rows
    )


def test_string_dates_local_midnight_and_time_zone(source: Any) -> None:
    ist_midnight = dt.datetime(2025, 12, 19, 18, 30, tzinfo=UTC)  # 2025-12-20 00:00 in India
    a = student_doc(assessment("2025-12-20", teacher=[subject(sid="str", created=at(5))]))
    b = student_doc(assessment(ist_midnight, teacher=[subject(sid="ist", created=at(6))]))
    c = student_doc(assessment("2025-12-20T00:00:00", admin=[subject(sid="iso", created=at(7))]))
    source.insert_many([a, b, c])
    assert [r.subject_id for r in _rows(source)] == ["str", "iso"]  # UTC: local midnight is the 19th
    assert [r.subject_id for r in _rows(source, KOLKATA)] == ["str", "ist", "iso"]


def test_subject_names_compared_after_nfc_and_trim(source: Any) -> None:
    source.insert_one(
        student_doc(
            assessment(
                teacher=[
                    subject(f"  {READING} ", sid="spaced", created=at(5)),
                    subject(READING, sid="plain", created=at(6)),
                    subject(READING + "x", sid="other", created=at(7)),
                    subject(None, sid="none", created=at(8)),
                ]
            )
        )
    )
    rows = _rows(source)
    assert [r.subject_id for r in rows] == ["spaced", "plain"]
    assert {r.subject_name for r in rows} == {READING}


@pytest.mark.parametrize("stored_form", ["NFC", "NFD"])
def test_decomposed_and_composed_spellings_match(source: Any, stored_form: str) -> None:
    name = "Lecture \u00e9l\u00e9mentaire"  # has a real NFD/NFC difference (e + combining acute)
    assert unicodedata.normalize("NFD", name) != name
    source.insert_one(
        student_doc(
            assessment(teacher=[subject(unicodedata.normalize(stored_form, name) + " ", sid="x", created=at(5))])
        )
    )
    for configured in (name, unicodedata.normalize("NFD", name)):
        assert [r.subject_id for r in _rows(source, name=configured)] == ["x"]


def test_malformed_documents_and_rows_never_crash(source: Any) -> None:
    good = student_doc(assessment(teacher=[subject(sid="ok", created=at(10))]))
    source.insert_many(
        [
            good,
            student_doc(assessments="not a list"),
            # an object where the list belongs: not selected (the worker's re-check reads lists only)
            student_doc(assessments=assessment(teacher=[subject(sid="in-object", created=at(5))])),
            student_doc(assessments=None),
            {"_id": "no-assessments", "student_id": "x"},
            student_doc(assessment(teacher=None, admin=None)),
            student_doc(
                {
                    "test_date": at(0),
                    "teacher_record": {"subjects": None},
                    "admin_record": {"subjects": {"subject_name": READING}},
                }
            ),
            student_doc(
                {"test_date": at(0), "teacher_record": "junk", "admin_record": {"subjects": ["junk", None, 5]}}
            ),
            student_doc(
                assessment(
                    teacher=[
                        subject(sid="strts", created="2025-12-20T05:00:00Z"),
                        subject(sid="nots"),
                        subject(sid="empty", url="   ", created=at(6)),
                        subject(sid="nourl", url=None, created=at(6)),
                        subject(sid="numurl", url=12, created=at(6)),
                    ],
                    admin=[{"subject_name": READING, "audio_url": "s3://b/k", "subject_created_at": at(7)}],
                )
            ),
        ]
    )
    rows = _rows(source)
    ok = [r for r in rows if isinstance(r, SubjectRow)]
    bad = sorted((r.subject_id or "-", r.reason) for r in rows if isinstance(r, RejectedRow))
    assert [r.subject_id for r in ok] == ["ok"]
    assert bad == [
        ("-", "missing_subject_id"),
        ("empty", "empty_audio_url"),
        ("nots", "missing_subject_created_at"),
        ("nourl", "empty_audio_url"),
        ("numurl", "audio_url_not_string"),
        ("strts", "subject_created_at_not_date"),
    ]


def test_audio_url_whitespace_is_stripped(source: Any) -> None:
    source.insert_one(
        student_doc(assessment(teacher=[subject(sid="ws", url="  s3://nipun-audio/a.m4a\n", created=at(5))]))
    )
    (row,) = _rows(source)
    assert row.audio_url == "s3://nipun-audio/a.m4a"


def test_subject_name_regex_is_anchored() -> None:
    first = build_pipeline(DAY, UTC, READING)[0]["$match"]["$and"][1]["$or"][0]
    names = first["assessments.teacher_record.subjects.subject_name"]["$in"]
    regex = [n for n in names if isinstance(n, re.Pattern)][0]
    assert regex.match(f" {READING} ") and not regex.match(f"{READING} 2")
