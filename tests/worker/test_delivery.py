"""At-least-once delivery: redelivery, concurrent twins, write failures, failed deletes, backoff,
heartbeats and the access-denied breaker."""

from __future__ import annotations

import threading
import time
from typing import Any

from anomaly_cli.adapters.sqs import SqsQueue
from anomaly_cli.worker import outcome as O
from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown, MaxMessages
from tests.worker.conftest import make_item, wait_until


class RecordingQueue(SqsQueue):
    """The real queue adapter, remembering visibility changes."""

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.visibility_calls: list[list[tuple[str, str, int]]] = []

    def change_visibility_batch(self, items):  # type: ignore[override]
        self.visibility_calls.append(list(items))
        return super().change_visibility_batch(items)


def test_same_message_twice_in_one_batch_is_screened_once(rig, recordings):
    item = make_item(rig.server.put("/a.wav", recordings["child1.wav"]), n=1)
    rig.send(item)
    rig.send(item)

    report = rig.run(policy=AnyOf((MaxMessages(2),)))

    assert rig.screen.total == 1 and rig.server.hits["/a.wav"] == 1
    assert rig.results.count_documents({}) == 1
    assert report.stats["succeeded"] == 1 and report.stats["skipped_result_exists"] == 1
    assert rig.counts() == {"visible": 0, "in_flight": 0}


