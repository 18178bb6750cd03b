#!/usr/bin/env python3
"""Compatibility wrapper: the old ad-hoc URL script, now ``anomaly push-urls`` underneath.

    python3 scripts/push_audio_urls_to_sqs.py --input urls.txt --test-date 2025-12-20
    cat urls.txt | python3 scripts/push_audio_urls_to_sqs.py

The old script's flags are not recorded anywhere this repository can cite; ``--input`` / ``--file`` (or a positional
file) name the input, default stdin. Settings come from the same loader; exit codes are the CLI's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing


def to_cli_args(argv: list[str]) -> list[str]:
    """Translate the script's flags into ``anomaly push-urls`` arguments."""
    p = argparse.ArgumentParser(description="Screen ad-hoc recordings (same as `anomaly push-urls`).")
    p.add_argument("source", nargs="?", help="file of URLs or CSV (default: stdin)")
    p.add_argument("--input", "--file", "-i", dest="input", help="file of URLs or CSV")
    p.add_argument("--test-date")
    p.add_argument("--name", help="names the input (source_collection adhoc:NAME)")
    p.add_argument("--queue-url")
    p.add_argument("--rescreen", action="store_true")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    args = ["push-urls", a.input or a.source or "-"]
    for flag, value in (("--test-date", a.test_date), ("--name", a.name), ("--queue-url", a.queue_url)):
        if value is not None:
            args += [flag, value]
    return args + ["--rescreen"] * a.rescreen + ["--dry-run"] * a.dry_run + ["--json"] * a.json


def main(argv: list[str] | None = None) -> None:
    """Run ``anomaly push-urls`` with the translated arguments."""
    from anomaly_cli.cli.app import app

    app(to_cli_args(sys.argv[1:] if argv is None else argv), prog_name="push_audio_urls_to_sqs.py")


if __name__ == "__main__":
    main()
