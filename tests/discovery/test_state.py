"""The state repository: the spec's document, the unique index, the lease, a forward-only watermark."""

from __future__ import annotations

from typing import Any

import pytest

from anomaly_cli.discovery.state import StateRepository, state_id, watermark_key
from anomaly_cli.errors import LeaseHeld

from .conftest import DAY, FakeClock, at


@pytest.fixture
def repo(mongo: Any, clock: FakeClock) -> StateRepository:
    r = StateRepository(
        mongo["nipun"]["anomaly_pipeline_state"],
        pipeline_name="audio_anomaly",
        source_collection="student_assessment_record",
        clock=clock,
        lease_seconds=60,
    )
    r.ensure_indexes()
    return r


def test_document_id_fields_and_unique_index(repo: StateRepository, mongo: Any) -> None:
    doc = repo.acquire(DAY, "run-a", mode="backfill")
    assert (
        doc["_id"]
        == "audio_anomaly:enqueue:student_assessment_record:2025-12-20"
        == state_id("student_assessment_record", DAY)
    )
    assert {
        "_id",
        "pipeline_name",
        "stage",
        "source_collection",
        "test_date",
        "mode",
        "status",
        "watermark",
        "stats",
        "last_run",
        "created_at",
        "updated_at",
    } <= set(doc)
    assert doc["test_date"] == "2025-12-20" and doc["stage"] == "enqueue" and doc["status"] == "running"
    # the operators' validation query answers
    assert mongo["nipun"]["anomaly_pipeline_state"].count_documents({"test_date": "2025-12-20"}) == 1
    info = mongo["nipun"]["anomaly_pipeline_state"].index_information()["pipeline_stage_source_test_date"]
    assert info["unique"] and [k for k, _ in info["key"]] == [
        "pipeline_name",
        "stage",
        "source_collection",
        "test_date",
    ]


def test_lease_excludes_a_second_run_until_it_expires(repo: StateRepository, clock: FakeClock) -> None:
    repo.acquire(DAY, "run-a", mode="incremental")
    with pytest.raises(LeaseHeld, match="run-a"):
        repo.acquire(DAY, "run-b", mode="incremental")
    clock.advance(50)
    repo.renew(DAY, "run-a")  # renewed: live for another 60 s
    clock.advance(50)
    with pytest.raises(LeaseHeld):
        repo.acquire(DAY, "run-b", mode="incremental")
    clock.advance(11)  # run-a crashed: its lease expires
    doc = repo.acquire(DAY, "run-b", mode="incremental")
    assert doc["lease"]["holder"] == "run-b"
    with pytest.raises(LeaseHeld, match="lost the lease"):
        repo.renew(DAY, "run-a")
    # the old holder can no longer move the watermark either
    assert repo.advance_watermark(DAY, "run-a", (at(5), "d", "teacher", "s")) is False
    repo.release(DAY, "run-b")
    repo.acquire(DAY, "run-c", mode="backfill")  # released: free at once


def test_watermark_never_moves_backwards(repo: StateRepository) -> None:
    repo.acquire(DAY, "h", mode="backfill")
    k1 = (at(5), "65a", "teacher", "s2")
    assert repo.advance_watermark(DAY, "h", k1)
    for older in [
        (at(4), "zzz", "teacher", "s9"),
        (at(5), "659", "teacher", "s9"),
        (at(5), "65a", "admin", "s9"),
        (at(5), "65a", "teacher", "s1"),
        k1,
    ]:
        assert repo.advance_watermark(DAY, "h", older) is False
    assert watermark_key(repo.get(DAY)) == k1
    for newer in [
        (at(5), "65a", "teacher", "s3"),
        (at(5), "65a", "zadmin", "s0"),
        (at(5), "65b", "admin", "a"),
        (at(6), "0", "a", "a"),
    ]:
        assert repo.advance_watermark(DAY, "h", newer)
        assert watermark_key(repo.get(DAY)) == newer


def test_stats_are_cumulative_and_last_run_is_per_run(repo: StateRepository) -> None:
    for run in ("r1", "r2"):
        repo.acquire(DAY, "h", mode="backfill")
        repo.start_run(DAY, "h", mode="backfill", run_id=run)
        repo.record_page(DAY, "h", {"pages": 1, "enqueued": 3, "skipped_existing": 1}, {"empty_audio_url": 2})
        repo.finish_run(DAY, "h", status="completed")
    doc = repo.get(DAY)
    assert doc["stats"]["enqueued"] == 6 and doc["stats"]["skipped_invalid"] == {"empty_audio_url": 4}
    assert doc["last_run"]["run_id"] == "r2" and doc["last_run"]["stats"]["enqueued"] == 3
    assert doc["last_run"]["stats"]["skipped_invalid"] == {"empty_audio_url": 2}
    assert doc["status"] == "completed" and doc["lease"] is None


def test_reset_deletes_and_list_shows_all(repo: StateRepository) -> None:
    repo.acquire(DAY, "h", mode="backfill")
    repo.acquire("2025-12-21", "h", mode="backfill")
    assert [d["test_date"] for d in repo.list()] == ["2025-12-21", DAY]
    assert repo.reset(DAY)["_id"].endswith(DAY)
    assert repo.get(DAY) is None and repo.reset(DAY) is None
