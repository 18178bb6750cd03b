"""Visibility: an item slower than the visibility timeout is not processed twice while its worker
is alive (the heartbeat extends it), even with a second worker polling the same queue; when the
worker dies mid-download the message comes back and the second worker completes it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from anomaly_cli.adapters.storage import Fetcher
from anomaly_cli.config import Settings
from anomaly_cli.worker.factory import build_worker
from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
from tests.faults.crashkit import (
    RESULTS,
    AllWritten,
    CountingScreen,
    Crash,
    KillSwitch,
    Ledger,
    doomed_worker,
    make_recordings,
    recorded,
    shrink_claims,
    worker_settings,
)
from tests.worker.conftest import make_item, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
VISIBILITY = 3


def _settings(url: str, server: Any) -> Settings:
    return worker_settings(
        url,
        server.base,
        batch_size=1,
        max_concurrency=2,
        flush_seconds=0.1,
        visibility_timeout_seconds=VISIBILITY,
        fetch_deadline_seconds=60.0,
        fetch_read_timeout_seconds=30.0,
    )


class Received:
    """Counts receives per worker (SqsProxy's ledger hook)."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.count = 0

    def received(self, messages: list[dict[str, Any]]) -> None:
        self.count += len(messages)
        self.ledger.received(messages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


def test_slow_item_is_not_redelivered_while_its_worker_lives(sqs_client, make_queue, mongo, audio_server, loaded_model):
    url = make_queue(visibility=VISIBILITY)
    db = mongo["nipun"]
    item = make_item(audio_server.put("/slow.wav", make_recordings(1, 31)[0], delay=2 * VISIBILITY + 1), n=1)
    sqs_client.send_message(QueueUrl=url, MessageBody=item.to_body())
    settings = _settings(url, audio_server)
    screen = CountingScreen(loaded_model)
    ledger = Ledger(db[RESULTS])
    seen = [Received(ledger), Received(ledger)]
    workers = [
        build_worker(
            settings,
            sqs_client=recorded(sqs_client, seen[i]),
            db=db,
            model_version=loaded_model.version,
            screen=screen,
            fetcher=Fetcher(settings),
            policy=AnyOf((IdleShutdown(4 * VISIBILITY), AllWritten(db[RESULTS], 1))),
            worker_id=f"w{i}",
            defer_seconds=1,
            heartbeat_fraction=1 / 3,
        )
        for i in range(2)
    ]
    threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
    threads[0].start()
    wait_until(lambda: audio_server.active == 1, timeout=60)  # the download is in flight in worker 0
    threads[1].start()  # a second worker polls while the item takes over 2x its visibility timeout
    for t in threads:
        t.join(timeout=120)

    assert seen[1].count == 0, "delivered to the second worker while the first was alive"
    assert seen[0].count == 1, f"redelivered to its own worker: heartbeat extended {workers[0].heartbeat.extended}"
    assert audio_server.hits["/slow.wav"] == 1 and screen.total == 1
    assert db[RESULTS].find_one({"_id": item.result_id})["processing"]["worker_id"] == "w0"


def test_after_a_crash_mid_download_the_item_is_redelivered_and_completed(
    sqs_client, make_queue, mongo, audio_server, loaded_model
):
    # claims outlive a short visibility (30 s floor); shrink them like the crash matrix does
    request_undo = shrink_claims(VISIBILITY)
    try:
        _crash_mid_download(sqs_client, make_queue, mongo, audio_server, loaded_model)
    finally:
        request_undo()


def _crash_mid_download(sqs_client: Any, make_queue: Any, mongo: Any, audio_server: Any, loaded_model: Any) -> None:
    url = make_queue(visibility=VISIBILITY)
    db = mongo["nipun"]
    item = make_item(audio_server.put("/slow.wav", make_recordings(1, 32)[0], delay=VISIBILITY + 1), n=1)
    sqs_client.send_message(QueueUrl=url, MessageBody=item.to_body())
    settings = _settings(url, audio_server)
    ledger = Ledger(db[RESULTS])
    switch = KillSwitch("never", 0)
    doomed, doomed_screen = doomed_worker(
        settings,
        sqs=sqs_client,
        db=db,
        model=loaded_model,
        switch=switch,
        ledger=ledger,
        worker_id="doomed",
        policy=AnyOf((IdleShutdown(30.0),)),
    )

    def run() -> None:
        try:
            doomed.run()
        except Crash:
            pass

    threading.Thread(target=run, daemon=True).start()
    wait_until(lambda: audio_server.active == 1, timeout=60)
    switch.dead.set()  # the worker dies while its download is in flight: no heartbeat, no release
    died_at = time.monotonic()

    screen = CountingScreen(loaded_model)
    taker = build_worker(
        settings,
        sqs_client=sqs_client,
        db=db,
        model_version=loaded_model.version,
        screen=screen,
        fetcher=Fetcher(settings),
        worker_id="taker",
        policy=AnyOf((IdleShutdown(30.0), AllWritten(db[RESULTS], 1))),
        defer_seconds=1,
    )
    taker.run()

    doc = db[RESULTS].find_one({"_id": item.result_id})
    assert doc["processing"]["worker_id"] == "taker" and doc["processing"]["attempt"] >= 2
    assert screen.total == 1 and doomed_screen.total == 0
    assert audio_server.hits["/slow.wav"] == 2  # fetched again after the redelivery
    assert time.monotonic() - died_at >= 1.0  # it came back only after its visibility ran out
    assert not ledger.acked_without_result
