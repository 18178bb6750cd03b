"""SqsQueue's batch calls under the one budget of retry.SQS_BATCH, against moto SQS (calls and
sleeps counted; throttling and Failed[] entries injected in front of the real client)."""

from __future__ import annotations

import math
import random
from typing import Any, Callable

import pytest

from anomaly_cli import errors, retry
from anomaly_cli.adapters.sqs import SqsQueue
from anomaly_cli.worker.batch import ack_messages
from anomaly_cli.worker.stats import WorkerStats

NOMINAL = [0.2, 0.4, 0.8, 1.6]


class Zero(random.Random):
    def random(self) -> float:
        return 0.0


def client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "DeleteMessageBatch",
    )


class Injecting:
    """The moto client, with ``fault(call_no, entries)`` deciding each DeleteMessageBatch call:
    raise, or return the ids to report in ``Failed[]`` (the rest reach moto)."""

    def __init__(self, inner: Any, fault: Callable[[int, list[dict[str, Any]]], Any]):
        self._inner, self.fault, self.calls = inner, fault, []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        self.calls.append([e["Id"] for e in Entries])
        failing = self.fault(len(self.calls), Entries) or {}
        keep = [e for e in Entries if e["Id"] not in failing]
        resp = self._inner.delete_message_batch(QueueUrl=QueueUrl, Entries=keep) if keep else {}
        return {
            "Successful": resp.get("Successful", []),
            "Failed": [
                {"Id": i, "Code": code, "Message": "injected", "SenderFault": sender}
                for i, (code, sender) in failing.items()
            ],
        }

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def received(sqs_client, make_queue) -> Callable[[int], tuple[str, list[tuple[str, str]]]]:
    def factory(n: int) -> tuple[str, list[tuple[str, str]]]:
        url = make_queue(visibility=300)
        for i in range(0, n, 10):
            sqs_client.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": f"m{j}"} for j in range(i, min(n, i + 10))]
            )
        got: list[tuple[str, str]] = []
        while len(got) < n:
            for m in sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                got.append((m["MessageId"], m["ReceiptHandle"]))
        return url, got

    return factory


def in_flight(sqs_client, url: str) -> int:
    a = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(a["ApproximateNumberOfMessagesNotVisible"])


def test_a_throttled_delete_batch_is_tried_exactly_5_times_with_the_policys_sleeps(sqs_client, received):
    url, acks = received(10)

    def throttle(n: int, entries: list) -> Any:
        raise client_error("RequestThrottled", 400)

    client, sleeps = Injecting(sqs_client, throttle), []
    q = SqsQueue(client, url, sleep=sleeps.append, rng=Zero())
    with pytest.raises(errors.QueueUnavailable):  # SQS never answered: its error is the caller's
        q.delete_batch(acks)
    assert len(client.calls) == retry.SQS_BATCH.attempts == 5
    assert sleeps == NOMINAL
    assert in_flight(sqs_client, url) == 10


def test_entries_sqs_keeps_refusing_share_the_budget_and_only_they_are_resent(sqs_client, received):
    url, acks = received(10)

    def refuse(n: int, entries: list) -> Any:
        return {e["Id"]: ("InternalError", False) for e in entries if e["Id"] == acks[3][0]}

    client, sleeps = Injecting(sqs_client, refuse), []
    res = SqsQueue(client, url, sleep=sleeps.append, rng=Zero()).delete_batch(acks)
    assert len(client.calls) == 5 and sleeps == NOMINAL
    assert len(client.calls[0]) == 10 and all(c == [acks[3][0]] for c in client.calls[1:])
    assert sorted(res.succeeded) == sorted(i for i, _ in acks if i != acks[3][0])
    assert [(f.id, f.code, f.sender_fault) for f in res.failed] == [(acks[3][0], "InternalError", False)]
    assert in_flight(sqs_client, url) == 1


def test_a_throttled_call_and_a_partial_one_spend_one_budget(sqs_client, received):
    url, acks = received(10)

    def mixed(n: int, entries: list) -> Any:
        if n == 1:
            raise client_error("ServiceUnavailable", 503)
        if n == 2:
            return {entries[0]["Id"]: ("InternalError", False)}
        return None

    client, sleeps = Injecting(sqs_client, mixed), []
    res = SqsQueue(client, url, sleep=sleeps.append, rng=Zero()).delete_batch(acks)
    assert len(client.calls) == 3 and sleeps == NOMINAL[:2]
    assert len(res.succeeded) == 10 and not res.failed and in_flight(sqs_client, url) == 0


def test_a_sender_fault_and_a_permanent_error_are_tried_once(sqs_client, received):
    url, acks = received(3)

    def sender(n: int, entries: list) -> Any:
        return {entries[0]["Id"]: ("ReceiptHandleIsInvalid", True)}

    client, sleeps = Injecting(sqs_client, sender), []
    res = SqsQueue(client, url, sleep=sleeps.append).delete_batch(acks)
    assert len(client.calls) == 1 and sleeps == [] and [f.code for f in res.failed] == ["ReceiptHandleIsInvalid"]

    def gone(n: int, entries: list) -> Any:
        raise client_error("AWS.SimpleQueueService.NonExistentQueue", 400)

    client, sleeps = Injecting(sqs_client, gone), []
    with pytest.raises(errors.QueueError) as info:
        SqsQueue(client, url, sleep=sleeps.append).delete_batch(acks)
    assert info.value.code == "queue_not_found" and not errors.is_transient(info.value)
    assert len(client.calls) == 1 and sleeps == []


@pytest.mark.parametrize("k", [1, 10, 25])
def test_an_ack_costs_at_most_5_calls_per_chunk_of_10(sqs_client, received, k):
    """The bound the README states: acking k messages makes at most 5 x ceil(k / 10) calls (it
    once made up to 3 x 5 x 5 = 75 per chunk: worker attempts x entry rounds x call retries)."""
    url, acks = received(k)

    def refuse_all(n: int, entries: list) -> Any:
        return {e["Id"]: ("InternalError", False) for e in entries}

    client = Injecting(sqs_client, refuse_all)
    stats = WorkerStats()
    failed = ack_messages(SqsQueue(client, url, sleep=lambda s: None), acks, stats)
    assert len(client.calls) == retry.SQS_BATCH.attempts * math.ceil(k / 10)
    assert sorted(failed) == sorted(i for i, _ in acks) and in_flight(sqs_client, url) == k
