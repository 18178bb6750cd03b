"""The 13-field message contract, the result id and row normalisation."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from anomaly_cli import contract
from anomaly_cli.errors import ContractError

UTC = dt.timezone.utc


def _item(**kw):
    base = dict(
        source_collection="student_assessment_record",
        mongo_doc_id="6761f0c2a1b2c3d4e5f60718",
        test_date="2025-12-20",
        record_type="teacher",
        subject_id="sub-8f2a",
        subject_name="वाचन",
        audio_s3_url="s3://nipun-audio/2025-12-20/x.m4a",
        source_updated_at=dt.datetime(2025, 12, 20, 5, 41, 7, tzinfo=UTC),
        subject_created_at=dt.datetime(2025, 12, 20, 5, 41, 7, tzinfo=UTC),
        student_id="STU-1",
        udise="27251200104",
        trace_id="t-1",
        discovered_at=dt.datetime(2025, 12, 21, tzinfo=UTC),
    )
    base.update(kw)
    return contract.WorkItem(**base)


def test_body_has_exactly_the_13_fields_in_contract_formats():
    body = json.loads(_item().to_body())
    assert list(body) == list(contract.MESSAGE_FIELDS)
    assert len(body) == 13
    assert body["test_date"] == "2025-12-20"
    assert body["subject_created_at"] == "2025-12-20T05:41:07.000+00:00"
    assert body["source_updated_at"] == body["subject_created_at"]
    assert body["discovered_at"].endswith("+00:00")


def test_round_trip():
    item = _item(student_id=None, udise=None)
    assert contract.parse_message(item.to_body()) == item


def test_result_id_recipe_is_recomputable():
    item = _item()
    raw = "student_assessment_record|6761f0c2a1b2c3d4e5f60718|2025-12-20|teacher|sub-8f2a|s3://nipun-audio/2025-12-20/x.m4a"
    assert item.result_id == hashlib.sha256(raw.encode()).hexdigest()


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda d: d.pop("udise"), "missing fields: udise"),
        (lambda d: d.update(extra=1), "unexpected fields: extra"),
        (lambda d: d.update(subject_id=5), "'subject_id' must be a string"),
        (lambda d: d.update(record_type="parent"), "record_type"),
        (lambda d: d.update(test_date="20-12-2025"), "test_date"),
        (lambda d: d.update(discovered_at="2025-12-20T05:41:07"), "no UTC offset"),
        (lambda d: d.update(subject_created_at="yesterday"), "not an ISO-8601"),
        (lambda d: d.update(audio_s3_url="  "), "'audio_s3_url' is empty"),
    ],
)
def test_parser_rejects_bad_fields(mutate, fragment):
    data = _item().to_message()
    mutate(data)
    with pytest.raises(ContractError, match=fragment):
        contract.parse_message(json.dumps(data))


@pytest.mark.parametrize("body", ["not json", "[1,2]", "null", "x" * (contract.MAX_BODY_BYTES + 1)])
def test_parser_rejects_non_objects(body):
    with pytest.raises(ContractError):
        contract.parse_message(body)


def test_non_bmp_text_survives():
    item = _item(student_id="😀-𝔘")
    assert contract.parse_message(item.to_body()).student_id == "😀-𝔘"


def test_normalise_row_trims_and_rejects_by_reason():
    now = dt.datetime(2025, 12, 21, tzinfo=UTC)
    created = dt.datetime(2025, 12, 20, 5, tzinfo=UTC)
    ok = contract.normalize_subject_row(
        mongo_doc_id="abc",
        record_type="admin",
        now=now,
        student={"student_id": 12},
        raw={"subject_id": 7, "subject_name": " वाचन ", "audio_url": "  s3://b/k  ", "subject_created_at": created},
    )
    assert isinstance(ok, contract.SubjectRow)
    assert (ok.subject_id, ok.audio_url, ok.student_id, ok.udise) == ("7", "s3://b/k", "12", None)
    cases = {
        "missing_subject_id": {"subject_created_at": created, "audio_url": "s3://b/k"},
        "empty_audio_url": {"subject_id": "s", "audio_url": "null", "subject_created_at": created},
        "audio_url_not_string": {"subject_id": "s", "audio_url": 5, "subject_created_at": created},
        "subject_created_at_not_date": {"subject_id": "s", "audio_url": "s3://b/k", "subject_created_at": "2025-12-20"},
        "missing_subject_created_at": {"subject_id": "s", "audio_url": "s3://b/k"},
        "subject_created_at_in_future": {
            "subject_id": "s",
            "audio_url": "s3://b/k",
            "subject_created_at": now + dt.timedelta(days=30),
        },
    }
    for reason, raw in cases.items():
        raw = {"subject_name": "वाचन", **raw}
        got = contract.normalize_subject_row(mongo_doc_id="abc", record_type="teacher", raw=raw, student={}, now=now)
        assert isinstance(got, contract.RejectedRow) and got.reason == reason, reason


def test_subject_name_nfc_and_trim():
    nfd = "\u0935\u093e\u091a\u0928"  # वाचन is already NFC; build a decomposable case too
    assert contract.subject_matches({"subject_name": nfd + "  "}, "वाचन")
    assert contract.subject_matches({"subject_name": "Cafe\u0301"}, "Café")
    assert not contract.subject_matches({"subject_name": "गणित"}, "वाचन")
    assert not contract.subject_matches({"subject_name": None}, "वाचन")


def test_test_date_matches_in_time_zone():
    import zoneinfo

    ist = zoneinfo.ZoneInfo("Asia/Kolkata")
    local_midnight = dt.datetime(2025, 12, 19, 18, 30, tzinfo=UTC)
    assert contract.test_date_matches(local_midnight, "2025-12-20", ist)
    assert not contract.test_date_matches(local_midnight, "2025-12-20", UTC)
    assert contract.test_date_matches("2025-12-20", "2025-12-20", UTC)
    assert not contract.test_date_matches({"$gt": ""}, "2025-12-20", UTC)
