#!/usr/bin/env python3
"""Compatibility wrapper: the old discovery script, now ``anomaly discover`` underneath.

    python3 scripts/mongo_to_sqs_stream.py --mode backfill --test-date 2025-12-20 --batch-size 100 --max-records 100

Every flag maps to the same flag of ``anomaly discover``; settings come from the same loader
(.env, environment), and the exit codes are the CLI's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def to_cli_args(argv: list[str]) -> list[str]:
    """Translate the old flags into ``anomaly discover`` arguments."""
    p = argparse.ArgumentParser(description="Enqueue reading rows of a test date (same as `anomaly discover`).")
    p.add_argument("--mode", choices=["backfill", "incremental", "sweep"])
    p.add_argument("--test-date")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-records", type=int)
    p.add_argument("--subject-name")
    p.add_argument("--poll-interval", type=float)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    args = ["discover"]
    for flag, value in (
        ("--mode", a.mode),
        ("--test-date", a.test_date),
        ("--batch-size", a.batch_size),
        ("--max-records", a.max_records),
        ("--subject-name", a.subject_name),
        ("--poll-interval", a.poll_interval),
    ):
        if value is not None:
            args += [flag, str(value)]
    args += ["--dry-run"] * a.dry_run + ["--json"] * a.json
    return args


def main(argv: list[str] | None = None) -> None:
    from anomaly_cli.cli.app import app

    app(to_cli_args(sys.argv[1:] if argv is None else argv), prog_name="mongo_to_sqs_stream.py")


if __name__ == "__main__":
    main()
