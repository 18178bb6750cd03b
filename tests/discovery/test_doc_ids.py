"""GIVEN source documents whose ``_id`` is not an ObjectId or a string WHEN discovery enqueues
their rows THEN the worker's re-check (and the backlink) find each row again: no silent
``source_gone``. ``mongo_doc_id`` stays a string (canonical Extended JSON for such ids)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Callable

import pytest
from bson import Binary, Decimal128, Int64, ObjectId

from anomaly_cli.contract import doc_id_text, doc_id_values, parse_message
from anomaly_cli.discovery.source import existing_source_rows

from .conftest import READING, UTC, assessment, at, bodies, student_doc, subject

IDS: dict[str, Any] = {
    "int": 42,
    "int64": Int64(2**40),
    "uuid": Binary.from_uuid(uuid.UUID(int=7)),
    "float": 1.5,
    "date": dt.datetime(2025, 1, 2, tzinfo=UTC),
    "string": "STU-27-0000001",
    "hex_string": "6761f0c2a1b2c3d4e5f60718",
    "objectid": ObjectId("6761f0c2a1b2c3d4e5f60719"),
}


def test_each_id_round_trips_through_its_string(source: Any) -> None:
    for name, value in IDS.items():
        source.insert_one({"_id": value, "n": name})
    for name, value in IDS.items():
        text = doc_id_text(value)
        assert isinstance(text, str)
        found = list(source.find({"_id": {"$in": doc_id_values([text])}}))
        assert [d["n"] for d in found] == [name], name
    assert doc_id_text(IDS["int"]) == '{"$numberInt":"42"}'
    assert doc_id_text(IDS["objectid"]) == "6761f0c2a1b2c3d4e5f60719"
    assert doc_id_text(IDS["string"]) == "STU-27-0000001"


def test_an_embedded_document_id_keeps_its_field_order() -> None:
    # the Mongo double cannot store document ids; MongoDB matches them by exact field order
    value = {"school": "27251200104", "roll": 12}
    text = doc_id_text(value)
    assert text == '{"school":"27251200104","roll":{"$numberInt":"12"}}'
    (as_id,) = [v for v in doc_id_values([text]) if isinstance(v, dict)]
    assert list(as_id.items()) == list(value.items())
    assert Decimal128("3.25") in doc_id_values([doc_id_text(Decimal128("3.25"))])  # the double cannot hold it either


def test_discovered_rows_of_any_id_type_are_found_by_the_workers_recheck(
    source: Any, make_service: Callable, sqs_client: Any, queue_url: str
) -> None:
    docs = [
        student_doc(assessment(teacher=[subject(created=at(5, i))]), oid=None, _id=value)
        for i, value in enumerate(IDS.values())
    ]
    for doc, value in zip(docs, IDS.values()):
        doc["_id"] = value
    source.insert_many(docs)

    report = make_service().run("backfill")

    assert report.enqueued == len(IDS)
    items = [parse_message(json.dumps(m)) for m in bodies(sqs_client, queue_url)]
    assert all(isinstance(json.loads(json.dumps(m))["mongo_doc_id"], str) for m in bodies(sqs_client, queue_url))
    present = existing_source_rows(source, items, subject_name=READING)
    assert present == {it.result_id: True for it in items}


@pytest.mark.parametrize("name", ["int", "uuid", "float", "hex_string"])
def test_backlink_finds_the_row_of_any_id_type(source: Any, name: str) -> None:
    from anomaly_cli.contract import SubjectRow
    from anomaly_cli.worker.backlink import Backlinker

    row = subject(sid="s-1", created=at(5))
    source.insert_one({"_id": IDS[name], "assessments": [assessment(teacher=[row])]})
    item = SubjectRow(
        doc_id_text(IDS[name]), "teacher", "s-1", READING, row["audio_url"], at(5), None, None
    ).to_work_item("student_assessment_record", "2025-12-20")

    landed = Backlinker(source, UTC).write(item, {"_id": item.result_id, "inference": {}, "processing": {}})

    assert landed
    doc = source.find_one({"_id": IDS[name]})
    assert doc["assessments"][0]["teacher_record"]["subjects"][0]["anomaly"]["result_id"] == item.result_id


def test_a_hostile_mongo_doc_id_naming_a_regex_never_becomes_a_pattern_match(source: Any) -> None:
    # inside $in a regex matches: '{"$regularExpression": ".*"}' would make one message read the collection
    source.insert_many([{"_id": f"doc-{i}"} for i in range(5)])
    hostile = '{"$regularExpression":{"pattern":".*","options":""}}'
    values = doc_id_values([hostile])
    assert values == [hostile]
    assert list(source.find({"_id": {"$in": values}})) == []
