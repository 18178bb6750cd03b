"""The crash matrix at full size: for each crash point x seed, a worker is killed (an uncatchable
``BaseException``, every later call of it dead) and a new worker takes over; the invariants are
checked for every item. Baseline in the same run: the same items with no crash (time to finish).

Run: .venv/bin/python bench/bench_crash_matrix.py [--quick] [--seeds N] [--items N] [--shard K/N | --merge N]
Full: 20 seeds x 300 items x 5 points (long: about 90 min on one core). --quick: 2 seeds x 60 items.
Sharded (one process per core, the figures assembled afterwards):
  bench_crash_matrix.py --shard 0/2 & bench_crash_matrix.py --shard 1/2; bench_crash_matrix.py --merge 2
A shard runs the seeds with seed % N == K at every crash point, plus its own clean baseline, and
writes its verdicts to bench/.crash_matrix/shard-K-of-N.json; --merge N writes the section from them.
The scenario code is tests/faults/crashkit.py (the CI tests run the same code, smaller).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_section  # noqa: E402

SHARDS = ROOT / "bench" / ".crash_matrix"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--items", type=int, default=None)
    ap.add_argument("--shard", default=None, help="K/N: run only the seeds with seed %% N == K")
    ap.add_argument("--merge", type=int, default=None, help="assemble the section from N shards' verdicts")
    args = ap.parse_args()
    seeds = args.seeds or (2 if args.quick else 20)
    items = args.items or (60 if args.quick else 300)
    if args.merge:
        return merge(args.merge, args.quick)
    shard = tuple(int(x) for x in args.shard.split("/")) if args.shard else (0, 1)
    # moto needs credentials to exist; these are fake and local (nothing leaves the process)
    for k, v in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "ap-south-1",
        "AWS_REGION": "ap-south-1",
    }.items():
        os.environ.setdefault(k, v)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    logging.getLogger("anomaly").setLevel(logging.ERROR)  # the verdicts are the output, not the event stream
    import threading

    import boto3
    import mongomock_ng
    from moto import mock_aws

    from anomaly_cli.model.engine import load_model
    from tests.faults.crashkit import POINTS, make_recordings, run_scenario
    from tests.worker.conftest import AudioServer

    threading.excepthook = lambda a: None  # the dead workers' threads die of the injected Crash by design
    model = load_model(ROOT / "anomaly_cli" / "models")
    server = AudioServer()
    server._thread.start()
    rows = []
    t_all = time.monotonic()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="ap-south-1")
        mongo = mongomock_ng.MongoClient(tz_aware=True)
        recs = make_recordings(items, 7)
        base = run_scenario(
            "none", 0, items=items, model=model, sqs=sqs, mongo=mongo, server=server, recordings=recs, deadline_s=1800
        )
        for point in POINTS:
            for seed in [x for x in range(1, seeds + 1) if x % shard[1] == shard[0]]:
                v = run_scenario(
                    point,
                    seed,
                    items=items,
                    model=model,
                    sqs=sqs,
                    mongo=mongo,
                    server=server,
                    recordings=recs,
                    deadline_s=1800,
                )
                rows.append(v)
                print(
                    f"{point:15s} seed {seed:2d}: holds={v.holds} results={v.results}/{v.items} "
                    f"at_crash={v.results_at_crash} acked={v.acked} {v.seconds}s",
                    file=sys.stderr,
                    flush=True,
                )
    server.httpd.shutdown()
    total_s = time.monotonic() - t_all
    if args.shard:
        SHARDS.mkdir(parents=True, exist_ok=True)
        out = SHARDS / f"shard-{shard[0]}-of-{shard[1]}.json"
        out.write_text(
            json.dumps(
                {
                    "items": items,
                    "seeds": seeds,
                    "total_s": total_s,
                    "machine": machine(),
                    "base": dataclasses.asdict(base),
                    "rows": [dataclasses.asdict(v) for v in rows],
                }
            )
        )
        print(f"wrote {out}", file=sys.stderr)
        sys.exit(0 if all(v.holds for v in rows) else 1)
    write_report(rows, [base], seeds, items, total_s, args.quick, "")


def merge(n: int, quick: bool) -> None:
    """The section from ``n`` shards' verdict files (they ran at the same time, one per core)."""
    from tests.faults.crashkit import Verdict

    parts = [json.loads((SHARDS / f"shard-{k}-of-{n}.json").read_text()) for k in range(n)]
    rows = [Verdict(**r) for p in parts for r in p["rows"]]
    bases = [Verdict(**p["base"]) for p in parts]
    note = (
        f" Run as {n} shards at the same time (`--shard K/{n}`, one per core, then `--merge {n}`); "
        f"total is the longest shard's wall time."
    )
    write_report(rows, bases, parts[0]["seeds"], parts[0]["items"], max(p["total_s"] for p in parts), quick, note)


def write_report(rows: list, bases: list, seeds: int, items: int, total_s: float, quick: bool, note: str) -> None:
    from tests.faults.crashkit import POINTS

    base_s = sum(b.seconds for b in bases) / len(bases)
    lines = []
    for point in POINTS:
        vs = [v for v in rows if v.point == point]
        mean_s = sum(v.seconds for v in vs) / len(vs)
        lines.append(
            f"| {point} | {len(vs)} | {sum(v.crashed for v in vs)} | {sum(v.holds for v in vs)} | "
            f"{sum(v.items for v in vs)} | {sum(v.results for v in vs)} | {sum(v.results_at_crash for v in vs)} | "
            f"{sum(len(v.acked_without_result) for v in vs)} | {sum(len(v.missing) for v in vs)} | "
            f"{sum(len(v.overwritten) for v in vs)} | {sum(len(v.rescreened_after_result) for v in vs)} | "
            f"{mean_s:.1f} | {mean_s / max(base_s, 1e-9):.2f}x |"
        )
    ok = all(v.holds for v in rows)
    cmd = "`.venv/bin/python bench/bench_crash_matrix.py" + (" --quick`" if quick else "`")
    md = f"""## Crash matrix (worker killed at each stage boundary, then a takeover)

Machine: {machine()}. Command: {cmd} ({seeds} seeds x {items} items per crash point; moto in-process SQS,
Mongo double, real engine, audio from a local HTTP server; visibility timeout 2 s). Total {total_s:.0f} s.{note}

A crash is a `BaseException` raised at the stage boundary; from then on every call of that worker to
SQS or Mongo raises too (no release, no ack, no heartbeat: like `kill -9`). A new worker takes over.
Invariants per item: no ack without its durable result (checked at every delete call), exactly one
result at the end (none lost), a result present at the crash never overwritten (same `processing`
block) and its item never screened again.

| crash point | runs | crashed | invariants held | items | results | results at crash | acked w/o result | lost | overwritten | re-screened | mean s/run | vs clean run |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

Baseline (same run, no crash, {items} items): {base_s:.1f} s, {sum(b.results for b in bases)}/{sum(b.items for b in bases)} results{" over " + str(len(bases)) + " baseline runs (one per shard)" if len(bases) > 1 else ""}.
"vs clean run" is a scenario's wall time (crash + waiting out the 2 s visibility + takeover) over the baseline's.

Goal: every invariant holds in every run: **{"met" if ok else "NOT met"}** ({sum(v.holds for v in rows)}/{len(rows)} runs).
"""
    write_section("crash_matrix", md)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
