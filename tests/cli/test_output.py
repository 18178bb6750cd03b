"""Issue 14, "one voice for the CLI": one output object knows ``--json``, success and failure.

Every command prints through :class:`~anomaly_cli.cli.output.Output`: under ``--json`` a failure
is exactly one ``{"error": {...}}`` document on stdout, without it a human ``error (code): ...``
line on stderr (a ``command_failed`` JSON event where stderr carries JSON lines) and nothing on
stdout; the exit code is the same either way. No command module
passes a ``json_mode`` flag by hand or writes JSON itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomaly_cli.cli import exit_codes
from anomaly_cli.cli.app import app

COMMANDS = Path(__file__).resolve().parents[2] / "anomaly_cli" / "cli" / "commands"
BAD = {"BATCH_SIZE": "many"}  # an invalid setting: every command that loads settings refuses it

#: (arguments, environment, error code, exit code) of a failure each command can reach without a network
FAILURES = [
    (["score", "{empty}"], {}, "no_inputs", exit_codes.RET_USAGE),
    (["score", "{empty}"], {"MODEL_DIR": "{empty}/no-models"}, "model_error", exit_codes.RET_CONFIG),
    (["model", "train", "--out", "{empty}/v9"], {}, "usage", exit_codes.RET_USAGE),
    (["model", "evaluate"], {}, "usage", exit_codes.RET_USAGE),
    (["model", "info"], {"MODEL_DIR": "{empty}/no-models"}, "model_error", exit_codes.RET_CONFIG),
    (["seed-sqs"], {}, "usage", exit_codes.RET_USAGE),
    (["seed-sqs", "--synthetic", "2", "--dry-run"], {}, "usage", exit_codes.RET_USAGE),
    (["replay-dlq", "--native", "--dry-run"], {}, "usage", exit_codes.RET_USAGE),
    (["push-urls", "{empty}/no-such-list.txt", "--dry-run"], {}, "config_invalid", exit_codes.RET_CONFIG),
    (["rescreen", "2025-12-20", "--dry-run"], {"MONGO_URI": "mongomok://"}, "config_invalid", exit_codes.RET_CONFIG),
    (["coverage", "2025-12-20", "--no-queue"], {"MONGO_URI": "mongomok://"}, "config_invalid", exit_codes.RET_CONFIG),
    (["doctor", "--no-aws", "--no-model"], BAD, "config_invalid", exit_codes.RET_CONFIG),
    (["config", "show"], BAD, "config_invalid", exit_codes.RET_CONFIG),
    (["demo"], BAD, "config_invalid", exit_codes.RET_CONFIG),
    (["discover", "--test-date", "2025-12-20"], BAD, "config_invalid", exit_codes.RET_CONFIG),
    (["state", "show", "2025-12-20"], {"MONGO_URI": "mongomock://voice"}, "state_not_found", exit_codes.RET_ERROR),
    (["results", "show", "deadbeefdeadbeef"], {"MONGO_URI": "mongomock://voice"}, "not_found", exit_codes.RET_ERROR),
    (["results", "report", "2025-12-20", "--to", "2025-12-01"], {}, "config_invalid", exit_codes.RET_CONFIG),
]


def _run(args: list[str], env: dict[str, str], tmp_path: Path, *, json_out: bool):
    fill = {"empty": str(tmp_path)}
    argv = [a.format(**fill) for a in args] + (["--json"] if json_out else [])
    environment = {"COLUMNS": "200", "MONGO_URI": "mongomock://output", **{k: v.format(**fill) for k, v in env.items()}}
    return CliRunner().invoke(app, argv, env=environment)


@pytest.mark.parametrize("args,env,code,exit_code", FAILURES, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_failure_is_one_json_document_under_json_and_a_human_line_without(
    args: list[str], env: dict[str, str], code: str, exit_code: int, tmp_path: Path
) -> None:
    # GIVEN a failure the command reaches WHEN it runs with --json THEN stdout is exactly the error document
    r = _run(args, env, tmp_path, json_out=True)
    assert r.exit_code == exit_code, r.output
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    error = json.loads(lines[0])["error"]
    assert error["code"] == code and error["message"]
    # AND without --json: the same exit code, nothing on stdout, the same code on stderr for a person
    r = _run(args, env | {"LOG_FORMAT": "console"}, tmp_path, json_out=False)
    assert r.exit_code == exit_code, r.output
    assert r.stdout == ""
    assert f"error ({code}): " in r.stderr
    # AND where stderr carries JSON lines (not a terminal): the error is one event like the others
    r = _run(args, env, tmp_path, json_out=False)
    assert r.exit_code == exit_code and r.stdout == ""
    failed = [json.loads(line) for line in r.stderr.splitlines() if '"command_failed"' in line]
    assert [(e["level"], e["code"], e["exit_code"]) for e in failed] == [("ERROR", code, exit_code)], r.stderr
    for line in r.stderr.splitlines():
        json.loads(line)


def test_no_command_passes_json_mode_by_hand_or_writes_json_itself() -> None:
    offenders = []
    for path in sorted(COMMANDS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in (
            r"json_mode\s*=",
            r"\bemit_json\b",
            r"json\.dumps",
            r"\bhandle_errors\b",
            r"import[^\n]*\bfail\b",
        ):
            if re.search(pattern, text):
                offenders.append(f"{path.name}: {pattern}")
        if '"--json"' in text and "Output(" not in text:
            offenders.append(f"{path.name}: a --json option without an Output")
    assert not offenders, offenders


def test_score_streams_one_json_object_per_input_and_one_table_without(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(3)
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, (0.1 * rng.standard_normal(16000 * 2)).astype("float32"), 16000)
    r = CliRunner().invoke(app, ["score", str(tmp_path), "--json"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(Path(row["input"]).name for row in rows) == ["a.wav", "b.wav"]
    r = CliRunner().invoke(app, ["score", str(tmp_path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "anomaly score (model" in r.stdout and "2 screened" in r.stderr
