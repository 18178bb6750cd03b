"""WorkerMetrics and the queue-depth collector, unit level (the scrape of a real run is in
tests/e2e/test_metrics.py)."""

from __future__ import annotations

from anomaly_cli.worker import outcome as O
from anomaly_cli.worker.metrics import QueueDepth, WorkerMetrics
from anomaly_cli.worker.stats import WorkerStats


def samples(metrics: WorkerMetrics) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def test_counts_made_outside_a_batch_reach_the_outcome_counter():
    """GIVEN the stats object the loop counts with WHEN it releases held messages at shutdown and
    sees a malformed body THEN both are outcomes, beside the batch's own."""
    m = WorkerMetrics(model_version="v9")
    stats = WorkerStats(metrics=m)
    stats.add("received", 4)
    stats.add(O.RELEASED, 2)
    stats.add(O.MALFORMED)
    stats.record([O.Outcome("m1", O.TRANSIENT, "r1", stage="fetch", error_code="fetch_transient")])
    s = samples(m)
    assert s[("anomaly_worker_messages_received_total", ())] == 4
    assert s[("anomaly_worker_outcomes_total", (("error_code", ""), ("kind", "released")))] == 2
    assert s[("anomaly_worker_outcomes_total", (("error_code", ""), ("kind", "malformed")))] == 1
    assert s[("anomaly_worker_outcomes_total", (("error_code", "fetch_transient"), ("kind", "transient")))] == 1
    assert s[("anomaly_worker_model_info", (("version", "v9"),))] == 1
    # every stage is there from the first scrape, at zero
    for stage in ("fetch", "decode", "features", "inference", "write"):
        assert s[("anomaly_worker_stage_seconds_count", (("stage", stage),))] == 0


def test_queue_depth_reads_the_dlq_from_the_redrive_policy_and_caches(sqs_client, make_queue):
    url = make_queue(dlq=True)
    dlq = sqs_client.get_queue_url(QueueName=url.rsplit("/", 1)[1] + "-dlq")["QueueUrl"]
    sqs_client.send_message(QueueUrl=dlq, MessageBody="parked")
    now = [0.0]
    m = WorkerMetrics(model_version="v1")
    m.registry.register(QueueDepth(sqs_client, url, clock=lambda: now[0]))
    s = samples(m)
    assert s[("anomaly_queue_messages", (("queue", "dlq"), ("state", "visible")))] == 1
    assert s[("anomaly_queue_messages", (("queue", "work"), ("state", "visible")))] == 0
    sqs_client.send_message(QueueUrl=url, MessageBody="x")
    assert samples(m)[("anomaly_queue_messages", (("queue", "work"), ("state", "visible")))] == 0  # cached
    now[0] = 31.0
    assert samples(m)[("anomaly_queue_messages", (("queue", "work"), ("state", "visible")))] == 1


def test_an_unreadable_queue_is_left_out_of_the_scrape_not_failing_it(sqs_client):
    m = WorkerMetrics(model_version="v1")
    m.registry.register(QueueDepth(sqs_client, "https://sqs.ap-south-1.amazonaws.com/123456789012/gone"))
    s = samples(m)
    assert not [k for k in s if k[0] == "anomaly_queue_messages"]
    assert ("anomaly_worker_messages_received_total", ()) in s
