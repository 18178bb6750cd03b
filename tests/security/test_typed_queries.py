"""GIVEN operator-shaped input (``{"$gt": ""}``, regex metacharacters) where a date, an id or a
name belongs WHEN it reaches the CLI, the settings loader, the message parser or discovery THEN it
is rejected as invalid (config exit code, before any query) or matched literally: queries are
built from typed values only."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from anomaly_cli import errors
from anomaly_cli.cli import exit_codes
from anomaly_cli.config import load_settings
from anomaly_cli.contract import parse_message
from tests.corpus.test_messages import valid_item

OPERATOR = '{"$gt": ""}'
# An unreachable Mongo: a command that queried before validating would end with the connection code.
UNREACHABLE = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    from anomaly_cli.cli.app import app

    monkeypatch.setenv("MONGO_URI", UNREACHABLE)
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "200")
    monkeypatch.setenv("SQS_QUEUE_URL", "http://127.0.0.1:1/000000000000/work")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    return invoke


@pytest.mark.parametrize(
    "args",
    [
        ("discover", "--test-date", OPERATOR, "--json"),
        ("discover", "--test-date", "2025-12-20'; db.dropDatabase(); '", "--json"),
        ("state", "show", OPERATOR, "--json"),
        ("state", "reset", OPERATOR, "--yes", "--json"),
        ("results", "inspect", OPERATOR, "--json"),
        ("push-urls", "-", "--test-date", OPERATOR, "--json"),
    ],
    ids=["discover", "discover_quote", "state_show", "state_reset", "results_inspect", "push_urls"],
)
def test_cli_rejects_operator_test_dates_before_any_query(args: tuple, cli: Callable) -> None:
    res = cli(*args)
    # refused as invalid input (flags/env: config; positional arguments: usage, the state
    # commands' choice), never the connection code a query to the unreachable Mongo would give
    assert res.exit_code in (exit_codes.RET_CONFIG, exit_codes.RET_USAGE), res.output
    err = json.loads(res.stdout.strip().splitlines()[-1])["error"]
    # a bad value on the command line is a usage error (invalid_value), in the environment config_invalid
    assert err["code"] in ("config_invalid", "invalid_value") and "YYYY-MM-DD" in err["message"]


def test_env_test_date_with_an_operator_is_a_config_error(cli: Callable, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DATE", OPERATOR)
    res = cli("discover", "--json")
    assert res.exit_code == exit_codes.RET_CONFIG
    assert "TEST_DATE" in res.stdout
    with pytest.raises(errors.ConfigError) as info:
        load_settings({}, environ={"TEST_DATE": OPERATOR}, env_file=None)
    assert info.value.field == "TEST_DATE"


@pytest.mark.parametrize(
    "field, value",
    [
        ("test_date", {"$gt": ""}),
        ("test_date", OPERATOR),
        ("mongo_doc_id", {"$ne": None}),
        ("subject_id", {"$exists": True}),
        ("record_type", {"$in": ["teacher", "admin"]}),
        ("source_collection", ["student_assessment_record"]),
        ("student_id", {"$gt": ""}),
    ],
)
def test_message_parser_refuses_operators_in_any_field(field: str, value: Any) -> None:
    body = valid_item("https://audio.example.org/a.wav").to_message()
    body[field] = value
    with pytest.raises(errors.ContractError):
        parse_message(json.dumps(body))


@pytest.mark.parametrize("name", [".*", "^", OPERATOR, "वा|.*", "(?i)वाचन.*"])
def test_subject_names_are_matched_literally(
    name: str, mongo: Any, sqs_client: Any, make_queue: Callable, make_settings: Callable
) -> None:
    """A SUBJECT_NAME full of regex or operator text selects nothing, although reading rows exist."""
    from bson import ObjectId

    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service

    db = mongo["nipun"]
    day = dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc)
    db["student_assessment_record"].insert_one(
        {
            "_id": ObjectId(),
            "assessments": [
                {
                    "test_date": day,
                    "teacher_record": {
                        "subjects": [
                            {
                                "subject_id": "s1",
                                "subject_name": "वाचन",
                                "audio_url": "s3://b/k.m4a",
                                "subject_created_at": day + dt.timedelta(hours=5),
                            }
                        ]
                    },
                }
            ],
        }
    )
    url = make_queue()
    control = build_service(
        make_settings(sqs_queue_url=url, test_date="2025-12-20"), db, SqsQueue(sqs_client, url)
    ).run("backfill", dry_run=True)
    assert control.would_enqueue == 1  # the row is there for the real name

    report = build_service(
        make_settings(sqs_queue_url=url, test_date="2025-12-20", subject_name=name), db, SqsQueue(sqs_client, url)
    ).run("backfill", dry_run=True)
    assert report.fetched == 0 and report.would_enqueue == 0
