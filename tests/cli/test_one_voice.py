"""Issue 14, problems 5, 6 and 9: one voice for the CLI.

The same mistake gets the same exit code and the same words in every command; help shows
plain metavars, defaults and choices (no ``<bool>``, ``<str>``, ``{test_date}``); old cap
spellings still work; a mistyped Mongo scheme names the valid ones; an unreachable host is named
with its cause.
"""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from anomaly_cli.cli import exit_codes
from anomaly_cli.cli.app import app


def run(*args: str, **env: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})


BAD_DATES = [
    ("state", "show", "2025-13-01"),
    ("state", "reset", "2025-13-01", "--yes"),
    ("results", "inspect", "20251220"),
    ("results", "dedupe", "2025-02-30"),
    ("coverage", "2025-13-01"),
    ("rescreen", "20251220"),
    ("results", "report", "2025-13-01"),
]


@pytest.mark.parametrize("args", BAD_DATES, ids=lambda a: " ".join(a[:2]))
def test_a_bad_date_is_one_usage_error_everywhere(args: tuple[str, ...]) -> None:
    # GIVEN a bad positional date WHEN any command gets it THEN exit 2 naming "argument DATE"
    r = run(*args, MONGO_URI="mongomock://voice")
    assert r.exit_code == exit_codes.RET_USAGE, r.output
    assert "Invalid value for argument DATE" in r.output
    assert "TEST_DATE" not in r.output and "expected YYYY-MM-DD" in r.output


def test_a_bad_date_flag_names_the_flag_and_under_json_is_json() -> None:
    r = run("discover", "--test-date", "2025-13-01", "--json", MONGO_URI="mongomock://voice")
    assert r.exit_code == exit_codes.RET_USAGE
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "invalid_value" and "'--test-date'" in error["message"]


@pytest.mark.parametrize(
    "args",
    [
        ("seed-sqs", "--synthetic", "2", "--bucket", "b", "--dry-run", "--test-date", "2025-13-01"),
        ("push-urls", "-", "--dry-run", "--test-date", "2025-13-01"),
        ("results", "report", "2025-12-20", "--to", "2025-02-30"),
    ],
    ids=lambda a: a[0] if a[0] != "results" else "report --to",
)
def test_a_bad_date_flag_is_the_same_usage_error_in_every_command(args: tuple[str, ...]) -> None:
    r = run(*args, "--json", MONGO_URI="mongomock://voice")
    assert r.exit_code == exit_codes.RET_USAGE, r.output
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "invalid_value" and "is not a real date" in error["message"]
    assert "expected YYYY-MM-DD" in error["message"]


@pytest.mark.parametrize(
    "command, flag, values",
    [
        (("results", "report"), "--lang", "[en|mr]"),
        (("rescreen",), "--status", "[ok|failed]"),
        (("model", "evaluate"), "--source", "[formant|espeak|alsa]"),
    ],
)
def test_options_with_a_fixed_set_of_values_show_them_and_refuse_others(
    command: tuple[str, ...], flag: str, values: str
) -> None:
    assert values in run(*command, "--help").output
    r = run(*command, *(["2025-12-20"] if command[0] != "model" else ["--synthetic", "2"]), flag, "xx", "--json")
    assert r.exit_code == exit_codes.RET_USAGE and flag in json.loads(r.stdout)["error"]["message"]


def test_the_report_offers_every_language_the_page_has() -> None:
    from anomaly_cli.report.i18n import LANGS

    assert f"[{'|'.join(LANGS)}]" in run("results", "report", "--help").output


def test_a_bad_date_in_the_environment_is_a_config_error_naming_the_variable() -> None:
    r = run("discover", "--json", TEST_DATE="2025-13-01", MONGO_URI="mongomock://voice")
    assert r.exit_code == exit_codes.RET_CONFIG and "TEST_DATE" in json.loads(r.stdout)["error"]["message"]


