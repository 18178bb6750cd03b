"""MongoDB unavailable for a window (``AutoReconnect`` / ``ServerSelectionTimeoutError`` on every
read and write of the worker): nothing is acked without its durable write, the same worker
recovers once Mongo is back, and it backs off instead of flooding the log."""

from __future__ import annotations

import threading
import time
from typing import Any

from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from tests.faults.crashkit import RESULTS, AllWritten, CountingScreen, Ledger, guarded, make_recordings, recorded
from tests.worker.conftest import make_item, wait_until


class Outage:
    """A switch: while on, every database call raises the next of ``kinds`` (in turn)."""

    def __init__(self) -> None:
        self.on = threading.Event()
        self.raised = 0
        self._n = 0

    def check(self) -> None:
        from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

        if self.on.is_set():
            self._n += 1
            self.raised += 1
            raise (AutoReconnect if self._n % 2 else ServerSelectionTimeoutError)("injected: primary unreachable")


class FlakyCollection:
    def __init__(self, coll: Any, outage: Outage):
        self._c, self._o = coll, outage

    def __getattr__(self, name: str) -> Any:
        return guarded(getattr(self._c, name), self._o.check)


class FlakyDb:
    def __init__(self, db: Any, outage: Outage):
        self._db, self._o = db, outage

    def __getitem__(self, name: str) -> FlakyCollection:
        return FlakyCollection(self._db[name], self._o)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_mongo_outage_window_no_ack_without_write_recovers_without_flooding(
    fault_worker_settings, sqs_client, make_queue, mongo, audio_server, loaded_model, events, monkeypatch
):
    from anomaly_cli.worker import outcome

    # production retries a transient failure after 10 s, 20 s, ...; 1 s here keeps the test short
    monkeypatch.setattr(outcome, "RETRY_BASE_SECONDS", 1)
    monkeypatch.setattr(outcome, "RETRY_MAX_SECONDS", 3)  # (15 min in production)
    n = 20
    url = make_queue(visibility=30)
    db = mongo["nipun"]
    recs = make_recordings(n, 5)
    items = [make_item(audio_server.put(f"/m{i}.wav", recs[i]), n=i) for i in range(n)]
    for it in items:
        sqs_client.send_message(QueueUrl=url, MessageBody=it.to_body())
    outage, ledger, screen = Outage(), Ledger(db[RESULTS]), CountingScreen(loaded_model)
    settings = fault_worker_settings(url)
    from anomaly_cli.worker.factory import build_worker

    worker = build_worker(
        settings,
        sqs_client=recorded(sqs_client, ledger),
        db=FlakyDb(db, outage),
        model_version=loaded_model.version,
        screen=screen,
        policy=AnyOf((IdleShutdown(90.0), AllWritten(db[RESULTS], n))),
        worker_id="outage",
        defer_seconds=1,
    )
    outage.on.set()  # Mongo goes away after start-up (indexes were ensured), before the first poll
    report: dict[str, Any] = {}
    th = threading.Thread(target=lambda: report.update(r=worker.run()), daemon=True)
    th.start()
    wait_until(lambda: outage.raised >= 3, timeout=60)  # the worker really hit the outage, several times
    window_end = time.monotonic() + 2.0
    while time.monotonic() < window_end:
        time.sleep(0.1)
    during = len(events.records)
    failures_during = outage.raised
    outage.on.clear()  # Mongo is back: the same worker, no restart
    th.join(timeout=240)
    assert not th.is_alive()

    assert report["r"].reason == "idle" and report["r"].error is None
    assert not ledger.acked_without_result
    assert db[RESULTS].count_documents({}) == n and set(ledger.acked) == {i.result_id for i in items}
    # backoff, not a flood: ~5 s of outage produced a handful of attempts and warnings, not one per message per poll
    assert failures_during <= 20, failures_during
    assert len(events.named("mongo_unavailable")) <= 6
    assert during <= 60, [e for e, _ in events.records][:80]
    # messages that failed during the outage were retried with a visibility backoff and screened again after it;
    # none was screened more than twice (once before the write failed, once after recovery)
    assert max(screen.count.values()) <= 2
