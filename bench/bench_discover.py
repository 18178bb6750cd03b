"""`discover` enqueue rate vs one `SendMessage` call per row, against a moto server process.

Run: .venv/bin/python bench/bench_discover.py [--quick]

Both sides send the same rows over real HTTP on 127.0.0.1 to a moto server running as its own
process. The baseline only sends pre-built bodies, one ``SendMessage`` call each; ``discover``
does its whole job through the real :class:`DiscoveryService`: the Mongo aggregation (embedded
double), the existing-result lookup, the state writes, the enqueue log and ``SendMessageBatch``
in chunks of 10.

Why queues are kept shallow: moto 5.2.5 reads ``Queue.attributes`` for every message it
stores (``send_message`` checks ``ContentBasedDeduplication``), and that property counts the
queue's messages by walking all of them three times. Per-message server cost therefore grows
with queue depth and, past a few dozen messages, swamps the per-request cost that batching
removes. Real SQS has no such cost. So both sides send into pre-created fresh queues and move
to the next one every ``depth`` messages (identically for both; queue creation is not timed).
Each configuration is measured in the same run, interleaved (the side that goes first
alternates), several runs, medians. The old single deep-queue figure is kept as its own row.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import machine, write_section

GOAL = 8.0
RTT_S = 0.010  # the round trip added by DelayProxy for the "with a network" figure
BASE_DAY = dt.date(2025, 12, 20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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


class DelayProxy:
    """A TCP proxy that adds a fixed round trip to every request: half the delay on the way to
    the server, half on the way back, as a delay line (each chunk leaves ``delay / 2`` after it
    arrived, order kept), so a request pays the same however the kernel splits it. A bench
    device standing for the network between a worker host and SQS (in-region: typically
    5-20 ms), which loopback does not have."""

    def __init__(self, target: str, rtt_s: float):
        import asyncio
        import threading
        from urllib.parse import urlparse

        u = urlparse(target)
        self.host, self.port, self.half = u.hostname, u.port, rtt_s / 2
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.listen_port = 0

        async def start() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.listen_port = server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True, name="delay-proxy").start()
        ready.wait(10)
        self.url = f"http://127.0.0.1:{self.listen_port}"

    async def _handle(self, reader: Any, writer: Any) -> None:
        import asyncio

        up_r, up_w = await asyncio.open_connection(self.host, self.port)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)

    async def _pipe(self, src: Any, dst: Any) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()

        async def read() -> None:
            while True:
                data = await src.read(65536)
                q.put_nowait((loop.time() + self.half, data))
                if not data:
                    return

        async def write() -> None:
            while True:
                due, data = await q.get()
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                if not data:
                    dst.close()
                    return
                dst.write(data)
                await dst.drain()

        await asyncio.gather(read(), write())


def fresh_queues(client: Any, n: int) -> list[str]:
    """``n`` new empty queues (created before any timing starts)."""
    return [client.create_queue(QueueName=f"b-{uuid.uuid4().hex[:12]}")["QueueUrl"] for _ in range(n)]


def depth_of(client: Any, urls: list[str]) -> list[int]:
    return [
        int(
            client.get_queue_attributes(QueueUrl=u, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
                "ApproximateNumberOfMessages"
            ]
        )
        for u in urls
    ]


def _rotating_queue_class():
    from anomaly_cli.adapters.sqs import SqsQueue

    class RotatingTimedQueue(SqsQueue):
        """The real queue adapter; moves to the next pre-created queue every ``depth`` messages
        (a bench device against moto's O(depth) per-message cost) and adds up the time spent
        inside ``send_batch`` (the SQS side of discovery)."""

        def __init__(self, client: Any, urls: list[str], depth: int):
            super().__init__(client, urls[0])
            self.urls, self.depth, self.sent, self.seconds = urls, depth, 0, 0.0

        def send_batch(self, entries):  # type: ignore[no-untyped-def]
            # discovery sends chunks of <= 10 and depth is a multiple of 10: a chunk never straddles
            self.url = self.urls[self.sent // self.depth]
            t0 = time.perf_counter()
            try:
                out = super().send_batch(entries)
            finally:
                self.seconds += time.perf_counter() - t0
            self.sent += len(entries)
            return out

    return RotatingTimedQueue


def seed(db: Any, days: list[str], n_students: int) -> None:
    """``n_students`` per day, each with a teacher and an admin reading row and a math row."""
    from bson import ObjectId

    docs = []
    for day in days:
        d = dt.date.fromisoformat(day)
        t0 = dt.datetime(d.year, d.month, d.day, 4, tzinfo=dt.timezone.utc)
        for i in range(n_students):
            ts = t0 + dt.timedelta(seconds=i)
            docs.append(
                {
                    "_id": ObjectId(),
                    "student_id": f"STU-{day}-{i:05d}",
                    "udise": "27251200104",
                    "assessments": [
                        {
                            "test_date": dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc),
                            "teacher_record": {
                                "subjects": [
                                    {
                                        "subject_id": f"t{i}",
                                        "subject_name": "वाचन",
                                        "audio_url": f"s3://nipun-audio/{day}/t{i}.m4a",
                                        "subject_created_at": ts,
                                    },
                                    {"subject_id": f"m{i}", "subject_name": "गणित", "subject_created_at": ts},
                                ]
                            },
                            "admin_record": {
                                "subjects": [
                                    {
                                        "subject_id": f"a{i}",
                                        "subject_name": "वाचन",
                                        "audio_url": f"s3://nipun-audio/{day}/a{i}.m4a",
                                        "subject_created_at": ts + dt.timedelta(hours=3),
                                    }
                                ]
                            },
                        }
                    ],
                }
            )
    db.student_assessment_record.insert_many(docs)


class Bench:
    """One moto server, one Mongo double, the rows of every day and the two senders."""

    def __init__(self, client: Any, endpoint: str, uri: str, db: Any, bodies: dict[str, list[str]]):
        self.client, self.endpoint, self.uri, self.db, self.bodies = client, endpoint, uri, db, bodies
        self.RotatingTimedQueue = _rotating_queue_class()

    def baseline(self, day: str, depth: int) -> float:
        """One ``SendMessage`` per row of ``day``, a fresh queue every ``depth`` messages."""
        bodies = self.bodies[day]
        urls = fresh_queues(self.client, -(-len(bodies) // depth))
        t0 = time.perf_counter()
        for i, b in enumerate(bodies):
            self.client.send_message(QueueUrl=urls[i // depth], MessageBody=b)
        s = time.perf_counter() - t0
        assert sum(depth_of(self.client, urls)) == len(bodies)
        return s

    def discover(self, day: str, depth: int) -> tuple[float, float]:
        """A real ``discover --mode backfill`` run of ``day``; (whole-stage s, s inside SendMessageBatch)."""
        from anomaly_cli.config import load_settings
        from anomaly_cli.discovery.service import build_service

        n = len(self.bodies[day])
        urls = fresh_queues(self.client, -(-n // depth))
        settings = load_settings(
            {
                "mongo_uri": self.uri,
                "sqs_queue_url": urls[0],
                "test_date": day,
                "discovery_batch_size": 100,
                "aws_endpoint_url": self.endpoint,
            },
            environ={},
            env_file=None,
        )
        queue = self.RotatingTimedQueue(self.client, urls, depth)
        service = build_service(settings, self.db, queue)
        # Start every run with an empty enqueue log, as every run starts with empty queues: the
        # Mongo double emulates the log's TTL index by scanning the whole collection on every
        # insert, so a log that kept growing over the bench's runs would make each run slower
        # than the last (real MongoDB expires documents in a background task).
        self.db[settings.mongo_enqueue_log_collection].delete_many({})
        t0 = time.perf_counter()
        report = service.run("backfill")
        s = time.perf_counter() - t0
        assert report.enqueued == n and report.failed == 0, report
        depths = depth_of(self.client, urls)
        assert sum(depths) == n and max(depths) <= depth, depths
        return s, queue.seconds


def measure(b: Bench, days: list[str], rounds: int, depth: int) -> dict[str, float]:
    """Interleaved paired runs (who goes first alternates); medians of seconds per run and of ratios."""
    base, disc, send, r_whole, r_send = [], [], [], [], []
    k = 0
    for _ in range(rounds):
        for day in days:
            k += 1
            if k % 2:
                bs = b.baseline(day, depth)
                ds, ss = b.discover(day, depth)
            else:
                ds, ss = b.discover(day, depth)
                bs = b.baseline(day, depth)
            base.append(bs), disc.append(ds), send.append(ss)
            r_whole.append(bs / ds), r_send.append(bs / ss)
    med = statistics.median
    return {
        "runs": len(base),
        "base": med(base),
        "disc": med(disc),
        "send": med(send),
        "other": med(d - s for d, s in zip(disc, send)),
        "ratio": med(r_whole),
        "send_ratio": med(r_send),
        "ratio_min": min(r_whole),
        "ratio_max": max(r_whole),
        "send_ratio_min": min(r_send),
        "send_ratio_max": max(r_send),
    }


def deep(b: Bench, days: list[str]) -> dict[str, float]:
    """The old figure: every row of every day into ONE queue per side (depth up to all rows)."""
    from anomaly_cli.config import load_settings
    from anomaly_cli.discovery.service import build_service

    all_bodies = [x for d in days for x in b.bodies[d]]
    n = len(all_bodies)
    (bq,) = fresh_queues(b.client, 1)
    t0 = time.perf_counter()
    for body in all_bodies:
        b.client.send_message(QueueUrl=bq, MessageBody=body)
    base_s = time.perf_counter() - t0
    (dq,) = fresh_queues(b.client, 1)
    disc_s = send_s = 0.0
    for day in days:  # one queue for all the days' runs: it keeps filling
        settings = load_settings(
            {
                "mongo_uri": b.uri,
                "sqs_queue_url": dq,
                "test_date": day,
                "discovery_batch_size": 100,
                "aws_endpoint_url": b.endpoint,
            },
            environ={},
            env_file=None,
        )
        queue = b.RotatingTimedQueue(b.client, [dq], n + 10)
        b.db[settings.mongo_enqueue_log_collection].delete_many({})  # as in Bench.discover
        t0 = time.perf_counter()
        report = build_service(settings, b.db, queue).run("backfill")
        disc_s += time.perf_counter() - t0
        send_s += queue.seconds
        assert report.enqueued == len(b.bodies[day]), report
    assert depth_of(b.client, [bq, dq]) == [n, n]
    return {
        "n": n,
        "base": base_s,
        "disc": disc_s,
        "send": send_s,
        "ratio": base_s / disc_s,
        "send_ratio": base_s / send_s,
    }


def main() -> None:
    import warnings

    import boto3

    warnings.filterwarnings("ignore")
    quick = "--quick" in sys.argv
    n_days, n_students, rounds = (2, 50, 2) if quick else (4, 75, 3)
    depths = (10, 150)
    days = [(BASE_DAY + dt.timedelta(days=i)).isoformat() for i in range(n_days)]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    proc, endpoint = start_moto()
    try:
        from anomaly_cli.adapters.aws import boto_config
        from anomaly_cli.adapters.mongo import connect
        from anomaly_cli.discovery.source import iter_subject_rows

        client = boto3.client("sqs", region_name="ap-south-1", endpoint_url=endpoint, config=boto_config())
        uri = f"mongomock://bench-{uuid.uuid4().hex[:6]}"
        db = connect(uri)["nipun"]
        seed(db, days, n_students)
        bodies: dict[str, list[str]] = {}
        for day in days:
            docs = db.student_assessment_record.find({"student_id": {"$regex": f"^STU-{day}-"}})
            rows = [r for d in docs for r in iter_subject_rows(d, subject_name="वाचन")]
            bodies[day] = [r.to_work_item("student_assessment_record", day).to_body() for r in rows]
        b = Bench(client, endpoint, uri, db, bodies)
        b.discover(days[0], 150), b.baseline(days[0], 150)  # warm-up (imports, connections), not counted
        results = {d: measure(b, days, rounds, d) for d in depths}
        dp = deep(b, days)
        # the same shallow configuration with a network round trip on every request
        proxy = DelayProxy(endpoint, RTT_S)
        client_rtt = boto3.client("sqs", region_name="ap-south-1", endpoint_url=proxy.url, config=boto_config())
        b_rtt = Bench(client_rtt, proxy.url, uri, db, bodies)
        b_rtt.discover(days[0], depths[0]), b_rtt.baseline(days[0], depths[0])  # warm-up
        rtt = measure(b_rtt, days, rounds, depths[0])
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    rows_per_run = len(bodies[days[0]])
    per_single = 1000 * results[depths[0]]["base"] / rows_per_run  # ms per SendMessage call
    per_batch = 1000 * results[depths[0]]["send"] / -(-rows_per_run // 10)  # ms per SendMessageBatch call
    cmd = "`.venv/bin/python bench/bench_discover.py" + (" --quick`" if quick else "`")
    load = os.getloadavg()[0]

    def rate(seconds: float, n: int) -> str:
        return f"{n / seconds:.0f}"

    lines = []
    for d in depths:
        r = results[d]
        lines.append(
            f"| {d} | baseline: one `SendMessage` per row | {r['base']:.2f} | {rate(r['base'], rows_per_run)} | 1.0x |"
        )
        lines.append(
            f"| {d} | `discover --mode backfill`, whole stage | {r['disc']:.2f} | {rate(r['disc'], rows_per_run)} | "
            f"**{r['ratio']:.1f}x** ({r['ratio_min']:.1f}-{r['ratio_max']:.1f}) |"
        )
        lines.append(
            f"| {d} | of which inside `SendMessageBatch` (SQS side) | {r['send']:.2f} | {rate(r['send'], rows_per_run)} | "
            f"**{r['send_ratio']:.1f}x** ({r['send_ratio_min']:.1f}-{r['send_ratio_max']:.1f}) |"
        )
        lines.append(
            f"| {d} | of which everything else (Mongo double: aggregation, result lookup, state, enqueue log; building bodies) | {r['other']:.2f} | | |"
        )
    shallow = results[depths[0]]
    md = f"""## Discovery enqueue rate

Machine: {machine()}; shared with other work (1-min load average {load:.1f} at the end),
so only the ratios, measured in one run, are meaningful. Command: {cmd}.
SQS: a moto 5.2.5 server in its own process, real HTTP on 127.0.0.1; Mongo: the embedded double
(mongomock-ng).

Each run: one test date, {rows_per_run} reading rows ({rows_per_run // 2} students, teacher + admin rows, plus math rows
discovery must filter out). Baseline: the same rows' bodies (pre-built, so it does nothing else)
sent with one `SendMessage` each. Discovery: a real `DiscoveryService` backfill
(`--batch-size 100`), sending `SendMessageBatch` chunks of 10 through `SqsQueue`. Both sides
send into fresh queues and move to the next pre-created one every *depth cap* messages, so no
queue ever holds more than that; queue creation is not timed and every queue's count is checked
afterwards. Likewise each discovery run starts with an empty enqueue log (untimed): the Mongo
double emulates its TTL index by scanning the whole collection on every insert, so a log growing
over the bench's runs would slow each run down (measured: 0.42, 0.57, 0.69, 0.84 s for four
identical runs before this reset). {len(days)} test dates x {rounds} rounds = {shallow["runs"]} paired runs per depth cap,
interleaved (the side that goes first alternates); figures are medians per run, ratios are
medians of the per-run ratios (min-max in brackets).

| depth cap | what | seconds per run | rows/s | ratio to baseline |
|---|---|---|---|---|
{chr(10).join(lines)}

Deep queue (the figure first reported, re-measured in this run): all {dp["n"]} rows of the {len(days)}
dates into ONE queue per side, so it grows to {dp["n"]} messages.

| what | seconds | rows/s | ratio to baseline |
|---|---|---|---|
| baseline: one `SendMessage` per row, one queue | {dp["base"]:.2f} | {rate(dp["base"], dp["n"])} | 1.0x |
| `discover` runs of every date into one queue, whole stage | {dp["disc"]:.2f} | {rate(dp["disc"], dp["n"])} | {dp["ratio"]:.1f}x |
| of which inside `SendMessageBatch` | {dp["send"]:.2f} | {rate(dp["send"], dp["n"])} | {dp["send_ratio"]:.1f}x |

With a network: the same shallow runs (depth cap {depths[0]}, {rtt["runs"]} paired runs) through a TCP proxy that adds
{RTT_S * 1000:.0f} ms of round trip to every request (`DelayProxy`: half each way, as a delay line), standing for
the network between a worker host and SQS in the same region (typically 5-20 ms), which loopback lacks.

| what | seconds per run | rows/s | ratio to baseline |
|---|---|---|---|
| baseline: one `SendMessage` per row | {rtt["base"]:.2f} | {rate(rtt["base"], rows_per_run)} | 1.0x |
| `discover --mode backfill`, whole stage | {rtt["disc"]:.2f} | {rate(rtt["disc"], rows_per_run)} | **{rtt["ratio"]:.1f}x** ({rtt["ratio_min"]:.1f}-{rtt["ratio_max"]:.1f}) |
| of which inside `SendMessageBatch` (SQS side) | {rtt["send"]:.2f} | {rate(rtt["send"], rows_per_run)} | **{rtt["send_ratio"]:.1f}x** ({rtt["send_ratio_min"]:.1f}-{rtt["send_ratio_max"]:.1f}) |
| of which everything else (the Mongo double, as above) | {rtt["other"]:.2f} | | |

Goal >= {GOAL:.0f}x (whole stage): on loopback **{"met" if shallow["ratio"] >= GOAL else "NOT met"}** at depth cap {depths[0]}
({shallow["ratio"]:.1f}x whole stage, {shallow["send_ratio"]:.1f}x on the SQS side alone); with a {RTT_S * 1000:.0f} ms round trip
**{"met" if rtt["ratio"] >= GOAL else "NOT met"}** ({rtt["ratio"]:.1f}x whole stage, {rtt["send_ratio"]:.1f}x on the SQS side).

What the figures say:
- Where the time goes: at depth cap {depths[0]} discovery spends {shallow["send"]:.2f} s of {shallow["disc"]:.2f} s per
  run inside `SendMessageBatch` and {shallow["other"]:.2f} s on everything else, mostly the in-process Mongo
  double (a separate cProfile of four runs: its aggregation about 40% of the run time, the
  enqueue-log writes about 20%), which costs far more per row than a real MongoDB server. The SQS-side ratio is the batching claim itself; the whole-stage
  ratio carries that Mongo double too.
- Queue depth (moto's artefact): moto 5.2.5's `send_message` reads `Queue.attributes` for every
  message (to check `ContentBasedDeduplication`), and that property computes the
  ApproximateNumberOfMessages* counters by walking every stored message three times
  (`moto/sqs/models.py`). So each stored message costs O(depth) server CPU (about 3 ms per
  message at depth ~75, from a separate cProfile of the server), the same whichever call
  carries it: batching saves only the per-request part (HTTP, routing, parsing, signing),
  which that cost swamps as the queue grows. Hence the ratio falls from depth cap {depths[0]} to {depths[1]} to the deep queue. Real SQS
  has no per-depth cost for the sender.
- Even at a shallow depth a batch is not ten times cheaper per message: here one `SendMessage` call
  costs {per_single:.1f} ms and one `SendMessageBatch` of 10 costs {per_batch:.1f} ms ({per_batch / per_single:.1f}x a single call: botocore
  serialises ten entries and parses ten results, moto parses, validates and stores ten messages
  and renders ten results), so the SQS-side ratio is about 10 / {per_batch / per_single:.1f} = {10 * per_single / per_batch:.1f}x, not 10x.
  Ten entries per call cut the number of requests tenfold; against real SQS, where each request
  is a network round trip (typically 5-20 ms) and the per-entry work is small beside it, the SQS side approaches 10x.
- Nothing in discovery's send path was found worth changing: under cProfile its time outside
  botocore is building the bodies and the Mongo double's enqueue-log and state writes.
"""
    write_section("discover", md)


if __name__ == "__main__":
    main()