def _helps() -> list[tuple[str, ...]]:
    from anomaly_cli.cli import completions

    return [n.path for n in completions.tree()]


@pytest.mark.parametrize("path", _helps(), ids=lambda p: " ".join(p) or "anomaly")
def test_help_has_no_type_placeholders(path: tuple[str, ...]) -> None:
    r = run(*path, "--help")
    assert r.exit_code == 0
    for placeholder in ("<bool>", "<str>", "<int>", "<float>", "<list[str]>", "{test_date}", "{DATE}", "{key}"):
        assert placeholder not in r.output, f"{' '.join(path)}: {placeholder}"


def test_help_shows_defaults_of_settings_and_choices() -> None:
    out = run("discover", "--help").output
    assert "[backfill|incremental|sweep]" in out
    assert re.search(r"env\s+MONGO_TO_SQS_MODE,\s+default\s+backfill", out)
    assert re.search(r"env\s+DISCOVERY_BATCH_SIZE,\s+default\s+100", out)
    assert "[DEBUG|INFO|WARNING|ERROR]" in run("--help").output


@pytest.mark.parametrize(
    "command", ["discover", "work", "push-urls", "replay-dlq", "rescreen", "seed-sqs", "coverage", "doctor"]
)
def test_every_command_that_uses_a_queue_takes_queue_url(command: str) -> None:
    assert "--queue-url" in run(command, "--help").output


@pytest.mark.parametrize(
    "command,old,new",
    [
        ("discover", "--max-records", "--limit"),
        ("work", "--max-messages", "--limit"),
        ("replay-dlq", "--max", "--limit"),
    ],
)
def test_caps_are_named_limit_and_old_spellings_are_hidden_aliases(command: str, old: str, new: str) -> None:
    out = run(command, "--help").output
    assert new in out and f"{old} " not in out
    # the old spelling still parses: a bad value is refused by the option's own range check
    r = run(command, old, "0")
    assert r.exit_code == exit_codes.RET_USAGE and old in r.output


def test_a_missing_setting_hint_only_mentions_flags_that_exist() -> None:
    r = run("state", "list", "--json", MONGO_URI="", SQS_QUEUE_URL="")
    assert "with its flag" not in r.output
    r = run("discover", "--test-date", "2025-12-20", "--json", MONGO_URI="mongomock://voice", SQS_QUEUE_URL="")
    assert r.exit_code == exit_codes.RET_CONFIG
    error = json.loads(r.stdout)["error"]
    assert "SQS_QUEUE_URL" in error["message"] and "--queue-url" in (error["hint"] or "")
    assert "with its flag" not in (error["hint"] or "")


def test_a_mistyped_mongo_scheme_names_the_valid_ones() -> None:
    r = run("state", "list", "--json", MONGO_URI="mongomok://")
    assert r.exit_code == exit_codes.RET_CONFIG
    message = json.loads(r.stdout)["error"]["message"]
    assert "mongodb://" in message and "mongodb+srv://" in message and "mongomock://" in message


def test_an_unreachable_mongo_names_host_and_cause() -> None:
    r = run("state", "list", "--json", MONGO_URI="mongodb://127.0.0.1:1/?directConnection=true", MONGO_TIMEOUT_MS="300")
    assert r.exit_code == exit_codes.RET_CONNECTION
    message = json.loads(r.stdout)["error"]["message"]
    assert "127.0.0.1:1" in message and "refused" in message.lower()


def test_doctor_checks_the_queue_given_by_flag() -> None:
    def queue_check(*flags: str) -> dict:
        r = run("doctor", "--no-aws", "--no-model", "--json", *flags, MONGO_URI="mongomock://voice", SQS_QUEUE_URL="")
        return {c["name"]: c for c in json.loads(r.stdout)["checks"]}.get("queue URL", {"status": "ok"})

    assert queue_check()["status"] == "fail"
    assert queue_check("--queue-url", "https://sqs.ap-south-1.amazonaws.com/123456789012/work")["status"] != "fail"
