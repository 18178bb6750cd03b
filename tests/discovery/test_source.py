"""The worker's one-query source re-check (discovery/source.py)."""

from __future__ import annotations

from typing import Any

from anomaly_cli.contract import SubjectRow
from anomaly_cli.discovery.source import existing_source_rows, iter_subject_rows

from .conftest import DAY, MATH, READING, assessment, at, student_doc, subject


def _items(doc: dict[str, Any]) -> list:
    rows = [r for r in iter_subject_rows(doc, subject_name=READING) if isinstance(r, SubjectRow)]
    return [r.to_work_item("student_assessment_record", DAY) for r in rows]


def test_recheck_says_which_rows_are_still_there(source: Any, mongo: Any) -> None:
    # GIVEN two students with reading rows in both records
    a = student_doc(assessment(teacher=[subject(sid="t1", created=at(5))], admin=[subject(sid="a1", created=at(6))]))
    b = student_doc(assessment(teacher=[subject(sid="t2", url="  s3://b/x.m4a ", created=at(5))]))
    source.insert_many([a, b])
    items = _items(a) + _items(b)
    assert len(items) == 3
    # WHEN one row's URL changes and one document disappears
    source.update_one({"_id": a["_id"]}, {"$set": {"assessments.0.admin_record.subjects.0.audio_url": "s3://other"}})
    source.delete_one({"_id": b["_id"]})
    got = existing_source_rows(source, items, subject_name=" " + READING + " ")
    # THEN only the unchanged row is still there, answered by one query for the batch
    assert got == {items[0].result_id: True, items[1].result_id: False, items[2].result_id: False}


def test_recheck_survives_malformed_documents(source: Any) -> None:
    good = student_doc(assessment(teacher=[subject(sid="t1", created=at(5))]))
    source.insert_one(good)
    item = _items(good)[0]
    source.update_one({"_id": good["_id"]}, {"$set": {"assessments": {"not": "a list"}}})
    assert existing_source_rows(source, [item], subject_name=READING) == {item.result_id: False}
    source.update_one(
        {"_id": good["_id"]},
        {
            "$set": {
                "assessments": [
                    None,
                    "x",
                    {"teacher_record": {"subjects": None}},
                    {"teacher_record": {"subjects": [subject(MATH, sid="t1", created=at(5))]}},
                ]
            }
        },
    )
    assert existing_source_rows(source, [item], subject_name=READING) == {item.result_id: False}


def test_recheck_string_ids_and_nfd_names(source: Any) -> None:
    import unicodedata

    doc = student_doc(
        assessment(teacher=[subject(unicodedata.normalize("NFD", READING), sid=7, created=at(5))]), oid="legacy-id-1"
    )
    source.insert_one(doc)
    item = _items(doc)[0]
    assert item.subject_id == "7" and item.mongo_doc_id == "legacy-id-1"
    assert existing_source_rows(source, [item], subject_name=READING) == {item.result_id: True}
