"""`anomaly --help` start-up time vs a bare Python interpreter, and what it imports.

Run: .venv/bin/python bench/bench_startup.py [--quick]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_section


def timed(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    runs = 3 if "--quick" in sys.argv else 15
    bare = timed([sys.executable, "-c", "pass"], runs)
    help_ = timed([sys.executable, "-m", "anomaly_cli", "--help"], runs)
    heavy = timed([sys.executable, "-c", "import numpy, sklearn.ensemble, boto3, pymongo"], max(3, runs // 3))
    check = (
        "import sys; from anomaly_cli.cli.app import app\ntry:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(','.join(m for m in ('numpy','sklearn','boto3','pymongo','scipy') if m in sys.modules) or 'none')"
    )
    imported = (
        subprocess.run([sys.executable, "-c", check], capture_output=True, text=True).stdout.strip().splitlines()[-1]
    )
    md = f"""## CLI start-up

Machine: {machine()}. Command: `.venv/bin/python bench/bench_startup.py` (median of {runs} runs).

| what | seconds | ratio to bare `python -c pass` |
|---|---|---|
| `python -c pass` | {bare:.3f} | 1.0x |
| `anomaly --help` (`python -m anomaly_cli --help`) | {help_:.3f} | {help_ / bare:.1f}x |
| importing numpy + sklearn.ensemble + boto3 + pymongo (what `--help` avoids) | {heavy:.3f} | {heavy / bare:.1f}x |

Heavy modules imported by `--help`: **{imported}**.
"""
    write_section("startup", md)


if __name__ == "__main__":
    main()
