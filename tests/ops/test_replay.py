"""replay-dlq: peek, filters, FIFO replay, failed sends, the native move task (botocore Stubber)."""

from __future__ import annotations

import json

import pytest

from anomaly_cli.adapters.sqs import SqsQueue
from anomaly_cli.cli import exit_codes
from anomaly_cli.ops import replay
from tests.conftest import drain_queue, queue_counts
from tests.ops.conftest import make_item


def _dlq_of(sqs_client, url):
    policy = json.loads(
        sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    return sqs_client.get_queue_url(QueueName=policy["deadLetterTargetArn"].split(":")[-1])["QueueUrl"]


def _count(sqs_client, url):
    return sum(queue_counts(sqs_client, url).values())


def test_empty_dlq(cli, make_queue):
    url = make_queue(dlq=True)
    r = cli(["replay-dlq", "--json"], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == 0 and json.loads(r.stdout)["moved"] == 0
    r = cli(["replay-dlq", "--dry-run", "--json"], env={"SQS_QUEUE_URL": url})
    assert json.loads(r.stdout)["seen"] == 0


def test_queue_without_redrive_policy_is_a_config_error(cli, make_queue):
    r = cli(["replay-dlq"], env={"SQS_QUEUE_URL": make_queue()})
    assert r.exit_code == exit_codes.RET_CONFIG and "RedrivePolicy" in r.stderr


def test_dry_run_summarises_without_consuming_and_move_leaves_invalid_bodies(cli, make_queue, sqs_client):
    url = make_queue(dlq=True)
    dlq = _dlq_of(sqs_client, url)
    for i in range(4):
        sqs_client.send_message(
            QueueUrl=dlq, MessageBody=make_item(i, record_type="admin" if i % 2 else "teacher").to_body()
        )
    other_day = make_item(9, test_date="2025-12-21").to_body()
    sqs_client.send_message(QueueUrl=dlq, MessageBody=other_day)
    sqs_client.send_message(QueueUrl=dlq, MessageBody="{broken")
    sqs_client.send_message(QueueUrl=dlq, MessageBody=json.dumps({"hello": 1}))

    r = cli(["replay-dlq", "--dry-run", "--json"], env={"SQS_QUEUE_URL": url})
    peek = json.loads(r.stdout)
    assert peek["seen"] == 7 and peek["invalid"] == 2
    assert peek["test_dates"] == {"2025-12-20": 4, "2025-12-21": 1}
    assert peek["record_types"] == {"teacher": 3, "admin": 2}
    assert _count(sqs_client, dlq) == 7  # nothing consumed
    # released at once: all visible again
    assert len(sqs_client.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]) > 0

    r = cli(["replay-dlq", "--filter", "test_date=2025-12-20", "--json"], env={"SQS_QUEUE_URL": url})
    rep = json.loads(r.stdout)
    assert r.exit_code == 0 and (rep["moved"], rep["skipped_invalid"], rep["skipped_filter"]) == (4, 2, 1)
    moved = drain_queue(sqs_client, url)
    assert sorted(json.loads(m["Body"])["subject_id"] for m in moved) == [f"sub-{i}" for i in range(4)]
    left = drain_queue(sqs_client, dlq)
    assert sorted(m["Body"] for m in left) == sorted(["{broken", json.dumps({"hello": 1}), other_day])


def test_include_invalid_and_max(make_queue, sqs_client):
    url = make_queue(dlq=True)
    dlq = _dlq_of(sqs_client, url)
    sqs_client.send_message(QueueUrl=dlq, MessageBody="{broken")
    for i in range(5):
        sqs_client.send_message(QueueUrl=dlq, MessageBody=make_item(i).to_body())
    rep = replay.move(
        SqsQueue(sqs_client, dlq), SqsQueue(sqs_client, url), max_messages=3, wait_seconds=0, include_invalid=True
    )
    assert rep.moved == 3 and _count(sqs_client, dlq) == 3
    rep = replay.move(SqsQueue(sqs_client, dlq), SqsQueue(sqs_client, url), wait_seconds=0, include_invalid=True)
    assert rep.moved == 3 and _count(sqs_client, dlq) == 0
    assert "{broken" in [m["Body"] for m in drain_queue(sqs_client, url)]


def test_fifo_replay_keeps_group_and_attributes_with_a_fresh_dedup_id(make_queue, sqs_client):
    url = make_queue(fifo=True, dlq=True)
    dlq = _dlq_of(sqs_client, url)
    item = make_item(1)
    # the original send used dedup id "d1" on the main queue too: a replay reusing it would vanish
    sqs_client.send_message(
        QueueUrl=url, MessageBody=item.to_body(), MessageGroupId="school-7", MessageDeduplicationId="d1"
    )
    drain_queue(sqs_client, url)
    sqs_client.send_message(
        QueueUrl=dlq,
        MessageBody=item.to_body(),
        MessageGroupId="school-7",
        MessageDeduplicationId="d1",
        MessageAttributes={"rescreen": {"DataType": "String", "StringValue": "true"}},
    )

    rep = replay.move(SqsQueue(sqs_client, dlq), SqsQueue(sqs_client, url), wait_seconds=0)

    assert rep.moved == 1
    [m] = drain_queue(sqs_client, url)
    assert m["Body"] == item.to_body()
    assert m["Attributes"]["MessageGroupId"] == "school-7"
    assert m["Attributes"]["MessageDeduplicationId"] != "d1"
    assert m["MessageAttributes"]["rescreen"]["StringValue"] == "true"
    assert _count(sqs_client, dlq) == 0


def test_failed_send_deletes_nothing(make_queue, sqs_client):
    url = make_queue(dlq=True)
    dlq = _dlq_of(sqs_client, url)
    for i in range(3):
        sqs_client.send_message(QueueUrl=dlq, MessageBody=make_item(i).to_body())

    def refuse_second(parsed, **kwargs):  # SQS keeps refusing entries 1 and 2 (retried once, then reported)
        ok = parsed.get("Successful", [])
        parsed["Failed"] = [
            {"Id": e["Id"], "Code": "InternalError", "SenderFault": False, "Message": "x"} for e in ok if e["Id"] != "0"
        ]
        parsed["Successful"] = [e for e in ok if e["Id"] == "0"]

    sqs_client.meta.events.register("after-call.sqs.SendMessageBatch", refuse_second)
    target = SqsQueue(sqs_client, url, retries=1, sleep=lambda s: None)
    rep = replay.move(SqsQueue(sqs_client, dlq), target, wait_seconds=0)
    sqs_client.meta.events.unregister("after-call.sqs.SendMessageBatch", refuse_second)

    assert (rep.moved, rep.failed, rep.failure_codes) == (1, 2, {"InternalError": 2})
    assert rep.partial
    assert _count(sqs_client, dlq) == 2  # the two that were not sent are still in the DLQ


def test_failed_send_to_missing_queue_raises_and_keeps_the_dlq(cli, make_queue, sqs_client):
    url = make_queue(dlq=True)
    dlq = _dlq_of(sqs_client, url)
    sqs_client.send_message(QueueUrl=dlq, MessageBody=make_item(1).to_body())
    gone = make_queue()
    sqs_client.delete_queue(QueueUrl=gone)
    r = cli(["replay-dlq", "--dlq-url", dlq, "--queue-url", gone])
    assert r.exit_code in (exit_codes.RET_CONFIG, exit_codes.RET_CONNECTION)
    attrs = sqs_client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "1"  # still there and visible again at once, not hidden for minutes


def test_native_move_task_with_stubber():
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("sqs", region_name="ap-south-1")
    stub = Stubber(client)
    dlq_url, main_url = "https://sqs.ap-south-1.amazonaws.com/1/q-dlq", "https://sqs.ap-south-1.amazonaws.com/1/q"
    src, dst = "arn:aws:sqs:ap-south-1:1:q-dlq", "arn:aws:sqs:ap-south-1:1:q"
    stub.add_response(
        "get_queue_attributes", {"Attributes": {"QueueArn": src}}, {"QueueUrl": dlq_url, "AttributeNames": ["QueueArn"]}
    )
    stub.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": dst}},
        {"QueueUrl": main_url, "AttributeNames": ["QueueArn"]},
    )
    stub.add_response("start_message_move_task", {"TaskHandle": "h-1"}, {"SourceArn": src, "DestinationArn": dst})
    stub.add_response(
        "list_message_move_tasks",
        {
            "Results": [
                {
                    "TaskHandle": "h-1",
                    "Status": "RUNNING",
                    "ApproximateNumberOfMessagesMoved": 40,
                    "ApproximateNumberOfMessagesToMove": 100,
                }
            ]
        },
        {"SourceArn": src, "MaxResults": 1},
    )
    stub.add_response(
        "list_message_move_tasks",
        {"Results": [{"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 100}]},
        {"SourceArn": src, "MaxResults": 1},
    )
    seen = []
    with stub:
        rep = replay.move_native(
            client,
            SqsQueue(client, dlq_url),
            SqsQueue(client, main_url),
            sleep=lambda s: None,
            on_progress=lambda t: seen.append(t["Status"]),
        )
    stub.assert_no_pending_responses()
    assert (rep.task_handle, rep.native_status, rep.moved, rep.partial) == ("h-1", "COMPLETED", 100, False)
    assert seen == ["RUNNING", "COMPLETED"]


def test_native_unsupported_is_reported(make_queue, sqs_client):
    """Where the account (here moto) does not support the move task, the error is a QueueError, not a crash."""
    from anomaly_cli.errors import AnomalyError

    url = make_queue(dlq=True)
    with pytest.raises(AnomalyError):
        replay.move_native(
            sqs_client, SqsQueue(sqs_client, _dlq_of(sqs_client, url)), SqsQueue(sqs_client, url), sleep=lambda s: None
        )


def test_native_refuses_filters(cli, make_queue):
    r = cli(["replay-dlq", "--native", "--filter", "record_type=admin"], env={"SQS_QUEUE_URL": make_queue(dlq=True)})
    assert r.exit_code == exit_codes.RET_USAGE


def test_bad_filter(cli, make_queue):
    r = cli(["replay-dlq", "--filter", "school=1"], env={"SQS_QUEUE_URL": make_queue(dlq=True)})
    assert r.exit_code == exit_codes.RET_CONFIG and "--filter" in r.stderr