def test_concurrent_deliveries_to_two_workers_screen_once_and_keep_the_first_result(rig, recordings, events):
    url = rig.server.put("/slow.wav", recordings["child2.wav"], delay=1.0)
    item = make_item(url, n=1)
    rig.send(item)
    rig.send(item)
    settings = rig.settings(batch_size=1, max_concurrency=1)
    workers = [rig.worker(settings=settings, policy=AnyOf((IdleShutdown(2.5),)), defer_seconds=1) for _ in range(2)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    wait_until(lambda: rig.results.count_documents({}) == 1, timeout=30)
    assert not events.named("item_failed_pre_inference"), [
        e["reason"] for e in events.named("item_failed_pre_inference")
    ]
    first = rig.results.find_one({"_id": item.result_id})
    for t in threads:
        t.join(timeout=60)

    assert rig.screen.total == 1 and rig.server.hits["/slow.wav"] == 1
    assert rig.results.find_one({"_id": item.result_id}) == first
    assert rig.counts() == {"visible": 0, "in_flight": 0}
    kinds = [w.stats.counts for w in workers]
    assert sum(k[O.SUCCEEDED] for k in kinds) == 1
    assert sum(k[O.DEFERRED] for k in kinds) >= 1 and sum(k[O.RESULT_EXISTS] for k in kinds) == 1


class _FlakyResults:
    """A results collection whose bulk writes fail (everything else is the Mongo double)."""

    def __init__(self, inner: Any, exc: BaseException):
        self._inner, self._exc = inner, exc

    def bulk_write(self, *a: Any, **k: Any) -> Any:
        raise self._exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _DbWith:
    def __init__(self, db: Any, name: str, coll: Any):
        self._db, self._name, self._coll = db, name, coll

    def __getitem__(self, name: str) -> Any:
        return self._coll if name == self._name else self._db[name]


def test_mongo_write_failure_leaves_the_message_unacked_and_pauses_the_loop(rig, recordings, events):
    from pymongo.errors import AutoReconnect

    item = make_item(rig.server.put("/a.wav", recordings["child1.wav"]), n=1)
    rig.send(item)
    flaky = _FlakyResults(rig.results, AutoReconnect("primary stepped down"))
    db = _DbWith(rig.db, "anomaly_detection_results", flaky)

    report = rig.run(policy=AnyOf((MaxMessages(1),)), db=db)

    assert rig.results.count_documents({}) == 0
    assert report.stats["transient"] == 1 and report.stats["acked"] == 0
    assert rig.counts() == {"visible": 0, "in_flight": 1}
    assert len(events.named("mongo_unavailable")) == 1


def test_refused_write_also_leaves_the_message_unacked(rig, recordings):
    from pymongo.errors import OperationFailure

    rig.send(make_item(rig.server.put("/a.wav", recordings["child1.wav"]), n=1))
    db = _DbWith(rig.db, "anomaly_detection_results", _FlakyResults(rig.results, OperationFailure("no", code=13)))

    report = rig.run(policy=AnyOf((MaxMessages(1),)), db=db)

    assert report.stats["transient"] == 1 and rig.counts()["in_flight"] == 1


class _FailOnceDeletes:
    """An SQS client whose first DeleteMessageBatch reports the first entry in ``Failed[]``."""

    def __init__(self, inner: Any):
        self._inner, self.calls = inner, 0

    def delete_message_batch(self, **kw: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            first, rest = kw["Entries"][0], kw["Entries"][1:]
            resp = self._inner.delete_message_batch(QueueUrl=kw["QueueUrl"], Entries=rest) if rest else {}
            return {
                "Successful": resp.get("Successful", []),
                "Failed": [{"Id": first["Id"], "Code": "InternalError", "Message": "try again", "SenderFault": False}],
            }
        return self._inner.delete_message_batch(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_failed_delete_entry_is_retried_by_the_adapter_alone(rig, recordings, events):
    """One layer retries an ack: the adapter resends only the entry ``Failed[]`` named, the worker
    adds no attempts of its own (2 calls for the chunk, not 3 x 2)."""
    for n in range(2):
        rig.send(make_item(rig.server.put(f"/c{n}.wav", recordings[f"child{n}.wav"]), n=n))
    client = _FailOnceDeletes(rig.sqs)
    sleeps: list[float] = []
    queue = SqsQueue(client, rig.queue_url, sleep=sleeps.append)

    report = rig.run(policy=AnyOf((MaxMessages(2),)), queue=queue)

    assert client.calls == 2 and len(sleeps) == 1 and 0.1 <= sleeps[0] <= 0.2  # SQS_BATCH's first wait
    assert not events.named("ack_failed")
    assert report.stats["acked"] == 2 and report.stats["ack_failed"] == 0
    assert rig.counts() == {"visible": 0, "in_flight": 0}


def test_delete_entry_failing_past_the_budget_is_logged_and_left_to_come_back(rig, recordings, events):
    rig.send(make_item(rig.server.put("/c0.wav", recordings["child0.wav"]), n=0))
    client = _FailOnceDeletes(rig.sqs)
    queue = SqsQueue(client, rig.queue_url, retries=0, sleep=lambda s: None)

    report = rig.run(policy=AnyOf((MaxMessages(1),)), queue=queue)

    assert client.calls == 1  # a budget of one call: the worker does not try again on its own
    assert events.named("ack_failed")[0]["errors"] == ["InternalError"]
    assert report.stats["acked"] == 0 and report.stats["ack_failed"] == 1
    assert rig.counts()["in_flight"] == 1  # its result is durable: the redelivery is a result_exists


def test_retry_visibility_grows_with_the_receive_count(rig):
    assert [O.retry_visibility(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert O.retry_visibility(30) == O.RETRY_MAX_SECONDS
    item = make_item(rig.server.put("/busy.wav", b"x", status=503), n=1)
    rig.send(item)
    queue = RecordingQueue(rig.sqs, rig.queue_url)
    seen = []
    for _ in range(3):
        rig.run(policy=AnyOf((MaxMessages(1),)), queue=queue)
        seen.append(queue.visibility_calls[-1][0][2])
        # make it visible again at once (stands in for waiting out the backoff)
        msgs = rig.sqs.receive_message(QueueUrl=rig.queue_url, VisibilityTimeout=0, WaitTimeSeconds=0)
        assert not msgs.get("Messages")
        handle = queue.visibility_calls[-1][0][1]
        rig.sqs.change_message_visibility(QueueUrl=rig.queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert seen == [10, 20, 40]


def test_heartbeat_keeps_a_slow_item_from_redelivery(rig, recordings):
    url = rig.server.put("/slow.wav", recordings["child3.wav"], delay=5.0)
    item = make_item(url, n=1)
    rig.send(item)
    settings = rig.settings(visibility_timeout_seconds=3, fetch_read_timeout_seconds=15, fetch_deadline_seconds=20)
    worker = rig.worker(settings=settings, policy=AnyOf((MaxMessages(1),)), heartbeat_fraction=1 / 3)
    thread = threading.Thread(target=worker.run)
    thread.start()
    wait_until(lambda: rig.server.active == 1)  # the download is in flight
    stolen = []
    while thread.is_alive():  # a second consumer polls during the whole slow download
        stolen += rig.sqs.receive_message(QueueUrl=rig.queue_url, WaitTimeSeconds=0).get("Messages", [])
        time.sleep(0.25)
    thread.join()

    assert stolen == []
    assert rig.server.hits["/slow.wav"] == 1 and rig.screen.total == 1
    assert worker.heartbeat.extended >= 2
    assert rig.results.count_documents({}) == 1


def test_a_run_of_access_denied_answers_stops_the_worker(rig, events):
    from anomaly_cli.errors import CredentialsProblem

    items = [make_item(rig.server.put(f"/d{n}.wav", b"x", status=403), n=n) for n in range(5)]
    for item in items:
        rig.send(item)
    settings = rig.settings(access_denied_limit=3, batch_size=5, max_concurrency=1)

    report = rig.run(settings=settings, policy=AnyOf((IdleShutdown(10.0),)))

    assert report.reason == "credentials" and isinstance(report.error, CredentialsProblem)
    assert rig.results.count_documents({}) == 2  # terminal results stop at the breaker
    assert report.stats["released"] == 3
    assert rig.counts() == {"visible": 3, "in_flight": 0}
