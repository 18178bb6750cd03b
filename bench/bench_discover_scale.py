"""Discovery at a state's scale: rows/s at 10^4 and 10^5 rows, where the time goes, and an
incremental run's memory and log volume over 10^5 polls (issue 18).

Run: .venv/bin/python bench/bench_discover_scale.py [--quick] [--sizes 10000,100000] [--polls 100000]

Throughput: a real ``discover --mode backfill`` (``DiscoveryService``, pages of 100) over N reading
rows in the embedded Mongo double, sending to a moto server process over HTTP, with the queue
rotated every 150 messages (moto's per-message cost grows with queue depth; real SQS has no such
cost: see ``bench_discover.py``). Baseline in the same run: the same rows' pre-built bodies sent
with one ``SendMessage`` each (on the first 10^4 rows of a size: the per-request cost does not
depend on how many rows there are, and 10^5 single calls would take most of the run). The time of
each part is measured inside the run (wrappers around the service's collaborators): the
aggregation (cursor pages), the existing-result lookups, the enqueue log, the state writes, and
the wall time of the SQS calls (concurrent chunks count once). A second pair of rows puts a 10 ms
round trip in front of moto (``DelayProxy``) with send concurrency 1 and 4, which is where the
concurrency pays.

Soak: an incremental run polling a small test date as fast as it can (a stop flag that never
waits), a new student every 10 000 polls, 10^5 polls; resident memory and tracemalloc's current
size by quarter, and the lines an INFO log would carry.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
import time
import tracemalloc
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_discover import RTT_S, DelayProxy, depth_of, fresh_queues, seed, start_moto
from common import machine, write_section

DAY = "2025-12-20"
DEPTH = 150
GOAL_ROWS_PER_S = 1700


class RotatingQueues:
    """The real queue adapter, one ``SqsQueue`` per pre-created queue, moving to the next every
    ``depth`` messages (thread-safe: discovery sends a page's chunks concurrently)."""

    def __init__(self, client: Any, urls: list[str], depth: int):
        from anomaly_cli.adapters.sqs import SqsQueue

        self.queues = [SqsQueue(client, u) for u in urls]
        self.url = urls[0]
        self.depth, self.sent, self.lock = depth, 0, threading.Lock()

    @property
    def is_fifo(self) -> bool:
        return False

    def send_batch(self, entries: list[dict[str, Any]]) -> Any:
        with self.lock:
            q = self.queues[self.sent // self.depth]
            self.sent += len(entries)
        return q.send_batch(entries)


class Timers:
    """Seconds spent in each named part (wall time; a part's nested calls are not subtracted)."""

    def __init__(self) -> None:
        self.s: Counter[str] = Counter()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.s[name] += time.perf_counter() - t0

        return timed


def settings_for(uri: str, url: str, endpoint: str, **extra: Any) -> Any:
    from anomaly_cli.config import load_settings

    values = {
        "mongo_uri": uri,
        "sqs_queue_url": url,
        "test_date": DAY,
        "discovery_batch_size": 100,
        "aws_endpoint_url": endpoint,
    } | extra
    return load_settings(values, environ={}, env_file=None)


def discover_once(client: Any, endpoint: str, uri: str, db: Any, n: int, concurrency: int) -> dict[str, float]:
    """One timed backfill of the date's ``n`` rows into fresh rotating queues."""
    import anomaly_cli.discovery.service as service_mod
    from anomaly_cli.discovery.cursor import ResumableRows

    urls = fresh_queues(client, -(-n // DEPTH))
    settings = settings_for(uri, urls[0], endpoint, discovery_send_concurrency=concurrency)
    db[settings.mongo_enqueue_log_collection].delete_many({})  # as bench_discover: the double's TTL emulation
    db[settings.mongo_state_collection].delete_many({})
    t = Timers()
    queue = RotatingQueues(client, urls, DEPTH)
    svc = service_mod.build_service(settings, db, queue)
    # Bench device: no TTL index on the enqueue log. The double emulates a TTL index by scanning
    # the whole collection on every write (quadratic over a run: 20 000 inserts did not finish in
    # minutes); real MongoDB expires documents in a background task. The writes are still timed.
    svc.enqueue_log.ensure_indexes = lambda: None
    svc.enqueue_log.record = t.wrap("enqueue log", svc.enqueue_log.record)
    for name in ("record_page", "advance_watermark", "renew", "acquire", "start_run", "finish_run"):
        setattr(svc.state, name, t.wrap("state writes", getattr(svc.state, name)))
    svc._sender.map = t.wrap("SQS (wall)", svc._sender.map)
    real_next, real_lookup = ResumableRows.next_page, service_mod.existing_results
    ResumableRows.next_page = t.wrap("aggregation (cursor pages)", real_next)  # type: ignore[method-assign]
    service_mod.existing_results = t.wrap("existing-result lookups", real_lookup)
    try:
        t0 = time.perf_counter()
        report = svc.run("backfill")
        total = time.perf_counter() - t0
    finally:
        ResumableRows.next_page = real_next  # type: ignore[method-assign]
        service_mod.existing_results = real_lookup
    assert report.enqueued == n and report.failed == 0, report
    assert sum(depth_of(client, urls)) == n
    parts = dict(t.s)
    parts["total"] = total
    parts["other (bodies, decisions, logging)"] = total - sum(t.s.values())
    return parts


def baseline(client: Any, bodies: list[str]) -> float:
    urls = fresh_queues(client, -(-len(bodies) // DEPTH))
    t0 = time.perf_counter()
    for i, b in enumerate(bodies):
        client.send_message(QueueUrl=urls[i // DEPTH], MessageBody=b)
    s = time.perf_counter() - t0
    assert sum(depth_of(client, urls)) == len(bodies)
    return s


def row_bodies(db: Any, limit: int) -> list[str]:
    from anomaly_cli.discovery.source import iter_subject_rows

    out: list[str] = []
    for d in db.student_assessment_record.find({}).limit(limit):
        out += [
            r.to_work_item("student_assessment_record", DAY).to_body()
            for r in iter_subject_rows(d, subject_name="वाचन")
        ]
    return out[:limit]


def soak(polls: int) -> dict[str, Any]:
    """An incremental run polling as fast as it can; memory by quarter and INFO lines."""
    import psutil

    from anomaly_cli.adapters.mongo import connect
    from anomaly_cli.config import load_settings
    from anomaly_cli.discovery.service import build_service

    uri = f"mongomock://soak-{uuid.uuid4().hex[:6]}"
    db = connect(uri)["nipun"]
    seed(db, [DAY], 5)
    settings = load_settings(
        {"mongo_uri": uri, "sqs_queue_url": "http://unused/q", "test_date": DAY, "poll_interval_seconds": 30},
        environ={},
        env_file=None,
    )

    class Queue:
        is_fifo = False
        url = "http://unused/q"

        def send_batch(self, entries: list[dict[str, Any]]) -> Any:
            from anomaly_cli.adapters.sqs import BatchOutcome

            return BatchOutcome(succeeded=[e["Id"] for e in entries])

    proc = psutil.Process()
    marks: list[tuple[int, float, float]] = []
    info = Counter()

    class CountInfo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            info[getattr(record, "event", "?")] += 1

    handler = CountInfo(logging.INFO)
    logger = logging.getLogger("anomaly")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)

    class FastPolls:
        def __init__(self) -> None:
            self.n = 0

        def is_set(self) -> bool:
            return self.n >= polls

        def wait(self, timeout: float | None = None) -> bool:
            self.n += 1
            if self.n % 10000 == 0:
                ts = dt.datetime.now(dt.timezone.utc)
                db.student_assessment_record.insert_one(
                    {
                        "student_id": f"NEW-{self.n}",
                        "assessments": [
                            {
                                "test_date": dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc),
                                "teacher_record": {
                                    "subjects": [
                                        {
                                            "subject_id": f"n{self.n}",
                                            "subject_name": "वाचन",
                                            "audio_url": f"s3://b/{self.n}.m4a",
                                            "subject_created_at": ts,
                                        }
                                    ]
                                },
                            }
                        ],
                    }
                )
            if self.n % (polls // 4) == 0:
                cur, _ = tracemalloc.get_traced_memory()
                marks.append((self.n, proc.memory_info().rss / 2**20, cur / 2**20))
            return self.n >= polls

    tracemalloc.start()
    svc = build_service(settings, db, Queue(), stop=FastPolls())
    t0 = time.perf_counter()
    try:
        report = svc.run("incremental")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        tracemalloc.stop()
    return {
        "polls": polls,
        "seconds": time.perf_counter() - t0,
        "marks": marks,
        "info": info,
        "enqueued": report.enqueued,
        "lease_after": svc.state.get(DAY)["lease"],
    }


def main() -> None:
    import warnings

    import boto3

    warnings.filterwarnings("ignore")
    args = sys.argv[1:]
    quick = "--quick" in args
    sizes = [2000, 10000] if quick else [10000, 100000]
    polls = 20000 if quick else 100000
    if "--sizes" in args:
        sizes = [int(x) for x in args[args.index("--sizes") + 1].split(",")]
    if "--polls" in args:
        polls = int(args[args.index("--polls") + 1])
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    from anomaly_cli.adapters.aws import boto_config
    from anomaly_cli.adapters.mongo import connect

    proc, endpoint = start_moto()
    rows: dict[int, dict[str, Any]] = {}
    try:
        client = boto3.client("sqs", region_name="ap-south-1", endpoint_url=endpoint, config=boto_config())
        for n in sizes:
            uri = f"mongomock://scale-{uuid.uuid4().hex[:6]}"
            db = connect(uri)["nipun"]
            t0 = time.perf_counter()
            seed(db, [DAY], n // 2)
            seeded = time.perf_counter() - t0
            bodies = row_bodies(db, min(n, 10000))
            base_s = baseline(client, bodies)
            parts = discover_once(client, endpoint, uri, db, n, concurrency=4)
            rows[n] = {"seed_s": seeded, "base_rate": len(bodies) / base_s, "base_n": len(bodies), "parts": parts}
            print(n, rows[n], flush=True)
        # with a network round trip: concurrency 1 vs 4 on the smallest size, baseline on 1000 rows
        n_rtt = min(sizes)
        proxy = DelayProxy(endpoint, RTT_S)
        client_rtt = boto3.client("sqs", region_name="ap-south-1", endpoint_url=proxy.url, config=boto_config())
        uri = f"mongomock://rtt-{uuid.uuid4().hex[:6]}"
        db = connect(uri)["nipun"]
        seed(db, [DAY], n_rtt // 2)
        rtt_bodies = row_bodies(db, 1000)
        rtt = {
            "base_rate": len(rtt_bodies) / baseline(client_rtt, rtt_bodies),
            1: discover_once(client_rtt, proxy.url, uri, db, n_rtt, concurrency=1),
            4: discover_once(client_rtt, proxy.url, uri, db, n_rtt, concurrency=4),
        }
        print("rtt", rtt, flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    sk = soak(polls)
    print("soak", sk, flush=True)
    write_report(rows, rtt, n_rtt, sk, quick)


def write_report(
    rows: dict[int, dict[str, Any]], rtt: dict[Any, Any], n_rtt: int, sk: dict[str, Any], quick: bool
) -> None:
    load = os.getloadavg()[0]
    cmd = "`.venv/bin/python bench/bench_discover_scale.py" + (" --quick`" if quick else "`")
    part_names = [
        "aggregation (cursor pages)",
        "existing-result lookups",
        "enqueue log",
        "state writes",
        "SQS (wall)",
        "other (bodies, decisions, logging)",
    ]
    lines = []
    for n, r in rows.items():
        p = r["parts"]
        rate = n / p["total"]
        shares = ", ".join(f"{k} {p.get(k, 0):.1f} s ({100 * p.get(k, 0) / p['total']:.0f} %)" for k in part_names)
        lines.append(
            f"| {n:,} | {r['base_rate']:.0f} (on {r['base_n']:,} rows) | {p['total']:.1f} | {rate:.0f} | "
            f"**{rate / r['base_rate']:.1f}x** | {shares} |"
        )
    r1, r4 = rtt[1], rtt[4]
    rtt_lines = [
        f"| baseline: one `SendMessage` per row (1,000 rows) | {rtt['base_rate']:.0f} | 1.0x |",
        f"| `discover`, send concurrency 1 | {n_rtt / r1['total']:.0f} | {n_rtt / r1['total'] / rtt['base_rate']:.1f}x (SQS wall {r1['SQS (wall)']:.1f} s of {r1['total']:.1f} s) |",
        f"| `discover`, send concurrency 4 (default) | {n_rtt / r4['total']:.0f} | {n_rtt / r4['total'] / rtt['base_rate']:.1f}x (SQS wall {r4['SQS (wall)']:.1f} s of {r4['total']:.1f} s) |",
    ]
    marks = " -> ".join(f"{m[1]:.0f} MB RSS / {m[2]:.1f} MB traced (poll {m[0]:,})" for m in sk["marks"])
    info_total = sum(sk["info"].values())
    md = f"""## Discovery at a state's scale (issue 18)

Machine: {machine()}; shared with other work (1-min load average {load:.1f} at the end), so
absolute rates are low and only the ratios measured in one run mean much. Command: {cmd}.
SQS: a moto 5.2.5 server process over HTTP on 127.0.0.1 (queues rotated every {DEPTH} messages);
Mongo: the embedded double (mongomock-ng), which computes a whole aggregation in Python when the
cursor opens, and scans a collection for every `$in` query (no index use). The enqueue log is
written without its TTL index here: the double emulates one by scanning the collection on every
write, quadratic over a run (real MongoDB expires in a background task).

Backfill of one test date (pages of 100, send concurrency 4), against one `SendMessage` per row
measured in the same run; the parts are wall time inside the run:

| rows | baseline rows/s | discover s | discover rows/s | ratio | where the time goes |
|---|---|---|---|---|---|
{chr(10).join(lines)}

With a {RTT_S * 1000:.0f} ms round trip in front of moto (`DelayProxy`), {n_rtt:,} rows:

| what | rows/s | ratio to baseline |
|---|---|---|
{chr(10).join(rtt_lines)}

Incremental soak: {sk["polls"]:,} polls of a small test date in {sk["seconds"]:.0f} s (a new student every
10 000 polls, {sk["enqueued"]} rows enqueued): {marks}. An INFO log carried {info_total} lines in all
({", ".join(f"{k} {v}" for k, v in sk["info"].most_common(6))}); the lease after the stop: {sk["lease_after"]}.

What the figures say:
- The goal is >= {GOAL_ROWS_PER_S} rows/s into SQS (10^6 rows in <= 10 minutes). On this machine the
  Mongo double's aggregation and moto's per-message CPU set the rate, not discovery: see the
  parts. Against real SQS one `SendMessageBatch` is a round trip of 5-20 ms; with 4 in flight a page
  of 100 rows costs about 3 round trips, so the SQS side alone allows ~{int(100 / (3 * 0.015))} rows/s at 15 ms, and
  discovery's own CPU (bodies, decisions, logging) is the "other" column. Whether a real MongoDB
  streams a sorted 10^6-row aggregation that fast cannot be measured here (no `mongod`); the
  pipeline's first `$match` is served by the spec's indexes (`doctor --explain` shows it).
- The 10^6-row size is not run: the double materialises the whole aggregation in memory and its
  cost per row grows with the size (its `$sort` and `$unwind` are Python), which would take most of
  an hour here and measure the double.
"""
    write_section("discover_scale", md)


if __name__ == "__main__":
    main()
