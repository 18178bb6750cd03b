"""Issue 14, problem 2: what a person sees on a terminal. ``anomaly work`` (in the sandbox) and
``anomaly demo`` run under a pseudo-terminal: progress bars, the worker's live panel and short
human event lines, never raw JSON."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def on_terminal(args: list[str], tmp_path: Path, *, timeout: float = 600) -> tuple[int, list[str]]:
    """Run ``python -m anomaly_cli ARGS`` with stdin/stdout/stderr on a 120x40 pseudo-terminal;
    (exit code, the screen's lines as written, escape sequences removed)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGO_", "SQS_", "AUDIO_", "LOG_"))}
    env.update({"HOME": str(tmp_path), "TERM": "xterm-256color", "ANOMALY_ENV_FILE": str(tmp_path / "none.env")})
    env.pop("COLUMNS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "anomaly_cli", *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT
    )
    os.close(slave)
    raw = b""
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the other side closed: the process ended
                    break
                if not chunk:
                    break
                raw += chunk
            elif proc.poll() is not None:
                break
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r", "\n")
    return rc, [line for line in text.split("\n") if line.strip()]


def assert_no_json(lines: list[str]) -> None:
    raw = [line for line in lines if line.lstrip().startswith("{") or '"event":' in line]
    assert not raw, raw[:3]


def test_work_shows_its_live_panel_and_human_lines_not_json(tmp_path: Path) -> None:
    # GIVEN the example students in a sandbox, WHEN discover and work run on a terminal
    rc, lines = on_terminal(
        [
            "sandbox",
            "--source",
            "docs/examples/sandbox/source.json",
            "--audio",
            "docs/examples/sandbox/recordings",
            "--run",
            "discover --test-date 2025-12-20",
            "--run",
            "work --idle-exit 3",
        ],
        tmp_path,
    )
    assert rc == 0, "\n".join(lines[-40:])
    # THEN a person sees the worker's panel with its counters, and events as short lines
    assert any("anomaly work" in line for line in lines), lines[-40:]
    assert any(re.search(r"succeeded\s+\d", line) for line in lines)
    assert any(re.search(r"\d\d:\d\d:\d\d INFO\s+worker\s+worker_started", line) for line in lines)
    assert any("sandbox>" in line and "anomaly work" in line for line in lines)
    # AND no raw JSON, and the per-message chatter is not there at INFO
    assert_no_json(lines)
    assert not any("message_buffered" in line or "batch_dispatched" in line for line in lines)


def test_an_error_on_a_terminal_is_for_a_person(tmp_path: Path) -> None:
    rc, lines = on_terminal(["state", "show", "2025-13-01"], tmp_path, timeout=120)
    assert rc == 2
    assert any("Invalid value for argument DATE" in line for line in lines), lines
    rc, lines = on_terminal(["seed-sqs"], tmp_path, timeout=120)
    assert rc == 2 and any(line.startswith("error (usage): seed-sqs needs a source") for line in lines), lines
    assert_no_json(lines)


@pytest.mark.slow
def test_demo_shows_progress_bars_not_json(tmp_path: Path) -> None:
    rc, lines = on_terminal(["demo", "--students", "5"], tmp_path)
    assert rc == 0, "\n".join(lines[-40:])
    bars = [line for line in lines if "━" in line and re.search(r"\d+/\d+", line)]
    for phase in ("generate", "upload to S3", "discover", "screen"):
        assert any(line.startswith(phase) for line in bars), phase
    assert any(line.startswith("set up") for line in lines)  # something on screen from the first second
    assert any("false alarms:" in line for line in lines)
    assert_no_json(lines)
