"""SQS faults: throttling and 5xx on receive / send / delete, partial ``SendMessageBatch`` and
``DeleteMessageBatch`` failures. The watermark never passes an unsent row, re-running discovery
loses nothing, and a failed delete is only a harmless redelivery."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from typing import Any

import pytest

from anomaly_cli.adapters.sqs import SqsQueue
from anomaly_cli.discovery.service import build_service
from anomaly_cli.discovery.state import watermark_key
from anomaly_cli.worker.factory import build_worker
from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from tests.conftest import drain_queue
from tests.discovery.conftest import DAY, StopWhenIdle, assessment, student_doc, subject
from tests.faults.crashkit import RESULTS, CountingScreen, Ledger, make_recordings, recorded
from tests.faults.sqsfaults import FaultySqs
from tests.worker.conftest import make_item


def row_key(body: dict[str, Any]) -> tuple[Any, ...]:
    return (
        dt.datetime.fromisoformat(body["source_updated_at"]),
        body["mongo_doc_id"],
        body["record_type"],
        body["subject_id"],
    )


def seed_rows(source: Any, n_docs: int) -> int:
    """``n_docs`` students with a teacher and an admin reading row each, some sharing timestamps."""
    t0 = dt.datetime(2025, 12, 20, 4, tzinfo=dt.timezone.utc)
    docs = [
        student_doc(
            assessment(
                teacher=[subject(created=t0 + dt.timedelta(seconds=i // 3))],
                admin=[subject(created=t0 + dt.timedelta(seconds=i // 3, hours=5))],
            )
        )
        for i in range(n_docs)
    ]
    source.insert_many(docs)
    return 2 * n_docs


@pytest.mark.parametrize("seed", [3, 4])
def test_discovery_under_throttling_5xx_and_partial_sends_loses_nothing(
    seed, mongo, make_settings, sqs_client, make_queue
):
    db = mongo["nipun"]
    total = seed_rows(db["student_assessment_record"], 30)
    url = make_queue()
    # a few rows fail with a sender fault in the first run (never retried by the adapter): the
    # watermark must stop before the first of them
    doomed: set[str] = set()

    def entry_fault(op: str, entry: dict[str, Any]) -> dict[str, Any] | None:
        body = json.loads(entry["MessageBody"])
        if body["subject_id"] in doomed:
            return {"Id": entry["Id"], "Code": "InvalidParameterValue", "Message": "injected", "SenderFault": True}
        return None

    rng = random.Random(seed)
    rows = [
        s["subject_id"]
        for d in db["student_assessment_record"].find()
        for a in d["assessments"]
        for r in ("teacher_record", "admin_record")
        for s in a[r]["subjects"]
    ]
    doomed.update(rng.sample(rows, 3))
    client = FaultySqs(sqs_client, seed, ops=("SendMessageBatch",), rate=0.2, partial=0.15, entry_fault=entry_fault)
    settings = make_settings(test_date=DAY, sqs_queue_url=url, discovery_batch_size=10)
    sent: list[dict[str, Any]] = []
    runs = 0
    for run in range(8):  # re-run until a clean run; the first runs meet the doomed rows
        runs += 1
        queue = SqsQueue(client, url, sleep=lambda s: None)
        try:
            report = build_service(settings, db, queue, stop=StopWhenIdle()).run(
                "backfill" if run == 0 else "incremental"
            )
            clean = report.failed == 0
        except Exception as e:  # noqa: BLE001 - a run may end on an SQS outage; the rerun continues
            clean = False
            assert "SQS" in str(e) or "Queue" in type(e).__name__, e
        batch = [json.loads(m["Body"]) for m in drain_queue(sqs_client, url, max_rounds=500)]
        sent += batch
        state = db["anomaly_pipeline_state"].find_one()
        if doomed and state and state.get("watermark"):
            wm = watermark_key(state)
            first_unsent = min(row_key(b) for b in _unsent_rows(db, doomed, sent))
            assert wm < first_unsent, (wm, first_unsent)
        if run == 1:
            doomed.clear()  # the sender fault was fixed: reruns send them
        if clean and not doomed:
            break
    assert client.injected, "no fault was injected"
    keys = [(b["mongo_doc_id"], b["record_type"], b["subject_id"]) for b in sent]
    assert len(set(keys)) == total, f"lost {total - len(set(keys))} rows after {runs} runs"


def _unsent_rows(db: Any, subject_ids: set[str], sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keys of the rows with ``subject_ids`` that were never sent, as message-like dicts."""
    sent_ids = {b["subject_id"] for b in sent}
    out = []
    for d in db["student_assessment_record"].find():
        for a in d["assessments"]:
            for rt, rec in (("teacher", "teacher_record"), ("admin", "admin_record")):
                for s in a[rec]["subjects"]:
                    if s["subject_id"] in subject_ids and s["subject_id"] not in sent_ids:
                        out.append(
                            {
                                "source_updated_at": s["subject_created_at"].isoformat(),
                                "mongo_doc_id": str(d["_id"]),
                                "record_type": rt,
                                "subject_id": s["subject_id"],
                            }
                        )
    return out or [
        {"source_updated_at": "9999-12-31T00:00:00+00:00", "mongo_doc_id": "", "record_type": "", "subject_id": ""}
    ]


