"""``anomaly work --metrics-port``: scraped over HTTP while the real command runs against the moto
server (SQS + S3 over HTTP, real screening processes), then the scraped counts are checked against
the result documents the run wrote.

GIVEN recordings in moto's S3 (normal, silent, not audio, one missing key) queued as work items
WHEN the real ``anomaly work`` runs with ``--metrics-port`` and a scraper polls ``/metrics``
THEN a scrape taken during the run counts every message by outcome and error code as the results
do, the stage histograms hold one observation per item and stage with the same sums as the
result documents' timings (measured in the screening processes), and bytes fetched add up.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
from typer.testing import CliRunner

from anomaly_cli.cli import exit_codes
from anomaly_cli.cli.app import app
from tests.e2e.conftest import Stack
from tests.worker.conftest import make_item, recordings  # noqa: F401


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a scrape as {(name, sorted labels): value}, with prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class Scraper(threading.Thread):
    """Scrapes ``url`` every 0.2 s; keeps the first scrape in which ``done`` holds."""

    def __init__(self, url: str, done: Any, ready_file: Any):
        super().__init__(daemon=True)
        self.url, self.done, self.ready_file = url, done, ready_file
        self.ready_seen = False
        self.scrapes = 0
        self.final: dict | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and self.final is None:
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    samples = parse(r.read().decode())
            except OSError:
                time.sleep(0.2)
                continue
            self.scrapes += 1
            self.ready_seen = self.ready_seen or self.ready_file.exists()
            if self.done(samples):
                self.final = samples
            time.sleep(0.2)


@pytest.fixture
def queued(stack: Stack, recordings):
    """Seven items on the queue: five recordings that screen, one that is not audio, one missing key."""
    names = ["child0.wav", "child1.wav", "child2.wav", "child0.m4a", "silent.wav", "corrupt.wav"]
    urls = [stack.put(f"m/{n}", recordings[n]) for n in names] + [f"s3://{stack.bucket}/m/gone.wav"]
    for i, url in enumerate(urls):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=make_item(url, n=i).to_body())
    return urls


def test_scrape_during_a_real_run_matches_the_results_written(stack, queued, monkeypatch, model_dir, tmp_path):
    port = free_port()
    ready = tmp_path / "run" / "ready"
    env = stack.env(
        MODEL_DIR=str(model_dir),
        CPU_WORKERS="1",
        BATCH_SIZE="3",
        FLUSH_SECONDS="0.2",
        SQS_WAIT_SECONDS="1",
        SQS_VISIBILITY_TIMEOUT="30",
        METRICS_ADDRESS="127.0.0.1",
        WORKER_ADHOC_ONLY="true",  # the queued items are ad-hoc: no source collection behind them
    )
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    n = len(queued)
    scraper = Scraper(
        f"http://127.0.0.1:{port}/metrics",
        lambda s: sum(v for (name, _), v in s.items() if name == "anomaly_worker_outcomes_total") >= n,
        ready,
    )
    scraper.start()
    try:
        # --idle-exit: the run ends a few seconds after the queue is empty; the scraper has its
        # final scrape by then (taken while the worker was still running)
        result = CliRunner().invoke(
            app, ["work", "--metrics-port", str(port), "--idle-exit", "4", "--ready-file", str(ready)]
        )
    finally:
        scraper.stop.set()
        scraper.join(timeout=10)
        from anomaly_cli.log import configure_logging

        configure_logging("WARNING")
    assert result.exit_code == exit_codes.RET_OK, result.output
    s = scraper.final
    assert s is not None, f"no scrape saw {n} outcomes in {scraper.scrapes} scrapes"

    docs = list(stack.db["anomaly_detection_results"].find({}))
    assert len(docs) == n
    ok = [d for d in docs if d["processing"]["status"] == "ok"]
    failed = Counter(d["processing"]["error"]["code"] for d in docs if d["processing"]["status"] == "failed")
    assert failed == {"undecodable": 1, "not_found": 1}, failed

    assert value(s, "anomaly_worker_messages_received_total") == n
    assert value(s, "anomaly_worker_outcomes_total", kind="succeeded", error_code="") == len(ok)
    for code, count in failed.items():
        assert value(s, "anomaly_worker_outcomes_total", kind="failed_terminal", error_code=code) == count
    assert value(s, "anomaly_worker_messages_acked_total") == n
    # the verdict at screening time; a duplicate flag comes later (child0.m4a re-encodes child0.wav)
    codes = [set(d["inference"]["reason_codes"]) for d in ok]
    assert value(s, "anomaly_worker_anomalies_total") == sum(bool(c - {"duplicate"}) for c in codes) >= 1
    assert value(s, "anomaly_worker_duplicates_flagged_total") == sum("duplicate" in c for c in codes) == 1

    # stage histograms: one observation per item and stage, and the same times as the documents
    def timed(stage: str) -> list[float]:
        return [d["processing"]["timings_ms"][stage] for d in docs if d["processing"]["timings_ms"].get(stage)]

    for stage in ("fetch", "decode", "features", "inference"):
        times = timed(stage)
        assert value(s, "anomaly_worker_stage_seconds_count", stage=stage) == len(times), stage
        assert value(s, "anomaly_worker_stage_seconds_sum", stage=stage) == pytest.approx(sum(times) / 1000, abs=1e-3)
    assert len(timed("features")) == len(ok)  # measured in the screening process, counted in the parent
    assert value(s, "anomaly_worker_stage_seconds_count", stage="write") >= 1
    fetched = sum(d["audio"]["bytes"] or 0 for d in docs if d["processing"]["timings_ms"].get("decode") is not None)
    assert value(s, "anomaly_worker_fetched_bytes_total") == fetched > 0

    assert value(s, "anomaly_worker_model_info", version=ok[0]["processing"]["model_version"]) == 1
    assert value(s, "anomaly_worker_access_denied_breaker_open") == 0
    assert value(s, "anomaly_worker_screening_process_restarts_total") == 0
    assert ("anomaly_worker_in_flight_messages", ()) in s and ("anomaly_worker_held_messages", ()) in s
    assert value(s, "anomaly_worker_items_per_second") > 0
    # SQS's view, for the alerts: the DLQ is the RedrivePolicy's target, found by the worker
    assert ("anomaly_queue_messages", (("queue", "work"), ("state", "visible"))) in s
    assert value(s, "anomaly_queue_messages", queue="dlq", state="visible") == 0
    assert ("anomaly_queue_messages", (("queue", "dlq"), ("state", "in_flight"))) in s

    # ready while it ran (the model was loaded before the first scrape answered), not after
    assert scraper.ready_seen and not ready.exists()
    # the server is gone with the worker
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_a_metrics_port_in_use_is_a_configuration_error(stack, monkeypatch, model_dir):
    for k, v in stack.env(
        MODEL_DIR=str(model_dir), CPU_WORKERS="1", METRICS_ADDRESS="127.0.0.1", WORKER_ADHOC_ONLY="true"
    ).items():
        monkeypatch.setenv(k, v)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["work", "--metrics-port", str(port), "--max-messages", "1"])
    from anomaly_cli.log import configure_logging

    configure_logging("WARNING")
    assert result.exit_code == exit_codes.RET_CONFIG, result.output
    assert "METRICS_PORT" in result.output
