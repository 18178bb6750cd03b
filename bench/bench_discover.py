"""`discover` enqueue rate vs one `SendMessage` call per row, against a moto server process.

Run: .venv/bin/python bench/bench_discover.py [--quick]

Both sides send the same rows to a fresh queue on the same moto server (its own process, real
HTTP on 127.0.0.1). The baseline only sends pre-built bodies, one call each; `discover` does its
whole job: the Mongo aggregation (embedded double), the existing-result lookup, the state
writes and `SendMessageBatch` in chunks of 10.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import machine, write_section  # noqa: E402

GOAL = 8.0
DAY = "2025-12-20"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto server did not start")


def _timed_queue_class():
    from anomaly_cli.adapters.sqs import SqsQueue

    class TimedQueue(SqsQueue):
        """The real queue adapter, adding up the time spent inside send_batch."""

        seconds = 0.0

        def send_batch(self, entries):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return super().send_batch(entries)
            finally:
                self.seconds += time.perf_counter() - t0

    return TimedQueue


def seed(db, n_students: int) -> None:
    from bson import ObjectId

    t0 = dt.datetime(2025, 12, 20, 4, tzinfo=dt.timezone.utc)
    docs = []
    for i in range(n_students):
        ts = t0 + dt.timedelta(seconds=i)
        docs.append({"_id": ObjectId(), "student_id": f"STU-{i:07d}", "udise": "27251200104", "assessments": [{
            "test_date": dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc),
            "teacher_record": {"subjects": [
                {"subject_id": f"t{i}", "subject_name": "वाचन", "audio_url": f"s3://nipun-audio/{DAY}/t{i}.m4a", "subject_created_at": ts},
                {"subject_id": f"m{i}", "subject_name": "गणित", "subject_created_at": ts}]},
            "admin_record": {"subjects": [
                {"subject_id": f"a{i}", "subject_name": "वाचन", "audio_url": f"s3://nipun-audio/{DAY}/a{i}.m4a",
                 "subject_created_at": ts + dt.timedelta(hours=3)}]}}]})
    db.student_assessment_record.insert_many(docs)


def main() -> None:
    import warnings

    import boto3

    warnings.filterwarnings("ignore")
    quick = "--quick" in sys.argv
    n_students = 150 if quick else 500
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    proc, endpoint = start_moto()
    try:
        from anomaly_cli.adapters.mongo import connect
        from anomaly_cli.adapters.sqs import SqsQueue, boto_config
        from anomaly_cli.config import load_settings
        from anomaly_cli.discovery.service import build_service
        from anomaly_cli.discovery.source import iter_subject_rows

        TimedQueue = _timed_queue_class()

        client = boto3.client("sqs", region_name="ap-south-1", endpoint_url=endpoint, config=boto_config())
        uri = f"mongomock://bench-{uuid.uuid4().hex[:6]}"
        db = connect(uri)["nipun"]
        seed(db, n_students)
        rows = [r for d in db.student_assessment_record.find() for r in iter_subject_rows(d, subject_name="वाचन")]
        bodies = [r.to_work_item("student_assessment_record", DAY).to_body() for r in rows]

        # baseline: one SendMessage per row
        base_q = client.create_queue(QueueName=f"base-{uuid.uuid4().hex[:6]}")["QueueUrl"]
        t0 = time.perf_counter()
        for b in bodies:
            client.send_message(QueueUrl=base_q, MessageBody=b)
        base_s = time.perf_counter() - t0

        # discover backfill: the whole stage
        q = client.create_queue(QueueName=f"disc-{uuid.uuid4().hex[:6]}")["QueueUrl"]
        settings = load_settings({"mongo_uri": uri, "sqs_queue_url": q, "test_date": DAY, "discovery_batch_size": 100,
                                  "aws_endpoint_url": endpoint}, environ={}, env_file=None)
        queue = TimedQueue(client, q)
        service = build_service(settings, db, queue)
        t0 = time.perf_counter()
        report = service.run("backfill")
        disc_s = time.perf_counter() - t0
        send_s = queue.seconds
        assert report.enqueued == len(rows), report
        depth = int(client.get_queue_attributes(QueueUrl=q, AttributeNames=["ApproximateNumberOfMessages"])
                    ["Attributes"]["ApproximateNumberOfMessages"])
        assert depth == len(rows), depth
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    n = len(rows)
    base_rate, disc_rate, send_rate = n / base_s, n / disc_s, n / send_s
    ratio, send_ratio = disc_rate / base_rate, send_rate / base_rate
    cmd = "`.venv/bin/python bench/bench_discover.py" + (" --quick`" if quick else "`")
    md = f"""## Discovery enqueue rate

Machine: {machine()}. Command: {cmd}. SQS: a moto server in its own process over HTTP on
127.0.0.1; Mongo: the embedded double (mongomock-ng). {n} reading rows ({n_students} students,
teacher + admin rows, plus math rows that must be filtered out). Fresh queue per side.

| what | seconds | rows/s | ratio to baseline |
|---|---|---|---|
| baseline: one `SendMessage` per row (bodies pre-built) | {base_s:.2f} | {base_rate:.0f} | 1.0x |
| `discover --mode backfill --batch-size 100`, whole stage (aggregation, result lookup, state, enqueue log, sending) | {disc_s:.2f} | {disc_rate:.0f} | {ratio:.1f}x |
| of which time inside `SendMessageBatch` (chunks of 10) | {send_s:.2f} | {send_rate:.0f} | {send_ratio:.1f}x |

Goal >= {GOAL:.0f}x: **{"met" if ratio >= GOAL else "NOT met"}** (whole stage).

Why the goal is not met against moto: moto's server work per *message* dominates and grows
with the queue. `SendMessage` and every `SendMessageBatch` entry read `Queue.attributes`, which
computes the ApproximateNumberOfMessages* counters by walking every stored message three times
(moto 5.2.5, `moto/sqs/models.py`), so a run of n messages costs O(n^2) server CPU whichever
call carries them; batching only saves the per-request part (HTTP, parsing, signing), which is
small next to that here. A consumer draining the queue during the run made it worse (moto
re-walks the queue for every long-poll wake-up). Against real SQS the per-request part is a
network round trip (typically 5-20 ms) and per-message server cost is not ours, so ten
messages per call cut the calls, and most of the time, tenfold. The whole stage adds the
in-process Mongo double (aggregation, result lookup, state, enqueue log), which costs more per
row than a real server.
"""
    write_section("discover", md)


if __name__ == "__main__":
    main()