def test_worker_under_receive_delete_faults_screens_each_item_once(
    fault_worker_settings, sqs_client, make_queue, mongo, audio_server, loaded_model, events
):
    n = 30
    url = make_queue(visibility=2)
    db = mongo["nipun"]
    recs = make_recordings(n, 9)
    items = [make_item(audio_server.put(f"/s{i}.wav", recs[i]), n=i) for i in range(n)]
    for i in range(0, n, 10):
        sqs_client.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(j), "MessageBody": it.to_body()} for j, it in enumerate(items[i : i + 10])],
        )
    # some deletes fail for good (the adapter gives up after its retries): those messages come back
    stubborn = {items[k].result_id for k in (2, 11, 23)}
    delete_failures: Counter[str] = Counter()

    def entry_fault(op: str, entry: dict[str, Any]) -> dict[str, Any] | None:
        # the first 3 acks of a stubborn message fail with a sender fault (never retried: each is one
        # delivery's ack), later ones work
        rid = ledger.receipt_to_rid.get(entry["ReceiptHandle"])
        if op == "DeleteMessageBatch" and rid in stubborn and delete_failures[rid] < 3:
            delete_failures[rid] += 1
            return {"Id": entry["Id"], "Code": "InternalError", "Message": "injected", "SenderFault": True}
        return None

    ledger = Ledger(db[RESULTS])
    faulty = FaultySqs(
        sqs_client, 21, ops=("ReceiveMessage", "DeleteMessageBatch"), rate=0.25, partial=0.1, entry_fault=entry_fault
    )
    screen = CountingScreen(loaded_model)
    settings = fault_worker_settings(url, visibility_timeout_seconds=2)
    worker = build_worker(
        settings,
        sqs_client=recorded(faulty, ledger),
        db=db,
        model_version=loaded_model.version,
        screen=screen,
        policy=AnyOf((IdleShutdown(20.0), _AllDone(db[RESULTS], n, sqs_client, url))),
        worker_id="faults",
        defer_seconds=1,
    )
    report = worker.run()

    assert report.error is None
    assert faulty.injected["ReceiveMessage:RequestThrottled"] + faulty.injected["ReceiveMessage:InternalError"] > 0
    assert set(delete_failures) == stubborn
    assert not ledger.acked_without_result
    assert db[RESULTS].count_documents({}) == n
    assert sorted(screen.count.values()) == [1] * n  # redeliveries of the stubborn three were not screened again
    assert report.stats["skipped_result_exists"] >= len(stubborn)  # ... they were recognised and acked
    assert events.named("ack_failed")
    assert _queue_total(sqs_client, url) == 0


class _AllDone:
    """Stop once every item has its result and the queue is empty (the stubborn ones came back and
    were acked), after a short quiet moment."""

    def __init__(self, results: Any, n: int, sqs: Any, url: str):
        self.results, self.n, self.sqs, self.url = results, n, sqs, url

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        return (
            idle_seconds >= 0.5 and self.results.count_documents({}) >= self.n and _queue_total(self.sqs, self.url) == 0
        )

    def receive_budget(self, received: int) -> None:
        return None


def _queue_total(sqs: Any, url: str) -> int:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
