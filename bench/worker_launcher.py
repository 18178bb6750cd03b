"""``anomaly work`` for the worker benchmark, with one difference: the embedded Mongo double.

There is no real MongoDB on this machine, so the benchmark's worker stores results in the
in-process double (``MONGO_URI=mongomock://``), which keeps every document in the worker's own
memory. So that the memory figure measures the worker and not the double, a daemon thread
deletes results older than ``BENCH_TRIM_SECONDS`` (default 30 s) from the double; the duplicate
and existing-result queries still see the recent ones. Production MongoDB is a separate server.

Run: ``python bench/worker_launcher.py work --concurrency 16 ...`` (same arguments as ``anomaly``).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _trim(uri: str, db: str, coll: str, keep_s: float) -> None:
    from anomaly_cli.adapters.mongo import connect

    results = connect(uri)[db][coll]
    while True:
        time.sleep(keep_s / 3)
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=keep_s)
        results.delete_many({"processing.processed_at": {"$lt": cutoff}})


def _trace(path: str, every_s: float) -> None:
    """Bench diagnostics: every ``every_s`` write the allocations grown since the first snapshot."""
    import tracemalloc

    time.sleep(every_s)
    first = tracemalloc.take_snapshot()
    while True:
        time.sleep(every_s)
        top = tracemalloc.take_snapshot().compare_to(first, "lineno")[:30]
        with open(path, "a") as f:
            f.write(f"--- {dt.datetime.now():%H:%M:%S} traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB\n")
            f.writelines(f"{stat}\n" for stat in top)


if __name__ == "__main__":
    if os.environ.get("BENCH_TRACEMALLOC_FILE"):
        import tracemalloc

        tracemalloc.start(4)
        threading.Thread(target=_trace, args=(os.environ["BENCH_TRACEMALLOC_FILE"], 60.0), daemon=True).start()
    uri = os.environ.get("MONGO_URI", "")
    if uri.startswith("mongomock://"):
        threading.Thread(
            target=_trim,
            args=(
                uri,
                os.environ.get("MONGO_DB_NAME", "nipun"),
                os.environ.get("MONGO_RESULT_COLLECTION", "anomaly_detection_results"),
                float(os.environ.get("BENCH_TRIM_SECONDS", "30")),
            ),
            daemon=True,
        ).start()
    from anomaly_cli.cli.app import main

    sys.argv[0] = "anomaly"
    main()
