"""GIVEN rows the worker would always refuse, or rows the spec's selection excludes, WHEN
discovery runs THEN the first are counted as invalid (one set of limits, the contract's) and the
second never consume MAX_RECORDS or a page's DISCOVERY_BATCH_SIZE."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

import pytest

from anomaly_cli import errors
from anomaly_cli.contract import MAX_FIELD_CHARS, SubjectRow, body_over_limit, parse_message

from .conftest import assessment, at, student_doc, subject


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="anomaly")
    logging.getLogger("anomaly").propagate = True


def _valid_per_page(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.fields["valid"] for r in caplog.records if getattr(r, "event", "") == "discovery_page_fetched"]


def _non_matching(i: int, t: dt.datetime) -> dict[str, Any]:
    kinds = [
        {"url": None, "created": t},  # no audio_url
        {"url": "   ", "created": t},  # empty
        {"url": 12345, "created": t},  # not a string
        {"url": "auto", "created": "2025-12-20T05:00:00Z"},  # created a string, not a date
    ]
    k = kinds[i % len(kinds)]
    return subject(url=k["url"], created=k["created"])


def test_a_capped_run_spends_its_cap_on_matching_rows_only(
    seed_bulk: Callable, source: Any, make_service: Callable, caplog: pytest.LogCaptureFixture, mongo: Any
) -> None:
    # GIVEN 400 reading rows and 40 rows the spec's selection excludes, interleaved by time
    seed_bulk(200, start=at(4))
    source.insert_many(
        [student_doc(assessment(teacher=[_non_matching(i, at(4) + dt.timedelta(seconds=5 * i))])) for i in range(40)]
    )
    # WHEN a run capped at 250 reads pages of 100
    report = make_service(discovery_batch_size=100, max_records=250).run("backfill")
    # THEN it enqueues 250 valid rows in pages of 100, 100, 50 valid rows, and counts the others
    assert report.enqueued == 250 and report.status == "completed"
    assert _valid_per_page(caplog) == [100, 100, 50]
    skipped = mongo["nipun"]["anomaly_pipeline_state"].find_one({})["stats"]["skipped_invalid"]
    assert sum(skipped.values()) == 40


def test_rows_the_worker_would_refuse_are_counted_invalid_not_enqueued(
    source: Any, make_service: Callable, mongo: Any
) -> None:
    long_text = "x" * (MAX_FIELD_CHARS + 1)
    wide = "\U0001f600" * 4090  # 4090 characters, 16 360 bytes: under the field limit, not the body's
    source.insert_many(
        [
            student_doc(assessment(teacher=[subject(sid=long_text, created=at(5))])),
            student_doc(assessment(teacher=[subject(url="s3://nipun-audio/" + long_text, created=at(5, 1))])),
            student_doc(
                assessment(teacher=[subject(sid=wide, url="s3://nipun-audio/" + wide[:4070], created=at(5, 2))]),
                student_id=wide,
                udise=wide,
            ),
            student_doc(assessment(teacher=[subject(created=at(5, 3))])),  # a good one
        ]
    )

    report = make_service().run("backfill")

    assert report.enqueued == 1
    state = mongo["nipun"]["anomaly_pipeline_state"].find_one({})
    assert state["stats"]["skipped_invalid"] == {"field_too_long": 2, "body_too_large": 1}


def test_the_body_limit_is_the_parsers_own() -> None:
    wide = "\U0001f600" * 4090
    row = SubjectRow("d" * 24, "teacher", wide, "वाचन", "s3://b/" + wide[:4080], at(5), wide, wide)
    item = row.to_work_item("student_assessment_record", "2025-12-20")
    assert body_over_limit(item)
    with pytest.raises(errors.ContractError, match="byte limit"):
        parse_message(item.to_body())
    small = SubjectRow("d" * 24, "teacher", "s", "वाचन", "s3://b/k.wav", at(5), None, None)
    assert not body_over_limit(small.to_work_item("student_assessment_record", "2025-12-20"))
