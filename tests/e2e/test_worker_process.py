"""``anomaly work`` and ``anomaly push-urls`` as real processes against the moto server
(``MONGO_URI=mongomock://``, ad-hoc items whose audio comes from a local server): SIGKILL while
downloads are in flight -> the messages come back after their visibility timeout and the next
worker completes them, one result each; SIGTERM while items are in flight -> they are finished
within the drain deadline, nothing stays invisible, exit 0. A SIGKILLed worker leaves no
screening process or forkserver behind.

Each worker process has its own embedded Mongo double, so "results" are read from the workers'
JSON logs (``results_upserted``, ``worker_stopped``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from anomaly_cli.cli import exit_codes
from tests.conftest import queue_counts
from tests.faults.crashkit import make_recordings
from tests.worker.conftest import audio_server, wait_until  # noqa: F401
from tests.worker.test_signals import events, spawn_work, worker_env


@pytest.fixture
def queue(moto_server: str) -> tuple[Any, str]:
    import boto3

    sqs = boto3.client("sqs", region_name="ap-south-1", endpoint_url=moto_server)
    url = sqs.create_queue(QueueName=f"proc-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    return sqs, url


def push(tmp_path: Path, env: dict[str, str], urls: list[str]) -> None:
    f = tmp_path / "urls.txt"
    f.write_text("\n".join(urls) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", "push-urls", str(f), "--test-date", "2025-12-20"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == exit_codes.RET_OK, done.stderr[-2000:]


def inserted(log: Path) -> int:
    return sum(e.get("inserted", 0) for e in events(log) if e.get("event") == "results_upserted")


def stopped(log: Path) -> dict[str, Any]:
    return next(e for e in events(log) if e.get("event") == "worker_stopped")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc: forkserver, resource tracker, screening processes)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [c for c, p in parents.items() if p == parent]
        out += kids
        todo += kids
    return out


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigkill_messages_come_back_and_the_next_worker_completes_each_once(
    tmp_path, moto_server, queue, audio_server, model_dir
):
    sqs, url = queue
    n = 4
    recs = make_recordings(n, 41)
    urls = [audio_server.put(f"/k{i}.wav", recs[i], delay=60.0) for i in range(n)]
    env = worker_env(moto_server, url, audio_server.base, model_dir, SQS_VISIBILITY_TIMEOUT="4")
    push(tmp_path, env, urls)
    first, first_log = spawn_work(tmp_path, env, "first")
    try:
        wait_until(lambda: audio_server.active >= 2, timeout=120)  # downloads really are in flight
        tree = descendants(first.pid)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    # the forkserver and the screening processes (which SIGKILL does not reach) end with the worker
    assert len(tree) >= 2, tree
    wait_until(lambda: not any(running(p) for p in tree), timeout=60, interval=0.2)
    assert inserted(first_log) == 0  # it died before writing anything
    assert queue_counts(sqs, url)["in_flight"] >= 2  # held by the dead worker, not released
    # back after their visibility timeout (4 s)
    wait_until(lambda: queue_counts(sqs, url)["visible"] == n, timeout=60, interval=0.2)
    for path in audio_server.delay:
        audio_server.delay[path] = 0.0
    second, second_log = spawn_work(tmp_path, env, "second", "--idle-exit", "3")
    try:
        rc = second.wait(timeout=180)
    finally:
        if second.poll() is None:
            second.kill()
    assert rc == exit_codes.RET_OK, second_log.read_text()[-2000:]
    assert inserted(second_log) == n  # one result per item, each written once
    s = stopped(second_log)
    assert s["succeeded"] == n and s["acked"] == n
    assert queue_counts(sqs, url) == {"visible": 0, "in_flight": 0}


def test_sigterm_finishes_in_flight_items_within_the_drain_deadline(
    tmp_path, moto_server, queue, audio_server, model_dir
):
    sqs, url = queue
    n = 4
    recs = make_recordings(n, 43)
    urls = [audio_server.put(f"/t{i}.wav", recs[i], delay=3.0) for i in range(n)]
    env = worker_env(moto_server, url, audio_server.base, model_dir, SQS_VISIBILITY_TIMEOUT="4")
    push(tmp_path, env, urls)
    proc, log = spawn_work(tmp_path, env, "term", "--drain-seconds", "120")
    try:
        wait_until(lambda: audio_server.active >= 1, timeout=120)
        in_flight = audio_server.active  # items were in flight when the signal came
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert in_flight >= 1
    assert rc == exit_codes.RET_OK, log.read_text()[-2000:]
    s = stopped(log)
    assert s["reason"] == "signal"
    assert s["succeeded"] >= in_flight and inserted(log) == s["succeeded"]  # in-flight items were finished
    assert s["acked"] + s["released"] == s["received"]  # every received message was acked or released
    assert queue_counts(sqs, url) == {"visible": n - s["acked"], "in_flight": 0}  # nothing left invisible
