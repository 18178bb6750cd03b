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


def shape(value: Any) -> Any:
    """The JSON shape of a document: keys and kinds of values (Extended JSON dates as "date")."""
    if isinstance(value, dict):
        if set(value) == {"$date"}:
            return "date"
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return None if value is None else type(value).__name__


def as_extended_json(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS))


def test_the_result_example_has_the_shape_build_result_writes():
    import numpy as np

    from anomaly_cli import synth
    from anomaly_cli.model.engine import load_model, screen_bytes
    from anomaly_cli.results.document import build_result

    # GIVEN the page's message, and a quiet recording screened by the shipped model
    item = parse_message(block("message.json"))
    shown = json.loads(block("result-document.json"))
    screening = screen_bytes(synth.make_item("low_volume", np.random.default_rng(3), fmt="m4a").data, load_model(""))
    # WHEN the one builder writes its result document
    real = as_extended_json(build_result(item, screening, worker_id="w", attempt=1, fetch_ms=1.0, total_ms=2.0))
    # THEN the page shows every field of it, with the same kinds of values
    real_features, shown_features = real.pop("features"), shown.pop("features")
    assert set(shown_features) <= set(real_features) and all(isinstance(v, float) for v in shown_features.values())
    assert shape(shown) == shape(real)
    assert shown["_id"] == item.result_id and shown["source"] == real["source"]
    assert [r["code"] for r in shown["inference"]["reasons"]] == real["inference"]["reason_codes"] == ["low_volume"]


def test_the_state_example_is_what_discovery_leaves_after_the_example_documents(
    mongo: Any, sqs_client: Any, make_queue: Any, make_settings: Any
):
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service

    class RunOnce:
        def is_set(self) -> bool:
            return False

        def wait(self, timeout: float | None = None) -> bool:
            return True

    # GIVEN the example source documents in the source collection
    db = mongo["nipun"]
    db["student_assessment_record"].insert_many(json_util.loads(SOURCES.read_text(encoding="utf-8")))
    url = make_queue()
    settings = make_settings(test_date="2025-12-20", sqs_queue_url=url)
    # WHEN discovery runs a backfill of 2025-12-20
    build_service(settings, db, SqsQueue(sqs_client, url, sleep=lambda s: None), stop=RunOnce()).run("backfill")
    # THEN its state document is the page's example, up to run ids, holders and clock times
    real = as_extended_json(db["anomaly_pipeline_state"].find_one())
    shown = json.loads(block("state-document.json"))
    assert shape(shown) == shape(real)
    for key in (
        "_id",
        "pipeline_name",
        "stage",
        "source_collection",
        "test_date",
        "mode",
        "status",
        "watermark",
        "stats",
    ):
        assert shown[key] == real[key], key
    assert shown["last_run"]["stats"] == real["last_run"]["stats"]
    bodies = [
        json.loads(m["Body"]) for m in sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    example = json.loads(block("message.json"))
    same_row = [b for b in bodies if b["subject_id"] == example["subject_id"]]
    assert len(bodies) == 3 and len(same_row) == 1
    assert {k: v for k, v in same_row[0].items() if k not in ("trace_id", "discovered_at")} == {
        k: v for k, v in example.items() if k not in ("trace_id", "discovered_at")
    }


def test_every_log_event_named_on_the_page_is_emitted_by_the_code():
    import importlib.util

    spec = importlib.util.spec_from_file_location("anomaly_docs_generate", ROOT / "docs" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    section = PAGE.read_text(encoding="utf-8").split("## Log events", 1)[1].split("\n## ", 1)[0]
    kept = section.split("always used and keeps:", 1)[1].split("Every event the code logs", 1)[0]
    names = re.findall(r"`([a-z][a-z0-9_]+)`", kept)
    emitted = generate.log_events()
    assert len(names) >= 29 and "<!-- LOG_EVENTS -->" in section
    missing = [n for n in names if n not in emitted]
    assert not missing, f"named on the page, never logged: {missing}"
