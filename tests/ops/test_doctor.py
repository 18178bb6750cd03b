"""doctor: a misconfigured queue, results made with another id recipe, missing indexes, audio access."""

from __future__ import annotations

import json

from anomaly_cli.cli import exit_codes
from tests.ops.conftest import make_item, put_result, screening


def _checks(r):
    return {c["name"]: c for c in json.loads(r.stdout)["checks"]}


def _healthy_queue(sqs_client, make_queue):
    url = make_queue(dlq=True, visibility=300, max_receive=5)
    dlq = sqs_client.get_queue_url(QueueName=url.rsplit("/", 1)[1] + "-dlq")["QueueUrl"]
    sqs_client.set_queue_attributes(QueueUrl=dlq, Attributes={"MessageRetentionPeriod": "1209600"})
    return url


def test_misconfigured_queue_fails_with_fixes(cli, db, make_queue):
    url = make_queue(visibility=30)  # no redrive policy, visibility below 60 s deadline + batch
    r = cli(["doctor", "--no-model", "--json"], env={"SQS_QUEUE_URL": url, "AUDIO_URL_ALLOWLIST": "s3://audio"})
    assert r.exit_code == exit_codes.RET_UNHEALTHY
    c = _checks(r)
    # the worker asks for its own 300 s on each receive: the short queue default is a warning...
    assert c["visibility timeout"]["status"] == "warn" and "VisibilityTimeout=" in c["visibility timeout"]["fix"]
    assert c["redrive policy"]["status"] == "fail" and "maxReceiveCount" in c["redrive policy"]["fix"]
    # ...and a failure when the worker's own setting is short too
    c = _checks(
        cli(
            ["doctor", "--no-model", "--json"],
            env={"SQS_QUEUE_URL": url, "AUDIO_URL_ALLOWLIST": "s3://audio", "SQS_VISIBILITY_TIMEOUT": "45"},
        )
    )
    assert c["visibility timeout"]["status"] == "fail" and "VisibilityTimeout=93" in c["visibility timeout"]["fix"]
    human = cli(["doctor", "--no-model"], env={"SQS_QUEUE_URL": url, "AUDIO_URL_ALLOWLIST": "s3://audio"})
    assert "FAIL" in human.stdout and "problem(s)" in human.stdout


def test_low_max_receive_count_and_short_dlq_retention(cli, db, make_queue):
    url = make_queue(dlq=True, visibility=300, max_receive=2)
    c = _checks(
        cli(["doctor", "--no-model", "--json"], env={"SQS_QUEUE_URL": url, "AUDIO_URL_ALLOWLIST": "s3://audio"})
    )
    assert c["maxReceiveCount"]["status"] == "fail"
    assert c["DLQ retention"]["status"] == "warn"


def test_settings_problems(cli, db, make_queue, sqs_client):
    url = _healthy_queue(sqs_client, make_queue)
    r = cli(["doctor", "--no-model", "--no-aws", "--json"], env={"SQS_QUEUE_URL": url, "SQS_VISIBILITY_TIMEOUT": "40"})
    c = _checks(r)
    assert r.exit_code == exit_codes.RET_UNHEALTHY
    assert c["audio URL allowlist"]["status"] == "fail" and c["worker visibility timeout"]["status"] == "fail"
    fifo = make_queue(fifo=True)
    c = _checks(
        cli(
            ["doctor", "--no-model", "--no-aws", "--json"],
            env={"SQS_QUEUE_URL": fifo, "SQS_FIFO_GROUP_ID": "all", "AUDIO_URL_ALLOWLIST": "s3://audio"},
        )
    )
    assert c["FIFO message group"]["status"] == "warn"


def test_results_made_with_another_id_recipe_and_missing_indexes(cli, db, make_queue, sqs_client, s3_client):
    url = _healthy_queue(sqs_client, make_queue)
    s3_client.create_bucket(Bucket="audio", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.put_object(Bucket="audio", Key="2025-12-20/1.wav", Body=b"x" * 10)
    db["student_assessment_record"].insert_one({"student_id": "s"})
    put_result(db, make_item(1), screening())
    old = put_result(db, make_item(2), screening())
    db["anomaly_detection_results"].delete_one({"_id": old["_id"]})
    db["anomaly_detection_results"].insert_one({**old, "_id": "legacy-md5-" + old["_id"][:8]})
    env = {"SQS_QUEUE_URL": url, "AUDIO_URL_ALLOWLIST": "s3://audio"}

    r = cli(["doctor", "--no-model", "--json", "--sample-url", "s3://audio/2025-12-20/1.wav"], env=env)
    c = _checks(r)
    assert c["result id recipe"]["status"] == "warn" and "legacy-md5-" in c["result id recipe"]["detail"]
    assert c["source indexes"]["status"] == "warn"
    assert 'db.student_assessment_record.createIndex({"assessments.test_date": 1})' in c["source indexes"]["fix"]
    assert db["student_assessment_record"].index_information().keys() == {"_id_"}  # never created by doctor
    assert c["sample recording"]["status"] == "ok"
    assert r.exit_code == 0, c  # warnings only

    c = _checks(cli(["doctor", "--no-model", "--json", "--sample-url", "s3://audio/missing.wav"], env=env))
    assert c["sample recording"]["status"] == "fail" and "does not exist" in c["sample recording"]["fix"]
    c = _checks(cli(["doctor", "--no-model", "--json", "--sample-url", "s3://other/x.wav"], env=env))
    assert c["sample recording"]["status"] == "fail" and "AUDIO_URL_ALLOWLIST" in c["sample recording"]["fix"]


def test_missing_model_and_unreachable_mongo(cli, make_queue, tmp_path):
    r = cli(
        ["doctor", "--no-aws", "--json"],
        env={
            "MODEL_DIR": str(tmp_path / "none"),
            "AUDIO_URL_ALLOWLIST": "s3://a",
            "MONGO_URI": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
            "MONGO_TIMEOUT_MS": "300",
        },
    )
    c = _checks(r)
    assert r.exit_code == exit_codes.RET_UNHEALTHY
    assert c["model loads"]["status"] == "fail" and c["reachable"]["status"] == "fail"
