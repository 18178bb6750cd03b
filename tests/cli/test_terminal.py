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


class Terminal:
    """An interactive session on a 120x40 pseudo-terminal: type keys, wait for text on the screen."""

    def __init__(self, args: list[str], tmp_path: Path):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGO_", "SQS_", "AUDIO_", "LOG_"))}
        env.update({"HOME": str(tmp_path), "TERM": "xterm-256color", "ANOMALY_ENV_FILE": str(tmp_path / "none.env")})
        env.pop("COLUMNS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anomaly_cli", *args], stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT
        )
        os.close(slave)
        self.raw = b""

    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def wait_for(self, words: str, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while words not in self.text():
            assert time.monotonic() < end and self.proc.poll() is None, self.text()[-3000:]
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                chunk = os.read(self.master, 65536)
                self.raw += chunk
                if b"\x1b[6n" in chunk:  # prompt_toolkit asks where the cursor is: answer as a terminal does
                    os.write(self.master, b"\x1b[1;1R")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self.master)


def test_the_sandbox_prompt_completes_runs_and_remembers(tmp_path: Path) -> None:
    # GIVEN the sandbox's prompt on a terminal
    term = Terminal(["sandbox"], tmp_path)
    try:
        term.wait_for("anomaly>")
        # WHEN a person types half a command, presses Tab, then Enter
        term.type(b"state li\t")
        time.sleep(0.5)
        term.type(b"\r")
        # THEN Tab completed it and it ran against the sandbox
        term.wait_for("no discovery state yet")
        term.wait_for("anomaly>")
        term.type(b"exit\r")
    finally:
        rc = term.close()
    assert rc == 0
    # AND the prompt's history (kept across sessions) has the completed command
    history = (tmp_path / ".anomaly_sandbox_history").read_text(encoding="utf-8")
    assert "+state list\n" in history


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
