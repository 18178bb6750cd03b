"""Assemble README.md from docs/readme/*.md plus tables generated from the code.

The configuration table comes from ``anomaly_cli.config.Settings`` and the exit-code table from
``anomaly_cli.cli.exit_codes``, so the README cannot drift from them (tests/test_readme.py
fails when README.md is not what this script writes). Run: ``.venv/bin/python docs/build_readme.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anomaly_cli.cli import exit_codes  # noqa: E402
from anomaly_cli.config import setting_fields  # noqa: E402

FLAGS = {
    "test_date": "`--test-date`",
    "subject_name": "`--subject-name`",
    "discovery_batch_size": "`discover --batch-size`",
    "max_records": "`--max-records`",
    "poll_interval_seconds": "`--poll-interval`",
    "mongo_to_sqs_mode": "`--mode`",
    "batch_size": "`work --batch-size`",
    "max_concurrency": "`--concurrency`",
    "flush_seconds": "`--flush-seconds`",
    "sqs_wait_seconds": "`--wait-seconds`",
    "visibility_timeout_seconds": "`--visibility-timeout`",
    "model_version": "`--model-version`",
    "metrics_port": "`work --metrics-port`",
    "log_level": "`--log-level`",
}


def config_table() -> str:
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for f in setting_fields():
        default = f.default if f.default is not None else ""
        if isinstance(default, tuple):
            default = ",".join(default) or "(empty)"
        if default == "":
            default = "(empty)"
        meaning = f.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{f.metadata['env']}` | {FLAGS.get(f.name, '')} | `{default}` | {meaning} |")
    return "\n".join(lines)


def exit_table() -> str:
    doc = {}
    src = Path(exit_codes.__file__).read_text(encoding="utf-8")
    for line in src.splitlines():
        if line.startswith("RET_") and "#:" in line:
            name, _, rest = line.partition("=")
            doc[name.strip()] = rest.split("#:", 1)[1].strip()
    lines = ["| code | name | meaning |", "|---|---|---|"]
    for key, value in exit_codes.ALL.items():
        const = next(n for n in dir(exit_codes) if n.startswith("RET_") and getattr(exit_codes, n) == value)
        lines.append(f"| {value} | {key} | {doc.get(const, '')} |")
    return "\n".join(lines)


def build() -> str:
    parts = []
    for path in sorted((ROOT / "docs" / "readme").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        text = text.replace("<!-- CONFIG_TABLE -->", config_table()).replace("<!-- EXIT_CODES -->", exit_table())
        parts.append(text.strip() + "\n")
    return "\n".join(parts)


if __name__ == "__main__":
    target = ROOT / "README.md"
    content = build()
    if "--check" in sys.argv:
        sys.exit(0 if target.read_text(encoding="utf-8") == content else 1)
    target.write_text(content, encoding="utf-8")
    print(f"wrote {target} ({len(content)} chars)")
