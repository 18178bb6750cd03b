"""Issue 14, problem 9: when stderr is not a terminal (or ``LOG_FORMAT=json``), every line the
process writes there is JSON: third-party warnings included, no progress bar residue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGO_", "SQS_", "LOG_"))}
    base.update({"MONGO_URI": "mongomock://stderr", "ANOMALY_ENV_FILE": str(tmp_path / "none.env"), **env})
    return subprocess.run(
        [sys.executable, *args], cwd=tmp_path, env=base, capture_output=True, text=True, timeout=120, check=False
    )


def assert_json_lines(stderr: str) -> list[dict]:
    lines = stderr.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    events = []
    for line in lines:  # a blank line (a progress bar's residue) fails here too
        events.append(json.loads(line))
    return events


@pytest.mark.parametrize(
    "args",
    [
        ["discover", "--test-date", "2025-12-20", "--dry-run"],
        ["coverage", "2025-12-20", "--no-queue"],
        ["results", "dedupe", "2025-12-20"],
    ],
    ids=lambda a: a[0],
)
def test_commands_on_the_embedded_backend_write_only_json_to_stderr(args: list[str], tmp_path: Path) -> None:
    r = run(["-m", "anomaly_cli", *args], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    events = assert_json_lines(r.stderr)
    # the double's "option is a no-op" UserWarnings are not news at all
    assert not [e for e in events if "no-op in mongomock" in str(e.get("message"))]


def test_any_python_warning_is_a_json_event(tmp_path: Path) -> None:
    code = (
        "import warnings\nfrom anomaly_cli.log import configure_logging\n"
        "configure_logging('INFO', fmt='auto')\n"
        "warnings.warn('a library complains', DeprecationWarning, stacklevel=1)\n"
        "warnings.warn('another one')\n"
    )
    r = run(["-W", "always", "-c", code], tmp_path)
    events = assert_json_lines(r.stderr)
    assert events and [(e["event"], e["category"]) for e in events] == [
        ("python_warning", "DeprecationWarning"),
        ("python_warning", "UserWarning"),
    ]


def test_log_format_chooses_the_renderer(tmp_path: Path) -> None:
    # LOG_FORMAT=json|console forces one; auto is console only on a terminal (stderr is a pipe here)
    code = (
        "import sys, os\nfrom anomaly_cli.log import configure_logging, get_logger\n"
        "chosen = configure_logging('INFO', sys.stderr, fmt=os.environ['LOG_FORMAT'])\n"
        "get_logger('t').info('hello', n=1)\nprint(chosen)\n"
    )
    for fmt, expect in (("json", "json"), ("console", "console"), ("auto", "json")):
        r = run(["-c", code], tmp_path, LOG_FORMAT=fmt)
        assert r.stdout.strip() == expect
        if expect == "json":
            assert json.loads(r.stderr)["event"] == "hello"
        else:
            assert "hello" in r.stderr and not r.stderr.startswith("{")


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["state", "show", "2025-13-01"], "invalid_value", ["argument DATE", "month must be in 1..12"]),
        (["discover", "--no-such-flag"], "usage", ["--no-such-flag"]),
        (["state", "show", "2025-12-20"], "state_not_found", ["2025-12-20", "anomaly sandbox"]),
        (["seed-sqs"], "usage", ["seed-sqs needs a source"]),
    ],
    ids=["bad-date", "bad-flag", "not-found", "no-source"],
)
def test_a_failing_command_s_error_is_a_json_event_too(
    args: list[str], code: str, words: list[str], tmp_path: Path
) -> None:
    # GIVEN stderr is not a terminal WHEN a command fails (usage errors included) THEN its error is
    # one command_failed event among JSON lines, not a human line in the JSON stream
    r = run(["-m", "anomaly_cli", *args], tmp_path)
    assert r.returncode in (1, 2), r.stderr
    events = assert_json_lines(r.stderr)
    failed = [e for e in events if e["event"] == "command_failed"]
    assert len(failed) == 1 and failed[0]["code"] == code and failed[0]["exit_code"] == r.returncode
    assert all(w in failed[0]["message"] + (failed[0]["hint"] or "") for w in words), failed[0]
    assert r.stdout == ""
