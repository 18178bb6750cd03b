#!/usr/bin/env python3
"""Compatibility wrapper: the old seeding script, now ``anomaly seed-sqs`` underneath.

    python3 scripts/seed_sqs.py --file items.jsonl
    python3 scripts/seed_sqs.py --count 50 --bucket nipun-audio --prefix samples/ --test-date 2025-12-20

The old script's flags are not recorded anywhere this repository can cite; these are chosen to be obvious, and the
``anomaly seed-sqs`` names (``--from``, ``--synthetic``) are accepted too. Settings come from the
same loader (.env, environment), and exit codes are the CLI's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def to_cli_args(argv: list[str]) -> list[str]:
    """Translate the script's flags into ``anomaly seed-sqs`` arguments."""
    p = argparse.ArgumentParser(description="Put work items on the queue (same as `anomaly seed-sqs`).")
    p.add_argument("--file", "--from", dest="file", help="JSONL or CSV of 13-field work items ('-' = stdin)")
    p.add_argument("--count", "--synthetic", dest="count", type=int, help="send N synthetic test items")
    p.add_argument("--bucket", help="bucket of the synthetic items' audio")
    p.add_argument("--prefix", help="key prefix of the synthetic items' audio")
    p.add_argument("--test-date")
    p.add_argument("--queue-url")
    p.add_argument("--rescreen", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    args = ["seed-sqs"]
    for flag, value in (
        ("--from", a.file),
        ("--synthetic", a.count),
        ("--bucket", a.bucket),
        ("--prefix", a.prefix),
        ("--test-date", a.test_date),
        ("--queue-url", a.queue_url),
    ):
        if value is not None:
            args += [flag, str(value)]
    return args + ["--rescreen"] * a.rescreen + ["--dry-run"] * a.dry_run + ["--json"] * a.json


def main(argv: list[str] | None = None) -> None:
    """Run ``anomaly seed-sqs`` with the translated arguments."""
    from anomaly_cli.cli.app import app

    app(to_cli_args(sys.argv[1:] if argv is None else argv), prog_name="seed_sqs.py")


if __name__ == "__main__":
    main()
