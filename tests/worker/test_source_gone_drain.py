"""GIVEN a worker pointed at the wrong source WHEN it starts or runs THEN it refuses to start, or
stops with its own exit code and releases what it holds, instead of acking the queue empty."""

from __future__ import annotations

import pytest
from bson import ObjectId

from anomaly_cli import errors
from anomaly_cli.cli import exit_codes
from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from anomaly_cli.worker.source_guard import SourceGoneBreaker, ensure_source
from tests.worker.conftest import make_item


def _gone_item(url: str, n: int):
    return make_item(url, n=n, record_type="teacher", mongo_doc_id=str(ObjectId()), subject_id=f"s-{n}")


def test_work_refuses_an_empty_source_naming_database_and_collection(monkeypatch, embedded_mongo_uri, tmp_path):
    from typer.testing import CliRunner

    from anomaly_cli.cli.app import app

    monkeypatch.setenv("SQS_QUEUE_URL", "https://sqs.ap-south-1.amazonaws.com/1/q")
    monkeypatch.setenv("AUDIO_URL_ALLOWLIST", "https://cdn.example")
    monkeypatch.setenv("MONGO_URI", embedded_mongo_uri)
    monkeypatch.setenv("MONGO_DB_NAME", "nipnu")  # the typo
    result = CliRunner().invoke(app, ["work", "--max-messages", "1"])
    assert result.exit_code == exit_codes.RET_CONFIG, result.output
    assert "nipnu.student_assessment_record" in result.output and "WORKER_ADHOC_ONLY" in result.output


def test_ensure_source_accepts_a_populated_collection_or_an_adhoc_only_worker(mongo):
    db = mongo["nipun"]
    with pytest.raises(errors.ConfigError) as e:
        ensure_source(db, database="nipun", collection="student_assessment_record", adhoc_only=False)
    assert "does not exist" in str(e.value) and e.value.field == "MONGO_SOURCE_COLLECTION"
    ensure_source(db, database="nipun", collection="student_assessment_record", adhoc_only=True)
    db["student_assessment_record"].insert_one({"_id": 1})
    ensure_source(db, database="nipun", collection="student_assessment_record", adhoc_only=False)


def test_a_window_of_source_gone_stops_the_worker_and_releases_the_rest(rig, recordings):
    url = rig.server.put("/a.wav", recordings["child1.wav"])
    for n in range(12):
        rig.send(_gone_item(url, n))
    settings = rig.settings(source_gone_window=4, source_gone_threshold=1.0, batch_size=2)

    report = rig.run(settings=settings, policy=AnyOf((IdleShutdown(2.0),)))

    assert report.reason == "source_gone"
    assert isinstance(report.error, errors.SourceGoneDrain)
    assert exit_codes.for_exception(report.error) == exit_codes.RET_SOURCE_GONE != 0
    assert report.stats["skipped_source_gone"] == 3  # the 4th trips the breaker and is released
    counts = rig.counts()
    assert counts["visible"] + counts["in_flight"] == 12 - 3 and counts["in_flight"] == 0


def test_the_default_window_never_trips_on_scattered_source_gone():
    b = SourceGoneBreaker(window=200, threshold=0.95)
    for i in range(10_000):
        assert not b.observe(i % 10 == 0)  # 10 % gone, far above a healthy fleet's share
    assert not b.tripped


def test_the_breaker_trips_only_on_a_full_window_share():
    b = SourceGoneBreaker(window=10, threshold=0.9)
    assert not any(b.observe(True) for _ in range(8))
    assert not b.observe(False)
    assert b.observe(True) and b.tripped  # 9 of the last 10
    assert b.observe(True) and not b.observe(False)  # after the trip: gone ones are released, live ones pass


def test_nan_settings_of_the_breaker_are_refused(make_settings):
    with pytest.raises(errors.ConfigError) as e:
        make_settings(source_gone_threshold=float("nan"))
    assert e.value.field == "SOURCE_GONE_THRESHOLD"
    with pytest.raises(errors.ConfigError):
        make_settings(source_gone_threshold=1.5)
