"""The composed CLI: help is fast to import, every command is registered, version works."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from anomaly_cli.cli.app import app

COMMANDS = [
    "discover",
    "work",
    "score",
    "seed-sqs",
    "push-urls",
    "replay-dlq",
    "rescreen",
    "coverage",
    "doctor",
    "demo",
    "state",
    "results",
    "model",
    "config",
    "sandbox",
]


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from anomaly_cli.cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'sklearn', 'boto3', 'botocore', 'pymongo', 'scipy', 'av', 'soundfile')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "HEAVY=\n" in out or out.strip().endswith("HEAVY="), out[-500:]


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "anomaly_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("anomaly ")
