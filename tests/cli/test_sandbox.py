"""Issue 14, problem 1 and the README walkthrough: ``anomaly sandbox`` keeps one process's state
across commands, and the README's "try it on data like yours" lines run through it as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from anomaly_cli.cli import exit_codes
from anomaly_cli.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
FRAGMENT = ROOT / "docs" / "readme" / "20-try-it.md"
SOURCE = "docs/examples/sandbox/source.json"
AUDIO = "docs/examples/sandbox/recordings"


def walkthrough() -> tuple[list[str], list[str]]:
    """(the sandbox's own arguments, the commands typed at its prompt) of the README block."""
    text = FRAGMENT.read_text(encoding="utf-8")
    block = re.search(r"<!-- WALKTHROUGH.*?```console\n(.*?)```", text, re.S)
    assert block, "the README's sandbox walkthrough block is missing"
    lines = block.group(1).strip().splitlines()
    start = shlex.split(lines[0].removeprefix("$ "))
    assert start[:2] == ["anomaly", "sandbox"], lines[0]
    typed = [ln.removeprefix("anomaly> ").split("  #")[0].strip() for ln in lines[1:] if ln.startswith("anomaly> ")]
    return start[2:], typed


def sandbox(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # a clean environment: nothing of this machine's AWS or Mongo settings, a .env-free folder's view
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGO_", "SQS_", "AUDIO_"))}
    env.update({"COLUMNS": "200", "HOME": str(tmp_path), "ANOMALY_ENV_FILE": str(tmp_path / "none.env")})
    return subprocess.run(
        [sys.executable, "-m", "anomaly_cli", "sandbox", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def json_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith(("{", "["))]


def test_the_readme_walkthrough_runs_in_the_sandbox(tmp_path: Path) -> None:
    # GIVEN the README's walkthrough as written
    args, typed = walkthrough()
    assert typed, "no commands in the walkthrough"
    # WHEN it runs non-interactively (the same commands, one --run each)
    r = sandbox([*args, *[a for line in typed for a in ("--run", line)]], tmp_path)
    # THEN every command succeeded and showed what the README promises
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "anomaly sandbox" in out and "AWS_ENDPOINT_URL=http://127.0.0.1:" in out
    assert "4 recordings" in out and "3 source documents" in out
    assert "completed" in out  # state show: the state the discover before it left
    assert "failed at fetch: not_found" in out  # results show of the recording never uploaded
    assert "None None Hz" not in out and "xNone" not in out
    # stderr is JSON lines (not a terminal), every one of them
    for line in r.stderr.splitlines():
        assert line.startswith("{"), line
    events = [json.loads(line) for line in r.stderr.splitlines()]
    assert not [e for e in events if e["event"] == "item_skipped"]  # nothing acked as source_gone


def test_commands_share_one_state_in_the_sandbox(tmp_path: Path) -> None:
    # GIVEN the example documents and recordings in a sandbox
    runs = ["discover --test-date 2025-12-20 --json", "state show 2025-12-20 --json", "work --idle-exit 2"]
    runs += ["results inspect 2025-12-20 --json"]
    r = sandbox(["--source", SOURCE, "--audio", AUDIO, *[a for x in runs for a in ("--run", x)]], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    # WHEN discover enqueued, THEN the next command sees its state and the worker its rows
    discovered, state, inspected = json_lines(r.stdout)
    assert discovered["enqueued"] == 5
    assert state["status"] == "completed" and state["stats"]["enqueued"] == 5
    assert inspected["total"] == 5 and inspected["failures_by_code"] == {"not_found": 1}
    assert {row["status"] for row in inspected["rows"]} == {"ok", "failed"} and len(inspected["rows"]) == 5


def test_the_first_failing_command_ends_the_script_with_its_code(tmp_path: Path) -> None:
    script = tmp_path / "steps.txt"
    script.write_text("# a comment\nstate list --json\nanomaly state show 2025-13-01\nstate list\n", encoding="utf-8")
    r = sandbox(["--script", str(script)], tmp_path)
    assert r.returncode == exit_codes.RET_USAGE
    assert json_lines(r.stdout) == [[]]  # the first command ran, the third never did


def test_an_unconfirmed_reset_is_an_error_event_and_deletes_nothing(tmp_path: Path) -> None:
    # GIVEN a state document, WHEN state reset asks for confirmation and stdin ends (no answer)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGO_", "SQS_", "AUDIO_"))}
    env.update({"HOME": str(tmp_path), "ANOMALY_ENV_FILE": str(tmp_path / "none.env")})
    steps = ["discover --test-date 2025-12-20 --dry-run", "discover --test-date 2025-12-20", "state reset 2025-12-20"]
    r = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", "sandbox", "--source", SOURCE, "--keep-going"]
        + [a for s in steps + ["state show 2025-12-20 --json"] for a in ("--run", s)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # THEN the reset failed as an event (after the question, which has no newline of its own), and
    # the state is still there
    assert r.returncode == exit_codes.RET_ERROR, r.stderr[-3000:]
    events = [json.loads(line[line.index('{"ts"') :]) for line in r.stderr.splitlines() if '{"ts"' in line]
    assert [e["code"] for e in events if e["event"] == "command_failed"] == ["aborted"]
    # (Click's prompt writes its trailing space to stdout, err=True or not)
    assert json.loads(r.stdout.splitlines()[-1].strip())["status"] == "completed"


def test_a_source_file_that_is_not_json_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "docs.json"
    bad.write_text("{not json", encoding="utf-8")
    r = sandbox(["--source", str(bad), "--run", "state list"], tmp_path)
    assert r.returncode == exit_codes.RET_CONFIG and "--source" in r.stderr


def test_outside_the_sandbox_the_embedded_backend_is_explained_where_it_bites(monkeypatch: Any) -> None:
    # GIVEN the embedded double in a command of its own (nothing persists from an earlier one)
    monkeypatch.setenv("MONGO_URI", "mongomock://alone")
    runner = CliRunner()
    # WHEN state show finds nothing, THEN the hint explains the backend instead of "run discover"
    r = runner.invoke(app, ["state", "show", "2025-12-20", "--json"])
    assert r.exit_code == exit_codes.RET_ERROR
    hint = json.loads(r.stdout)["error"]["hint"]
    assert "anomaly sandbox" in hint and "real MongoDB" in hint and "anomaly discover" not in hint
    # AND doctor's fix for the missing source collection is the same explanation
    r = runner.invoke(app, ["doctor", "--no-aws", "--no-model", "--json"])
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert "anomaly sandbox" in checks["source collection"]["fix"]
    # AND work refuses to start (it would ack every message as source_gone), saying why
    monkeypatch.setenv("SQS_QUEUE_URL", "http://127.0.0.1:1/123456789012/q")
    monkeypatch.setenv("AUDIO_URL_ALLOWLIST", "s3://b")
    r = runner.invoke(app, ["work", "--idle-exit", "1"])
    assert r.exit_code == exit_codes.RET_CONFIG
    assert "anomaly sandbox" in r.output


def test_the_prompt_completes_commands_options_and_choice_values() -> None:
    from prompt_toolkit.document import Document

    from anomaly_cli.cli.commands.sandbox import _completer

    complete = _completer(typer.main.get_command(app))

    def offered(text: str) -> set[str]:
        return {c.text for c in complete.get_completions(Document(text), None)}

    assert {"discover", "state"} <= offered("")
    assert offered("state ") == {"list", "reset", "show"}
    assert offered("discover --mode ") == {"backfill", "incremental", "sweep"}
    assert offered("results report 2025-12-20 --lang ") == {"en", "mr"}
    assert "--dry-run" in offered("discover --dr")
