"""A page's SendMessageBatch calls go out DISCOVERY_SEND_CONCURRENCY at a time (issue 18).

GIVEN a page of 40 rows (4 chunks of 10) and a queue whose calls wait until 4 of them are in
flight at once, THEN discovery with concurrency 4 sends the page (with 1 the barrier would never
fill and the calls would time out), every row once, and the watermark is the page's last row.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from tests.discovery.conftest import DAY, bodies


def test_chunks_of_a_page_are_sent_concurrently(seed_bulk, make_service, sqs_client, queue_url):
    seed_bulk(20)  # 40 rows
    barrier = threading.Barrier(4, timeout=20)
    in_flight, peak, lock = [0], [0], threading.Lock()

    class Together:
        def __init__(self, real: Any):
            self.real = real

        def send_message_batch(self, **kw: Any) -> Any:
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            barrier.wait()  # raises BrokenBarrierError unless 4 calls are in flight together
            try:
                return self.real.send_message_batch(**kw)
            finally:
                with lock:
                    in_flight[0] -= 1

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

    svc = make_service(client=Together(sqs_client), discovery_batch_size=40, discovery_send_concurrency=4)
    report = svc.run("backfill")
    sent = Counter((b["mongo_doc_id"], b["subject_id"]) for b in bodies(sqs_client, queue_url))
    assert peak[0] == 4
    assert report.status == "completed" and report.enqueued == 40 and len(sent) == 40 and set(sent.values()) == {1}
    assert svc.state.get(DAY)["watermark"] is not None
