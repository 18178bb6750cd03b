"""GIVEN a malformed source document beside a good one WHEN a real backfill discovery runs (Mongo
double, moto SQS) THEN the bad rows end as the corpus table says and the run completes."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any, Callable

import pytest
from bson import ObjectId

from anomaly_cli.contract import parse_message
from tests.conftest import drain_queue
from tests.corpus.cases import SOURCE, Case, of_kind, param

DAY = "2025-12-20"
UTC = dt.timezone.utc
READING = "वाचन"
MIDNIGHT = dt.datetime(2025, 12, 20, tzinfo=UTC)
CREATED = dt.datetime(2025, 12, 20, 5, 41, 7, tzinfo=UTC)
URL = "s3://nipun-audio/2025-12-20/x/reading.m4a"


def row(sid: Any = "sub-1", *, name: Any = READING, url: Any = URL, created: Any = CREATED, **drop: bool) -> dict:
    r = {"subject_id": sid, "subject_name": name, "audio_url": url, "subject_created_at": created}
    return {k: v for k, v in r.items() if not drop.get(k)}


def doc(teacher: Any = None, admin: Any = None, *, test_date: Any = MIDNIGHT, **root: Any) -> dict:
    a: dict[str, Any] = {"test_date": test_date}
    if teacher is not None:
        a["teacher_record"] = {"subjects": teacher}
    if admin is not None:
        a["admin_record"] = {"subjects": admin}
    d = {"_id": ObjectId(), "student_id": "STU-1", "udise": "27251200104", "assessments": [a]}
    d.update(root)
    return d


def _assessments(value: Any) -> dict:
    d = doc()
    d["assessments"] = value
    return d


# One builder per case id: the documents to insert, and an optional check of the messages sent.
BUILDERS: dict[str, Callable[[], list[dict]]] = {
    "src_no_assessments": lambda: [{"_id": ObjectId(), "student_id": "STU-1"}],
    "src_assessments_null": lambda: [_assessments(None)],
    "src_assessments_object": lambda: [_assessments({"test_date": MIDNIGHT, "teacher_record": {"subjects": [row()]}})],
    "src_assessment_not_object": lambda: [_assessments(["x", None, 5])],
    "src_subjects_null": lambda: [
        doc(teacher=None) | {"assessments": [{"test_date": MIDNIGHT, "teacher_record": {"subjects": None}}]}
    ],
    "src_subjects_object": lambda: [
        doc() | {"assessments": [{"test_date": MIDNIGHT, "teacher_record": {"subjects": row()}}]}
    ],
    "src_subject_row_not_object": lambda: [doc([READING, None, 7])],
    "src_audio_url_number": lambda: [doc([row(url=12345)])],
    "src_audio_url_list": lambda: [doc([row(url=[URL])])],
    "src_audio_url_missing": lambda: [doc([row(audio_url=True)])],
    "src_audio_url_empty": lambda: [doc([row(url="")])],
    "src_audio_url_whitespace": lambda: [doc([row(url="   ")])],
    "src_audio_url_null_string": lambda: [doc([row(url="null")])],
    "src_audio_url_padded": lambda: [doc([row(url=f"  {URL} \n")])],
    "src_created_at_string": lambda: [doc([row(created="2025-12-20T05:00:00Z")])],
    "src_created_at_none": lambda: [doc([row(created=None)])],
    "src_created_at_future": lambda: [doc([row(created=dt.datetime.now(UTC) + dt.timedelta(days=30))])],
    "src_missing_subject_id": lambda: [doc([row(subject_id=True)])],
    "src_subject_id_number": lambda: [doc([row(sid=12345)])],
    "src_subject_id_object": lambda: [doc([row(sid={"$oid": "6761f0c2a1b2c3d4e5f60718"})])],
    "src_created_at_epoch_ms": lambda: [doc([row(created=1766209267000)])],
    "src_duplicate_subject_id_same_row": lambda: [doc([row(), row()])],
    "src_duplicate_subject_id_other_url": lambda: [doc([row(), row(url=URL.replace("reading", "retake"))])],
    "src_subject_id_in_both_records": lambda: [doc([row()], [row()])],
    "src_document_15mb": lambda: [doc([row()], notes="n" * (15 * 1024 * 1024))],
    "src_name_nfd": lambda: [doc([row(name=unicodedata.normalize("NFD", READING))])],
    "src_name_trailing_spaces": lambda: [doc([row(name=f" {READING}  ")])],
    "src_name_regex_chars": lambda: [doc([row(name="वा.*")])],
    "src_name_other_subject": lambda: [doc([row(name="गणित")])],
    "src_test_date_string": lambda: [doc([row()], test_date=DAY)],
    "src_test_date_other_day_string": lambda: [doc([row()], test_date="2025-12-21")],
    "src_test_date_garbage": lambda: [doc([row()], test_date="soon")],
    "src_test_date_number": lambda: [doc([row()], test_date=20251220)],
}

CHECKS: dict[str, Callable[[list], None]] = {
    "src_audio_url_padded": lambda items: _all(items, lambda i: i.audio_s3_url == URL),
    "src_subject_id_number": lambda items: _all(items, lambda i: i.subject_id == "12345"),
    "src_name_nfd": lambda items: _all(items, lambda i: i.subject_name == unicodedata.normalize("NFC", READING)),
    "src_name_trailing_spaces": lambda items: _all(items, lambda i: i.subject_name == READING),
    "src_subject_id_in_both_records": lambda items: _same(sorted(i.record_type for i in items), ["admin", "teacher"]),
    "src_duplicate_subject_id_other_url": lambda items: _same(len({i.result_id for i in items}), 2),
}


def _same(got: Any, want: Any) -> None:
    assert got == want


def _all(items: list, pred: Callable[[Any], bool]) -> None:
    assert items and all(pred(i) for i in items), items


def control_doc() -> dict:
    """A good document beside every bad one: proves the run went on past the bad one."""
    return doc(
        [
            row(
                "control-1",
                url="s3://nipun-audio/2025-12-20/control/reading.m4a",
                created=CREATED - dt.timedelta(hours=1),
            )
        ]
    )


@pytest.fixture
def run_discovery(mongo: Any, sqs_client: Any, make_queue: Callable, make_settings: Callable) -> Callable:
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service

    def run(docs: list[dict]) -> tuple[Any, list]:
        db = mongo["nipun"]
        run.db = db  # type: ignore[attr-defined]
        if docs:
            db["student_assessment_record"].insert_many(docs)
        url = make_queue()
        settings = make_settings(
            sqs_queue_url=url, test_date=DAY, mongo_uri="mongomock://unused", discovery_batch_size=7
        )
        report = build_service(settings, db, SqsQueue(sqs_client, url)).run("backfill")
        items = [parse_message(m["Body"]) for m in drain_queue(sqs_client, url)]
        return report, items

    return run


def test_every_source_case_has_a_builder() -> None:
    assert {c.id for c in of_kind(SOURCE)} == set(BUILDERS)


@param(of_kind(SOURCE))
def test_source_case(case: Case, run_discovery: Callable) -> None:
    report, items = run_discovery([control_doc(), *BUILDERS[case.id]()])

    assert report.status == "completed" and not report.partial
    assert report.enqueued == case.enqueued + 1 == len(items)
    assert dict(report.skipped_invalid) == case.invalid
    assert sum(i.subject_id == "control-1" for i in items) == 1
    if case.id in CHECKS:
        CHECKS[case.id]([i for i in items if i.subject_id != "control-1"])
    # the worker's source re-check (the same normaliser) finds every enqueued row: none would be
    # acked as "source gone" after discovery chose it
    from anomaly_cli.worker.factory import source_checker

    present = source_checker(run_discovery.db["student_assessment_record"], READING)(items)
    assert present == {i.result_id: True for i in items}


def test_all_source_cases_in_one_run_never_crash(run_discovery: Callable) -> None:
    """Every bad document in one collection, small pages: the totals are the sum of the cases."""
    cases = of_kind(SOURCE)
    docs = [d for c in cases if c.id != "src_document_15mb" for d in BUILDERS[c.id]()]
    report, items = run_discovery(docs)

    expected_invalid: dict[str, int] = {}
    for c in cases:
        if c.id == "src_document_15mb":
            continue
        for k, v in c.invalid.items():
            expected_invalid[k] = expected_invalid.get(k, 0) + v
    # every case's row uses subject id sub-1, so the per-case ids collide across documents only
    # in mongo_doc_id, which differs: the enqueued total is the plain sum
    assert report.status == "completed"
    assert report.enqueued == sum(c.enqueued for c in cases if c.id != "src_document_15mb") == len(items)
    assert dict(report.skipped_invalid) == expected_invalid
    assert report.pages >= 2  # small pages: bad rows sit across page boundaries


MUTATIONS = {
    "assessments_null": {"$set": {"assessments": None}},
    "assessments_object": {"$set": {"assessments": {"test_date": MIDNIGHT}}},
    "subjects_object": {"$set": {"assessments.0.teacher_record.subjects": {"subject_id": "control-1"}}},
    "row_url_number": {"$set": {"assessments.0.teacher_record.subjects.0.audio_url": 12345}},
    "row_created_string": {"$set": {"assessments.0.teacher_record.subjects.0.subject_created_at": "2025-12-20"}},
    "row_renamed": {"$set": {"assessments.0.teacher_record.subjects.0.subject_name": "गणित"}},
    "document_deleted": None,
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_row_turned_malformed_after_enqueue_is_gone_for_the_worker(mutation: str, run_discovery: Callable) -> None:
    """GIVEN an enqueued row WHEN its document turns malformed before the worker sees it THEN the
    worker's re-check answers "gone" (acked without a result), and never raises."""
    from anomaly_cli.worker.factory import source_checker

    report, items = run_discovery([control_doc()])
    assert report.enqueued == 1
    coll = run_discovery.db["student_assessment_record"]
    doc_id = ObjectId(items[0].mongo_doc_id)
    if MUTATIONS[mutation] is None:
        coll.delete_one({"_id": doc_id})
    else:
        coll.update_one({"_id": doc_id}, MUTATIONS[mutation])
    assert source_checker(coll, READING)(items) == {items[0].result_id: False}
