"""GIVEN messages on moto SQS WHEN a worker runs THEN each outcome of the issue happens."""

from __future__ import annotations

import datetime as dt

from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown, MaxMessages
from tests.worker.conftest import TEST_DATE, make_item


def test_success_writes_result_then_acks(rig, recordings, events):
    url = rig.server.put("/a.wav", recordings["child1.wav"])
    item = make_item(url, n=1)
    rig.send(item)

    report = rig.run(policy=AnyOf((MaxMessages(1),)))

    doc = rig.results.find_one({"_id": item.result_id})
    assert doc is not None and doc["processing"]["status"] == "ok"
    assert doc["source"]["test_date"] == dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc)
    assert doc["processing"]["attempt"] == 1 and doc["processing"]["worker_id"] == "test-worker"
    assert rig.results.count_documents({"source.test_date": dt.datetime(2025, 12, 20)}) == 1
    assert rig.counts() == {"visible": 0, "in_flight": 0}
    assert report.reason == "max_messages" and report.stats["succeeded"] == 1
    names = events.names()
    for name in (
        "worker_started",
        "messages_polled",
        "message_buffered",
        "batch_dispatched",
        "batch_processing_started",
        "existing_results_checked",
        "eligible_keys_resolved",
        "inference_batch_started",
        "feature_build_completed",
        "inference_batch_completed",
        "results_upserted",
        "processed_items_acked",
        "batch_processed",
        "worker_stopped",
    ):
        assert name in names, name
    # the result write precedes the ack
    assert names.index("results_upserted") < names.index("processed_items_acked")


def test_permanent_failures_become_terminal_results_and_are_acked(rig, recordings):
    items = {
        "missing": make_item(rig.server.base + "/missing.wav", n=1),
        "corrupt": make_item(rig.server.put("/corrupt.wav", recordings["corrupt.wav"]), n=2),
        "forbidden": make_item(rig.server.put("/f.wav", b"x", status=403), n=3),
        "not_allowed": make_item("https://evil.example.org/a.wav", n=4),
    }
    for item in items.values():
        rig.send(item)

    rig.run(policy=AnyOf((MaxMessages(4),)))

    docs = {k: rig.results.find_one({"_id": i.result_id}) for k, i in items.items()}
    assert all(d is not None and d["processing"]["status"] == "failed" for d in docs.values())
    assert all(d["inference"]["is_anomaly"] for d in docs.values())
    assert docs["missing"]["processing"]["error"]["code"] == "not_found"
    assert docs["missing"]["inference"]["reason_codes"] == ["unavailable"]
    assert docs["forbidden"]["processing"]["error"]["code"] == "access_denied"
    assert docs["not_allowed"]["processing"]["error"]["code"] == "url_not_allowed"
    assert docs["corrupt"]["inference"]["reason_codes"] == ["corrupt"]
    assert docs["corrupt"]["processing"]["error"]["stage"] == "decode"
    assert rig.counts() == {"visible": 0, "in_flight": 0}


def test_transient_failure_is_not_acked_and_backs_off(rig, recordings, events):
    url = rig.server.put("/busy.wav", b"x", status=503)
    item = make_item(url, n=1)
    rig.send(item)

    report = rig.run(policy=AnyOf((MaxMessages(1),)))

    assert rig.results.count_documents({}) == 0
    assert report.stats["transient"] == 1
    failed = events.named("item_failed_pre_inference")
    assert failed and failed[0]["stage"] == "fetch" and failed[0]["terminal"] is False
    # not acked, and not visible right away: its visibility was set to the retry backoff
    assert rig.counts() == {"visible": 0, "in_flight": 1}


def test_existing_result_is_acked_without_screening(rig, recordings):
    url = rig.server.put("/a.wav", recordings["child1.wav"])
    item = make_item(url, n=1)
    rig.send(item)
    rig.run(policy=AnyOf((MaxMessages(1),)))
    first = rig.results.find_one({"_id": item.result_id})
    rig.send(item)  # a redelivery / rerun

    report = rig.run(policy=AnyOf((MaxMessages(1),)))

    assert report.stats["skipped_result_exists"] == 1
    assert rig.screen.total == 1
    assert rig.results.find_one({"_id": item.result_id}) == first
    assert rig.counts() == {"visible": 0, "in_flight": 0}


def test_malformed_message_is_logged_with_its_id_and_left_for_the_dlq(rig, recordings, events):
    good = make_item(rig.server.put("/a.wav", recordings["child1.wav"]), n=1)
    bad_id = rig.send(good, body='{"not": "a work item"}')
    rig.send(good)

    report = rig.run(policy=AnyOf((MaxMessages(2),)))

    bad = events.named("message_malformed")
    assert [b["message_id"] for b in bad] == [bad_id]
    assert report.stats["malformed"] == 1 and report.stats["succeeded"] == 1
    assert rig.counts()["in_flight"] == 1  # unacked: redrive will move it to the DLQ


def test_rescreen_attribute_overwrites_the_existing_result(rig, recordings):
    url = rig.server.put("/a.wav", recordings["child1.wav"])
    item = make_item(url, n=1)
    rig.send(item)
    rig.run(policy=AnyOf((MaxMessages(1),)))
    first = rig.results.find_one({"_id": item.result_id})
    rig.send(item, rescreen=True)

    rig.run(policy=AnyOf((MaxMessages(1),)))

    again = rig.results.find_one({"_id": item.result_id})
    assert rig.screen.total == 2
    assert again["processing"]["screen_count"] == 2
    assert again["processing"]["processed_at"] > first["processing"]["processed_at"]
    assert again["created_at"] == first["created_at"]


def test_idle_exit_ends_an_empty_run_cleanly(rig):
    report = rig.run(policy=AnyOf((IdleShutdown(0.3),)))
    assert report.reason == "idle" and report.error is None


def test_health_file_is_touched(rig, tmp_path):
    health = tmp_path / "health"
    rig.run(policy=AnyOf((IdleShutdown(0.3),)), health_file=str(health))
    assert health.exists()


def test_result_document_answers_the_validation_queries(rig, recordings):
    for n in range(3):
        rig.send(make_item(rig.server.put(f"/c{n}.wav", recordings[f"child{n}.wav"]), n=n))
    rig.run(policy=AnyOf((MaxMessages(3),)))
    query = {"source.test_date": dt.datetime.fromisoformat(TEST_DATE + "T00:00:00+00:00")}
    assert rig.results.count_documents(query) == 3
    docs = list(rig.results.find(query).limit(5))
    assert {"source", "processing", "inference", "features", "audio"} <= set(docs[0])
    assert len(docs[0]["source"]) == 13
