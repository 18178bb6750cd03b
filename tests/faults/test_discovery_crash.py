"""Discovery dies (an uncatchable ``BaseException``) between a page's send and its watermark
save. The rerun (after the dead run's lease expired) sends again whatever the watermark does not
cover; the worker then screens every row once and writes one result per row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from anomaly_cli.adapters.sqs import SqsQueue
from anomaly_cli.discovery.service import build_service
from anomaly_cli.discovery.state import StateRepository
from anomaly_cli.worker.factory import build_worker
from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from tests.discovery.conftest import DAY, FakeClock, StopWhenIdle, assessment, student_doc, subject
from tests.faults.crashkit import RESULTS, CountingScreen, Crash, make_recordings


def test_crash_between_send_and_watermark_save_rerun_resends_results_stay_single(
    mongo, make_settings, fault_worker_settings, sqs_client, make_queue, audio_server, loaded_model, monkeypatch
):
    db = mongo["nipun"]
    n_docs = 12  # 24 rows, pages of 10
    recs = make_recordings(2 * n_docs, 17)
    t0 = dt.datetime(2025, 12, 20, 4, tzinfo=dt.timezone.utc)
    docs = [
        student_doc(
            assessment(
                teacher=[
                    subject(url=audio_server.put(f"/d{i}t.wav", recs[2 * i]), created=t0 + dt.timedelta(seconds=i))
                ],
                admin=[
                    subject(
                        url=audio_server.put(f"/d{i}a.wav", recs[2 * i + 1]),
                        created=t0 + dt.timedelta(seconds=i, hours=5),
                    )
                ],
            )
        )
        for i in range(n_docs)
    ]
    db["student_assessment_record"].insert_many(docs)
    url = make_queue(visibility=30)
    settings = make_settings(test_date=DAY, sqs_queue_url=url, discovery_batch_size=10)
    clock = FakeClock(dt.datetime.now(dt.timezone.utc))
    real_advance = StateRepository.advance_watermark
    calls = {"n": 0}

    def dies_on_second_page(self: StateRepository, *a: Any, **k: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 2:  # page 1 saved, page 2 sent but its watermark never written
            raise Crash("discovery killed before the watermark save")
        return real_advance(self, *a, **k)

    monkeypatch.setattr(StateRepository, "advance_watermark", dies_on_second_page)
    with pytest.raises(Crash):
        build_service(settings, db, SqsQueue(sqs_client, url), stop=StopWhenIdle(), clock=clock, holder="dead").run(
            "backfill"
        )
    attrs = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    sent_before = int(attrs["ApproximateNumberOfMessages"])
    assert sent_before == 20  # two pages were sent, only the first one's watermark was saved
    monkeypatch.setattr(StateRepository, "advance_watermark", real_advance)

    clock.advance(3600)  # the dead run's lease expired
    report = build_service(settings, db, SqsQueue(sqs_client, url), stop=StopWhenIdle(), clock=clock).run("incremental")
    attrs = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    in_queue = int(attrs["ApproximateNumberOfMessages"])
    # nothing lost: the 4 rows never sent are sent now; page 2 is either re-sent or recognised as just enqueued
    assert report.failed == 0 and in_queue >= 24

    screen = CountingScreen(loaded_model)
    wsettings = fault_worker_settings(url)
    w = build_worker(
        wsettings,
        sqs_client=sqs_client,
        db=db,
        model_version=loaded_model.version,
        screen=screen,
        policy=AnyOf((IdleShutdown(3.0),)),
        worker_id="after-crash",
        defer_seconds=1,
    )
    stats = w.run().stats
    assert db[RESULTS].count_documents({}) == 24
    assert sorted(screen.count.values()) == [1] * 24  # every row screened once, re-sent copies only acked
    assert stats["succeeded"] == 24 and stats["skipped_result_exists"] == in_queue - 24
    state = db["anomaly_pipeline_state"].find_one({"test_date": DAY})
    assert state["stats"]["enqueued"] >= 24
