"""rescreen (re-enqueue + the real worker overwriting the result) and coverage (late-synced rows)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from bson import ObjectId

from anomaly_cli.contract import parse_message
from anomaly_cli.ops.rescreen import version_key
from tests.conftest import drain_queue
from tests.ops.conftest import TEST_DATE, make_item, put_result, screening


def test_version_order_is_natural():
    assert version_key("v9") < version_key("v10") and version_key("2026.1.9") < version_key("2026.1.10")


def test_rescreen_selects_and_marks(cli, db, make_queue, sqs_client):
    url = make_queue()
    put_result(db, make_item(1), screening(failed="fetch_transient"))
    put_result(db, make_item(2), screening(reasons=("quiet",), model="v9"))
    put_result(db, make_item(3), screening(model="v10"))
    put_result(db, make_item(4, test_date="2025-12-21"), screening(failed="not_found"))

    dry = cli(["rescreen", TEST_DATE, "--status", "failed", "--dry-run", "--json"], env={"SQS_QUEUE_URL": url})
    assert json.loads(dry.stdout)["sent"] == 1 and drain_queue(sqs_client, url) == []

    r = cli(["rescreen", TEST_DATE, "--model-older-than", "v10", "--json"], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == 0 and json.loads(r.stdout)["sent"] == 2  # v1 (the failure) and v9, not v10
    msgs = drain_queue(sqs_client, url)
    assert {parse_message(m["Body"]).subject_id for m in msgs} == {"sub-1", "sub-2"}
    assert all(m["MessageAttributes"]["rescreen"]["StringValue"] == "true" for m in msgs)
    assert {parse_message(m["Body"]).result_id for m in msgs} == {make_item(1).result_id, make_item(2).result_id}

    r = cli(["rescreen", TEST_DATE, "--reason", "quiet", "--json"], env={"SQS_QUEUE_URL": url})
    assert json.loads(r.stdout)["sent"] == 1
    bad = cli(["rescreen", TEST_DATE, "--status", "weird"], env={"SQS_QUEUE_URL": url})
    assert bad.exit_code == 2  # not one of the choices: a usage error, as for every flag value


def test_rescreen_overwrites_the_result_through_the_real_worker(
    cli, db, make_queue, sqs_client, s3_client, make_settings
):
    """GIVEN a failed result from model v1, WHEN rescreened, THEN the worker replaces it (same _id)."""
    from anomaly_cli.screening import Screening
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown

    url = make_queue()
    s3_client.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.put_object(Bucket="audio", Key="clip.wav", Body=b"RIFF-not-really-audio")
    item = dataclasses.replace(
        make_item(1, url="s3://audio/clip.wav", record_type="adhoc"), source_collection="adhoc:test"
    )
    old = put_result(db, item, screening(failed="access_denied", model="v1"))
    screened = []

    def screen(data: bytes) -> Screening:
        screened.append(hashlib.sha256(data).hexdigest())
        return screening(model="v2", sha=hashlib.sha256(data).hexdigest())

    r = cli(["rescreen", TEST_DATE, "--status", "failed", "--json"], env={"SQS_QUEUE_URL": url})
    assert json.loads(r.stdout)["sent"] == 1
    settings = make_settings(
        sqs_queue_url=url,
        audio_url_allowlist=("s3://audio",),
        sqs_wait_seconds=0,
        flush_seconds=0.1,
        batch_size=1,
        mongo_uri="mongomock://unused",
    )
    report = build_worker(
        settings,
        sqs_client=sqs_client,
        s3_client=s3_client,
        db=db,
        model_version="v2",
        screen=screen,
        policy=AnyOf((IdleShutdown(1.0),)),
        worker_id="rescreen-test",
    ).run()
    assert report.error is None
    assert len(screened) == 1
    new = db["anomaly_detection_results"].find_one({"_id": old["_id"]})
    assert db["anomaly_detection_results"].count_documents({}) == 1
    assert (new["processing"]["status"], new["processing"]["model_version"]) == ("ok", "v2")


def _student(i: int, created: dt.datetime, *, subjects: int = 1) -> dict:
    rows = [
        {
            "subject_id": f"s{i}-{k}",
            "subject_name": "वाचन",
            "audio_url": f"s3://audio/{i}-{k}.wav",
            "subject_created_at": created + dt.timedelta(seconds=k),
        }
        for k in range(subjects)
    ]
    rows.append({"subject_id": f"m{i}", "subject_name": "गणित", "subject_created_at": created})
    return {
        "_id": ObjectId(),
        "student_id": f"STU-{i}",
        "udise": "2725",
        "assessments": [
            {
                "test_date": dt.datetime(2025, 12, 20),
                "teacher_record": {"subjects": rows},
                "admin_record": {
                    "subjects": [
                        {"subject_id": f"a{i}", "subject_name": "वाचन", "audio_url": "", "subject_created_at": created}
                    ]
                },
            }
        ],
    }


def test_coverage_finds_a_late_synced_row_behind_the_watermark(cli, db, make_queue, sqs_client):
    url = make_queue(dlq=True)
    base = dt.datetime(2025, 12, 20, 5, 0, tzinfo=dt.timezone.utc)
    for i in range(6):
        db["student_assessment_record"].insert_one(_student(i, base + dt.timedelta(minutes=i)))
    r = cli(["discover", "--mode", "backfill", "--test-date", TEST_DATE, "--json"], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == 0, r.output
    enqueued = [parse_message(m["Body"]) for m in drain_queue(sqs_client, url)]
    assert len(enqueued) == 6
    for item in enqueued[:4]:
        put_result(db, item, screening(reasons=("quiet",) if item.subject_id == "s0-0" else ()))
    # a row synced late: created before the watermark, written to Mongo after discovery ran
    late = _student(99, base + dt.timedelta(minutes=2, seconds=30))
    db["student_assessment_record"].insert_one(late)
    sqs_client.send_message(QueueUrl=url, MessageBody="in flight")

    r = cli(["coverage", TEST_DATE, "--json"], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == 0, r.output
    c = json.loads(r.stdout)
    assert (c["eligible"], c["invalid_rows"], c["enqueued"]) == (7, 7, 6)
    assert (c["results_total"], c["results_anomaly"], c["missing"]) == (4, 1, 3)
    assert (c["missing_enqueued"], c["missing_behind_watermark"]) == (2, 1)
    behind = [m for m in c["missing_rows"] if m["state"] == "behind_watermark"]
    assert [m["mongo_doc_id"] for m in behind] == [str(late["_id"])]
    assert c["queue"]["visible"] == 1 and c["dlq"]["visible"] == 0
    by_flag = cli(["coverage", TEST_DATE, "--json", "--queue-url", url], env={"SQS_QUEUE_URL": ""})
    assert json.loads(by_flag.stdout)["queue"] == c["queue"]  # --queue-url, as in every command that uses a queue
    human = cli(["coverage", TEST_DATE], env={"SQS_QUEUE_URL": url})
    assert "--mode sweep" in human.stderr


def test_coverage_counts_the_same_when_rows_are_looked_up_in_small_chunks(cli, db, make_queue, sqs_client, monkeypatch):
    """coverage streams the source in chunks (flat memory): chunk boundaries must not change a count."""
    from anomaly_cli.ops import coverage as cov

    url = make_queue()
    base = dt.datetime(2025, 12, 20, 5, 0, tzinfo=dt.timezone.utc)
    for i in range(5):
        db["student_assessment_record"].insert_one(_student(i, base + dt.timedelta(minutes=i), subjects=2))
    assert (
        cli(
            ["discover", "--mode", "backfill", "--test-date", TEST_DATE, "--json"], env={"SQS_QUEUE_URL": url}
        ).exit_code
        == 0
    )
    enqueued = [parse_message(m["Body"]) for m in drain_queue(sqs_client, url)]
    for item in enqueued[::3]:  # results for rows that fall in different chunks
        put_result(db, item, screening())
    reports = []
    for size in (cov.CHUNK, 2, 3):
        monkeypatch.setattr(cov, "CHUNK", size)
        r = cli(["coverage", TEST_DATE, "--json", "--limit", "3"], env={"SQS_QUEUE_URL": url})
        assert r.exit_code == 0, r.output
        c = json.loads(r.stdout)
        reports.append(
            (
                c["eligible"],
                c["results_total"],
                c["missing"],
                c["missing_enqueued"],
                [m["result_id"] for m in c["missing_rows"]],
            )
        )
    assert reports[0][:4] == (10, 4, 6, 6) and len(reports[0][4]) == 3
    assert reports[1] == reports[0] and reports[2] == reports[0]
