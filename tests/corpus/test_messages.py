"""GIVEN every malformed SQS body of the corpus beside a valid non-BMP one, on a queue with a DLQ
(maxReceiveCount 2, visibility 1 s) WHEN the real worker consumes them THEN each malformed body is
never acked, is logged with its message id and reaches the DLQ by redrive, the valid one is
screened, and the worker ends its run normally (it never dies)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Iterator

import pytest

from anomaly_cli.contract import WorkItem
from tests.conftest import Events, capture_events, queue_counts
from tests.corpus.cases import MESSAGE, Case, of_kind, param
from tests.corpus.conftest import CorpusWorld, Until, run_worker

T = dt.datetime(2025, 12, 20, 5, 41, 7, tzinfo=dt.timezone.utc)


def valid_item(url: str, **changes: Any) -> WorkItem:
    values = dict(
        source_collection="student_assessment_record",
        mongo_doc_id=f"adhoc-{uuid.uuid4().hex[:8]}",
        test_date="2025-12-20",
        record_type="adhoc",
        subject_id="sub-1",
        subject_name="वाचन",
        audio_s3_url=url,
        source_updated_at=T,
        subject_created_at=T,
        student_id="STU-1",
        udise=None,
        trace_id=str(uuid.uuid4()),
        discovered_at=T,
    )
    values.update(changes)
    return WorkItem(**values)


def _with(url: str, **changes: Any) -> str:
    body = valid_item(url).to_message()
    for k, v in changes.items():
        if v is _DROP:
            body.pop(k)
        else:
            body[k] = v
    return json.dumps(body)  # ensure_ascii: a lone surrogate stays a \\ud83d escape


_DROP = object()

BODIES = {
    "msg_not_json": lambda url: "hello {",
    "msg_whitespace": lambda url: "   ",
    "msg_json_array": lambda url: "[1, 2, 3]",
    "msg_json_string": lambda url: '"a string"',
    "msg_json_null": lambda url: "null",
    "msg_json_number": lambda url: "42",
    "msg_missing_field": lambda url: _with(url, audio_s3_url=_DROP),
    "msg_extra_field": lambda url: _with(url, priority="high"),
    "msg_subject_id_number": lambda url: _with(url, subject_id=12345),
    "msg_test_date_operator": lambda url: _with(url, test_date={"$gt": ""}),
    "msg_test_date_operator_string": lambda url: _with(url, test_date='{"$gt": ""}'),
    "msg_test_date_impossible": lambda url: _with(url, test_date="2025-13-45"),
    "msg_test_date_other_format": lambda url: _with(url, test_date="20/12/2025"),
    "msg_datetime_no_offset": lambda url: _with(url, subject_created_at="2025-12-20T05:00:00"),
    "msg_datetime_garbage": lambda url: _with(url, discovered_at="yesterday"),
    "msg_unknown_record_type": lambda url: _with(url, record_type="parent"),
    "msg_empty_subject_id": lambda url: _with(url, subject_id=""),
    "msg_lone_surrogate": lambda url: _with(url, subject_id="\ud83d"),
    "msg_body_250kb": lambda url: _with(url, student_id="S" * 250_000),
    "msg_non_bmp_valid": lambda url: valid_item(
        url, subject_id="sub-😀-𝔘", student_id="𝔘𝔰𝔢𝔯-42", mongo_doc_id="adhoc-😀"
    ).to_body(),
}


class Run:
    """The one shared worker run of this module and what it left behind."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}  # case id -> body
        self.message_ids: dict[str, str] = {}
        self.dlq_bodies: list[str] = []
        self.results: list[dict[str, Any]] = []
        self.report: Any = None
        self.events = Events()
        self.main_counts: dict[str, int] = {}


@pytest.fixture(scope="module")
def run(engine_model: Any, corpus_world: CorpusWorld) -> Iterator[Run]:
    from anomaly_cli.config import load_settings

    r = Run()
    sqs, db, srv = corpus_world.sqs, corpus_world.db, corpus_world.server
    with capture_events(r.events):
        dlq = sqs.create_queue(QueueName="corpus-dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName="corpus",
            Attributes={
                "VisibilityTimeout": "1",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "2"}),
            },
        )["QueueUrl"]
        audio = srv.route("/good.wav", "bytes", _good_wav())
        for case in of_kind(MESSAGE):
            body = BODIES[case.id](audio)
            r.sent[case.id] = body
            r.message_ids[case.id] = sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
        n_dlq = sum(c.route == "dlq" for c in of_kind(MESSAGE))
        n_ok = sum(c.route == "screened" for c in of_kind(MESSAGE))

        def done() -> bool:
            a = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            return (
                int(a["ApproximateNumberOfMessages"]) >= n_dlq
                and db["anomaly_detection_results"].count_documents({}) >= n_ok
            )

        settings = load_settings(
            dict(
                sqs_queue_url=url,
                mongo_uri="mongomock://unused",
                audio_url_allowlist=(srv.base,),
                batch_size=5,
                max_concurrency=2,
                flush_seconds=0.2,
                sqs_wait_seconds=1,
                visibility_timeout_seconds=1,
                fetch_retries=1,
                throughput_log_seconds=5.0,
            ),
            environ={"AWS_REGION": "ap-south-1"},
            env_file=None,
        )
        r.report = run_worker(settings, sqs_client=sqs, db=db, model=engine_model, policy=Until(done, 90))
        for _ in range(10):
            got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            r.dlq_bodies += [m["Body"] for m in got]
        r.results = list(db["anomaly_detection_results"].find({}))
        r.main_counts = queue_counts(sqs, url)
    yield r


def _good_wav() -> bytes:
    import numpy as np

    from anomaly_cli import synth
    from anomaly_cli.audio.formats import encode

    clip = synth.make_clip("normal", np.random.default_rng(3), variant="plain", duration_s=5.0)
    return encode(clip.samples, clip.sr, "wav")


def test_every_message_case_has_a_body() -> None:
    assert {c.id for c in of_kind(MESSAGE)} == set(BODIES)


def test_the_worker_survived_the_whole_corpus(run: Run) -> None:
    assert run.report.error is None and run.report.reason == "idle"  # ended by its policy, not by a crash
    # nothing left behind and nothing silently dropped: every body is in the DLQ or has a result
    assert run.main_counts == {"visible": 0, "in_flight": 0}
    assert len(run.dlq_bodies) + len(run.results) == len(of_kind(MESSAGE))


@param(of_kind(MESSAGE))
def test_message_case(case: Case, run: Run) -> None:
    body = run.sent[case.id]
    mid = run.message_ids[case.id]
    malformed = [f for f in run.events.named("message_malformed") if f.get("message_id") == mid]
    if case.route == "dlq":
        assert body in run.dlq_bodies, "a malformed message must reach the DLQ"
        # received, refused and logged (each delivery) with its message id and a reason
        assert malformed and all(f["error"] == "malformed_message" and f["reason"] for f in malformed)
        assert all(r["source"].get("subject_id") != "\ud83d" for r in run.results)
    else:
        assert body not in run.dlq_bodies and not malformed
        item = json.loads(body)
        doc = next(r for r in run.results if r["source"]["subject_id"] == item["subject_id"])
        assert doc["processing"]["status"] == "ok"
        assert doc["source"]["student_id"] == item["student_id"] and doc["source"]["mongo_doc_id"] == "adhoc-😀"
