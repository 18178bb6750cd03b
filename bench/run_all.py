"""Run every benchmark in bench/ and rewrite BENCHMARKS.md from their sections.

Run: `make bench` (or `.venv/bin/python bench/run_all.py [--quick]`). Each bench_*.py measures its
claim against a baseline in the same run and writes bench/sections/<name>.md.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "features",
    "decode",
    "decode_cost",
    "pipeline",
    "pipeline_speech",
    "worker",
    "worker_memory",
    "discover",
    "discover_scale",
    "startup",
    "crash_matrix",
]


def main() -> int:
    quick = ["--quick"] if "--quick" in sys.argv else []
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script), *quick], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    write_report()
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


def write_report() -> None:
    sections = {p.stem: p.read_text(encoding="utf-8") for p in (HERE / "sections").glob("*.md")}
    names = [n for n in ORDER if n in sections] + sorted(n for n in sections if n not in ORDER)
    head = (
        f"# Benchmarks\n\nEvery figure is measured by a script in `bench/` against a baseline in the same run; "
        f"`make bench` reruns them all and rewrites this file (assembled {dt.date.today().isoformat()}). "
        "No test asserts a speed.\n\n"
    )
    (HERE.parent / "BENCHMARKS.md").write_text(
        head + "\n".join(sections[n].strip() + "\n" for n in names), encoding="utf-8"
    )


if __name__ == "__main__":
    if "--report-only" in sys.argv:
        write_report()
        sys.exit(0)
    sys.exit(main())
