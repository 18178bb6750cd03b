"""Ops test kit: run the CLI in-process against moto (in-process) and the embedded Mongo double."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from anomaly_cli.contract import WorkItem

TEST_DATE = "2025-12-20"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, embedded_mongo_uri: str) -> Callable[..., Any]:
    """``cli(args, env={...}, input=...)`` -> (exit_code, stdout, stderr) through the real app."""
    monkeypatch.setenv("MONGO_URI", embedded_mongo_uri)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.setenv("SQS_WAIT_SECONDS", "0")  # moto answers at once; no long-poll waits in tests
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal width; keep messages on one line

    def run(args: list[str], env: dict[str, str] | None = None, input: str | None = None) -> Any:
        from anomaly_cli.cli.app import app

        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        result = CliRunner().invoke(app, args, input=input, catch_exceptions=False)
        return result

    return run


@pytest.fixture
def db(embedded_mongo_uri: str) -> Any:
    """The database the CLI sees (same embedded double, same name as the default settings)."""
    from anomaly_cli.adapters.mongo import connect

    return connect(embedded_mongo_uri)["nipun"]


def make_item(
    i: int = 0,
    *,
    test_date: str = TEST_DATE,
    record_type: str = "teacher",
    url: str | None = None,
    collection: str = "student_assessment_record",
) -> WorkItem:
    now = dt.datetime(2025, 12, 20, 6, 0, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i)
    return WorkItem(
        source_collection=collection,
        mongo_doc_id=f"{i:024x}",
        test_date=test_date,
        record_type=record_type,
        subject_id=f"sub-{i}",
        subject_name="वाचन",
        audio_s3_url=url or f"s3://audio/{test_date}/{i}.wav",
        source_updated_at=now,
        subject_created_at=now,
        student_id=f"STU-{i}",
        udise="27251200104",
        trace_id=str(uuid.uuid4()),
        discovered_at=now,
    )


def bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in messages]


def screening(
    *, reasons: tuple[str, ...] = (), failed: str | None = None, model: str = "v1", sha: str | None = None
) -> Any:
    """A Screening as the engine would return it (anomalous when ``reasons``, failed with ``failed``)."""
    from anomaly_cli.screening import Reason, Screening

    if failed:
        return Screening(
            status="failed",
            is_anomaly=False,
            anomaly_score=0.0,
            reasons=(),
            model_version=model,
            error={"code": failed, "message": f"{failed} happened", "stage": "fetch"},
        )
    return Screening(
        status="ok",
        is_anomaly=bool(reasons),
        anomaly_score=0.9 if reasons else 0.1,
        reasons=tuple(Reason(c, -62.0, -50.0, "p95 frame energy dBFS") for c in reasons),
        model_version=model,
        features={"rms_db": -30.0},
        threshold=0.5,
        audio={
            "format": "wav",
            "sample_rate": 16000,
            "channels": 1,
            "duration_s": 6.0,
            "bytes": 192044,
            "sha256": sha or uuid.uuid4().hex,
            "pcm_sha256": sha or uuid.uuid4().hex,
            "fingerprint": None,
            "fp_bands": [],
        },
    )


def put_result(db: Any, item: WorkItem, scr: Any, *, processed_at: dt.datetime | None = None) -> dict[str, Any]:
    from anomaly_cli.results.document import build_result

    doc = build_result(
        item,
        scr,
        worker_id="w1",
        attempt=1,
        now=processed_at or dt.datetime(2025, 12, 20, 8, 0, tzinfo=dt.timezone.utc),
    )
    db["anomaly_detection_results"].insert_one(doc)
    return doc
