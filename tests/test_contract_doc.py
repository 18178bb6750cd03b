"""docs/contract.md shows what the code builds and parses: its examples are checked against
contract.py (message builder and parser, result id) and docs/examples/source-documents.json."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from bson import json_util

from anomaly_cli.contract import MESSAGE_FIELDS, normalize_subject_row, parse_message, result_id

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "contract.md"
SOURCES = ROOT / "docs" / "examples" / "source-documents.json"


def block(title: str) -> str:
    """The fenced block of the page whose info string carries ``title="<title>"``."""
    m = re.search(
        rf'^```\w+ title="{re.escape(title)}"\n(.*?)^```', PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL
    )
    assert m, f"no block titled {title} in {PAGE}"
    return m.group(1)


def example_source() -> dict[str, Any]:
    return json_util.loads(block("source-document.json"))


def test_the_page_source_example_is_the_first_document_of_the_examples_file():
    assert example_source() == json_util.loads(SOURCES.read_text(encoding="utf-8"))[0]


def test_the_message_example_is_what_the_builder_writes_for_the_source_example():
    # GIVEN the teacher reading row of the page's source document
    doc = example_source()
    shown = json.loads(block("message.json"))
    raw = doc["assessments"][0]["teacher_record"]["subjects"][0]
    row = normalize_subject_row(mongo_doc_id=doc["_id"], record_type="teacher", raw=raw, student=doc)
    # WHEN the builder makes its message (trace id and discovery time are per enqueue)
    item = row.to_work_item(
        "student_assessment_record",
        "2025-12-20",
        trace_id=shown["trace_id"],
        now=dt.datetime.fromisoformat(shown["discovered_at"]),
    )
    # THEN it is the page's example, field for field and in order, and the parser reads it back
    assert json.loads(item.to_body()) == shown
    assert list(shown) == list(MESSAGE_FIELDS) and len(shown) == 13
    assert parse_message(json.dumps(shown)) == item


def test_the_result_id_example_is_the_recipe():
    text = PAGE.read_text(encoding="utf-8")
    m = re.search(r"^(student_assessment_record\|[^\n]+)\n-> ([0-9a-f]{64})$", text, re.MULTILINE)
    assert m, "the worked result id example is missing"
    parts = m.group(1).split("|")
    assert result_id(*parts) == m.group(2)
    shown = json.loads(block("message.json"))
    assert result_id(
        *(
            shown[k]
            for k in ("source_collection", "mongo_doc_id", "test_date", "record_type", "subject_id", "audio_s3_url")
        )
    ) == m.group(2)


def test_nothing_in_the_repository_points_outside_it_for_the_contract():
    import subprocess

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    hits = subprocess.run(
        ["git", "grep", "-n", "shared/spec", "--", ":!tests/test_contract_doc.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert hits == "", hits
