"""GIVEN dates that name a day in another spelling, or only start like it, WHEN they reach the
contract, the settings or discovery THEN only exactly ``YYYY-MM-DD`` is a test date, and a string
``assessments.test_date`` is matched whole (no second result id for one row, no prefix match)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

import pytest

from anomaly_cli import contract, errors
from anomaly_cli.config import load_settings
from anomaly_cli.contract import parse_message
from tests.worker.conftest import make_item

from .conftest import assessment, at, bodies, student_doc, subject

OTHER_SPELLINGS = ["2025-W51-6", "20251220", "2025-354", "٢٠٢٥-١٢-٢٠", "2025-12-20\n", " 2025-12-20"]


@pytest.mark.parametrize("value", OTHER_SPELLINGS)
def test_messages_with_another_spelling_of_the_day_are_malformed(value: str) -> None:
    body = make_item("https://cdn.example/a.wav").to_message()
    body["test_date"] = value
    with pytest.raises(errors.ContractError, match="test_date"):
        parse_message(json.dumps(body))


@pytest.mark.parametrize("value", OTHER_SPELLINGS[:4])
def test_settings_refuse_another_spelling_of_the_day(value: str) -> None:
    with pytest.raises(errors.ConfigError) as e:
        load_settings(environ={"TEST_DATE": value}, env_file=None)
    assert e.value.field == "TEST_DATE"


@pytest.mark.parametrize(
    "stored, matches",
    [
        ("2025-12-20", True),
        ("2025-12-20T05:00:00Z", True),
        ("2025-12-20 ", True),
        ("2025-12-2099", False),
        ("2025-12-20x", False),
        ("2025-12-20T", False),
    ],
)
def test_string_dates_are_matched_whole(
    stored: str, matches: bool, source: Any, make_service: Callable, sqs_client: Any, queue_url: str
) -> None:
    source.insert_one(student_doc(assessment(test_date=stored, teacher=[subject(created=at(5))])))

    report = make_service().run("backfill")

    assert (report.enqueued == 1) is matches
    assert len(bodies(sqs_client, queue_url)) == (1 if matches else 0)
    assert contract.test_date_matches(stored, "2025-12-20", dt.timezone.utc) is matches
