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


def make_item(i: int = 0, *, test_date: str = TEST_DATE, record_type: str = "teacher", url: str | None = None,
              collection: str = "student_assessment_record") -> WorkItem:
    now = dt.datetime(2025, 12, 20, 6, 0, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=i)
    return WorkItem(source_collection=collection, mongo_doc_id=f"{i:024x}", test_date=test_date,
                    record_type=record_type, subject_id=f"sub-{i}", subject_name="वाचन",
                    audio_s3_url=url or f"s3://audio/{test_date}/{i}.wav", source_updated_at=now, subject_created_at=now,
                    student_id=f"STU-{i}", udise="27251200104", trace_id=str(uuid.uuid4()), discovered_at=now)


def bodies(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in messages]
