"""The result document builder and readers."""

from __future__ import annotations

import datetime as dt

from anomaly_cli.contract import MESSAGE_FIELDS, WorkItem
from anomaly_cli.results import document as D
from anomaly_cli.screening import Reason, Screening

T = dt.datetime(2025, 12, 20, 5, 41, 7, tzinfo=dt.timezone.utc)


def item(url: str = "https://b.s3.ap-south-1.amazonaws.com/k.m4a?X-Amz-Signature=abc&X-Amz-Credential=x") -> WorkItem:
    return WorkItem(
        "student_assessment_record",
        "6761f0c2a1b2c3d4e5f60718",
        "2025-12-20",
        "teacher",
        "sub-8f2a",
        "वाचन",
        url,
        T,
        T,
        "STU-1",
        "2725",
        "trace",
        T,
    )


def screening(**kw) -> Screening:
    base = dict(
        status="ok",
        is_anomaly=True,
        anomaly_score=0.8,
        reasons=(Reason("noisy", 3.0, 6.0, "snr"),),
        model_version="v1",
        features={"rms": 0.1},
        threshold=0.5,
        audio={
            "format": "m4a",
            "sample_rate": 44100,
            "sha256": "s",
            "pcm_sha256": "p",
            "fp_bands": ("a", "b"),
            "fingerprint": "f",
            "truncated": False,
        },
        timings_ms={"decode": 4.0, "features": 2.0, "inference": 1.0},
    )
    base.update(kw)
    return Screening(**base)


def test_build_result_has_the_documented_shape():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    doc = D.build_result(item(), screening(), worker_id="w", attempt=3, now=now, fetch_ms=12.5, total_ms=30.0)

    assert doc["_id"] == item().result_id
    assert list(doc["source"]) == list(MESSAGE_FIELDS)
    assert doc["source"]["test_date"] == dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc)
    assert doc["source"]["subject_created_at"] == T
    assert doc["processing"] == {
        "status": "ok",
        "processed_at": now,
        "worker_id": "w",
        "attempt": 3,
        "model_version": "v1",
        "error": None,
        "screen_count": 1,
        "timings_ms": {"fetch": 12.5, "decode": 4.0, "features": 2.0, "inference": 1.0, "total": 30.0},
    }
    assert doc["inference"]["reason_codes"] == ["noisy"]
    assert doc["inference"]["reasons"][0] == {"code": "noisy", "value": 3.0, "threshold": 6.0, "detail": "snr"}
    assert doc["inference"]["duplicate_of"] == []
    assert doc["audio"]["fp_bands"] == ["a", "b"] and doc["audio"]["codec"] is None
    assert doc["created_at"] == doc["updated_at"] == now


def test_failed_screening_builds_a_terminal_result():
    s = Screening.failed(code="not_found", message="404", stage="fetch", reason="unavailable", model_version="v1")
    doc = D.build_result(item(), s, worker_id="w", attempt=1)
    assert doc["processing"]["status"] == "failed"
    assert doc["processing"]["error"] == {"code": "not_found", "message": "404", "stage": "fetch"}
    assert doc["inference"]["is_anomaly"] is True and doc["inference"]["reason_codes"] == ["unavailable"]


def test_presigned_url_is_stored_as_enqueued_but_displayed_redacted():
    doc = D.build_result(item(), screening(), worker_id="w", attempt=1)
    assert "X-Amz-Signature=abc" in doc["source"]["audio_s3_url"]  # an input of _id
    shown = D.display_url(doc)
    assert "abc" not in shown and shown.startswith("https://b.s3.ap-south-1.amazonaws.com/k.m4a")


def test_readers_round_trip_the_work_item():
    doc = D.build_result(item(), screening(), worker_id="w", attempt=1)
    assert D.work_item_of(doc) == item()
    assert D.test_date_of(doc) == "2025-12-20"
    assert D.order_key(doc) == (T, item().result_id)
