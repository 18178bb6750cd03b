"""The whole pipeline over real HTTP (moto server): ``anomaly discover`` backfill, a worker until
idle, rows added later picked up by ``anomaly discover --mode incremental``, poison messages
redriven to the DLQ and replayed with ``anomaly replay-dlq``, and ``anomaly results inspect``.

Discover, replay-dlq and inspect are the real commands (CliRunner, configured only by the
environment an operator sets). The worker is the real worker built by ``build_worker`` with boto3
clients over HTTP and the real S3 fetcher; only its screen function is the real engine wrapped in
a counter, so "screened once" is counted, not inferred from result documents."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from anomaly_cli import synth
from anomaly_cli.audio.formats import encode
from anomaly_cli.cli import exit_codes
from anomaly_cli.cli.app import app
from tests.discovery.conftest import assessment, student_doc, subject
from tests.e2e.conftest import TEST_DATE, Stack
from tests.faults.crashkit import AllWritten, CountingScreen
from tests.worker.conftest import make_item

UTC = dt.timezone.utc


def cli(stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    for k, v in stack.env().items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    # the command pointed the JSON logs at CliRunner's (now closed) stderr; point them back
    from anomaly_cli.log import configure_logging

    configure_logging("WARNING")
    return result


def normal(seed: int, fmt: str = "wav") -> bytes:
    clip = synth.make_clip("normal", np.random.default_rng(seed), variant="plain", duration_s=6.0)
    return encode(clip.samples, clip.sr, fmt)


def add_students(
    stack: Stack, first: int, count: int, t0: dt.datetime, planted: dict[int, bytes] | None = None
) -> dict[str, bytes]:
    """``count`` students, each with a teacher and an admin reading row on TEST_DATE (and a math row);
    returns subject_id -> recording bytes."""
    audio: dict[str, bytes] = {}
    docs = []
    for i in range(first, first + count):
        rows = []
        for k, rt in enumerate(("t", "a")):
            sid = f"sub-{i}-{rt}"
            data = (planted or {}).get(2 * i + k) or normal(1000 + 2 * i + k, "m4a" if k else "wav")
            audio[sid] = data
            rows.append(
                subject(
                    sid=sid,
                    url=stack.put(f"{TEST_DATE}/{sid}.bin", data),
                    created=t0 + dt.timedelta(minutes=i, hours=5 * k),
                )
            )
        docs.append(
            student_doc(
                assessment(teacher=[rows[0], subject("गणित", created=t0)], admin=[rows[1]]), udise=f"2725120{i % 3:04d}"
            )
        )
    stack.db["student_assessment_record"].insert_many(docs)
    return audio


def run_worker(stack: Stack, model: Any, screen: CountingScreen, expect_results: int) -> Any:
    import boto3

    from anomaly_cli.adapters.storage import Fetcher
    from anomaly_cli.config import load_settings
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown

    settings = load_settings(
        {
            "batch_size": 5,
            "max_concurrency": 4,
            "flush_seconds": 0.2,
            "sqs_wait_seconds": 0,
            "visibility_timeout_seconds": 2,
            "fetch_retries": 1,
        },
        environ={**stack.env(), "AWS_REGION": "ap-south-1"},
        env_file=None,
    )
    s3 = boto3.client("s3", region_name="ap-south-1", endpoint_url=stack.endpoint)
    results = stack.db["anomaly_detection_results"]
    worker = build_worker(
        settings,
        sqs_client=stack.sqs,
        db=stack.db,
        model_version=model.version,
        screen=screen,
        fetcher=Fetcher(settings, s3),
        worker_id=f"e2e-{uuid.uuid4().hex[:4]}",
        policy=AnyOf((IdleShutdown(15.0), AllWritten(results, expect_results))),
    )
    return worker.run()


def test_discover_work_incremental_dlq_replay_inspect(stack, monkeypatch, loaded_model):
    t0 = dt.datetime(2025, 12, 20, 4, tzinfo=UTC)
    rng = np.random.default_rng(5)
    silent = synth.make_item("silent", rng).data
    corrupt = synth.make_item("corrupt", rng, variant="random").data
    audio = add_students(stack, 0, 6, t0, planted={3: silent, 8: corrupt})  # 12 rows, 2 planted anomalies
    planted = {"sub-1-a": "silent", "sub-4-t": "corrupt"}

    # 1. backfill through the real command
    r = cli(stack, monkeypatch, "discover", "--mode", "backfill", "--batch-size", "5", "--json")
    assert r.exit_code == exit_codes.RET_OK, r.output
    assert json.loads(r.stdout)["enqueued"] == 12

    # 2. poison: malformed bodies on the queue (redrive moves them to the DLQ), and one valid item
    #    planted in the DLQ as if an outage had exhausted its receives
    for body in ("not json", json.dumps({"mongo_doc_id": 7})):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    stranded = make_item(stack.put("adhoc/stranded.wav", normal(77)), n=77)
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=stranded.to_body())

    screen = CountingScreen(loaded_model)
    rep = run_worker(stack, loaded_model, screen, 12)
    assert rep.error is None and rep.stats["succeeded"] + rep.stats["failed_terminal"] == 12
    results = stack.db["anomaly_detection_results"]
    assert results.count_documents({}) == 12

    # 3. rows added later: the incremental run picks up exactly those (the operator's cap = 4 new rows)
    audio.update(add_students(stack, 6, 2, t0 + dt.timedelta(hours=6)))  # after the watermark
    r = cli(stack, monkeypatch, "discover", "--mode", "incremental", "--max-records", "4", "--json")
    assert r.exit_code == exit_codes.RET_OK, r.output
    assert json.loads(r.stdout)["enqueued"] == 4
    rep = run_worker(stack, loaded_model, screen, 16)
    assert results.count_documents({}) == 16

    # 4. the malformed messages reached the DLQ by redrive (the worker never acked them)
    def dlq_total() -> int:
        c = stack.counts(stack.dlq_url)
        return c["visible"] + c["in_flight"]

    def redriven() -> bool:
        # SQS moves a message to the DLQ on the receive after maxReceiveCount: keep receiving, as a
        # running worker would (only the two unacked malformed bodies are left on the queue)
        stack.sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=1
        )
        return dlq_total() == 3

    from tests.worker.conftest import wait_until

    wait_until(redriven, timeout=60, interval=0.5)
    r = cli(stack, monkeypatch, "replay-dlq", "--json")
    assert r.exit_code == exit_codes.RET_OK, r.output
    replay = json.loads(r.stdout)
    assert replay["moved"] == 1 and replay["skipped_invalid"] == 2 and replay["dlq_url"] == stack.dlq_url
    rep = run_worker(stack, loaded_model, screen, 17)
    assert results.count_documents({}) == 17 and results.count_documents({"_id": stranded.result_id}) == 1
    wait_until(lambda: dlq_total() == 2, timeout=30)  # the two malformed bodies stay for an operator

    # every discovered row (and the replayed item) screened exactly once, one result each
    hashes = {hashlib.sha256(d).hexdigest() for d in audio.values()}
    assert len(hashes) == 16
    assert all(screen.count[h] == 1 for h in hashes), screen.count
    assert screen.total == 17
    docs = {d["source"]["subject_id"]: d for d in results.find({})}
    assert set(docs) >= set(audio)
    for sid, reason in planted.items():
        assert docs[sid]["inference"]["is_anomaly"] and reason in docs[sid]["inference"]["reason_codes"], docs[sid][
            "inference"
        ]
    normals = [d for sid, d in docs.items() if sid in audio and sid not in planted]
    assert not [d["source"]["subject_id"] for d in normals if d["inference"]["is_anomaly"]]
    assert stack.counts(stack.queue_url) == {"visible": 0, "in_flight": 0}

    # the state document's counters match what was sent
    state = stack.db["anomaly_pipeline_state"].find_one({"test_date": TEST_DATE})
    assert state["stats"]["enqueued"] == 16 and state["last_run"]["stats"]["enqueued"] == 4

    # 5. the operator's summary agrees
    r = cli(stack, monkeypatch, "results", "inspect", TEST_DATE, "--json")
    assert r.exit_code == exit_codes.RET_OK, r.output
    summary = json.loads(r.stdout)
    assert summary["total"] == 17 and summary["anomalies"] + summary["failed"] == 2
    assert summary["by_reason"].get("silent") == 1 and summary["by_reason"].get("corrupt") == 1
