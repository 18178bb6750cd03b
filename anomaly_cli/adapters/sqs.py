"""SQS adapter: batch calls that always check ``Failed[]`` (clients come from :mod:`anomaly_cli.adapters.aws`).

The SQS quotas it enforces are named in :mod:`anomaly_cli.sqs_quotas` (with links to the AWS pages).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from anomaly_cli import retry
from anomaly_cli.errors import ConfigError, QueueError, QueueUnavailable
from anomaly_cli.sqs_quotas import (
    MAX_BATCH_ENTRIES,
    MAX_LONG_POLL_SECONDS,
    MAX_RECEIVE_MESSAGES,
    MAX_VISIBILITY_TIMEOUT_SECONDS,
)

if TYPE_CHECKING:
    from anomaly_cli.adapters.protocols import SqsClient

_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KmsThrottled",
    "RequestTimeout",
    "SlowDown",
    "AWS.SimpleQueueService.RequestThrottled",
}


def translate(e: BaseException, what: str) -> Exception:
    """A botocore/network exception as a :class:`QueueUnavailable` or :class:`QueueError`."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, EndpointConnectionError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code", "")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return QueueUnavailable(f"SQS {what} failed: {code or status}")
        return QueueError(f"SQS {what} failed: {code}: {err.get('Message', '')[:200]}", code=_queue_code(code))
    if isinstance(e, (EndpointConnectionError, ConnectionClosedError, BotoCoreError, OSError)):
        return QueueUnavailable(f"SQS {what} failed: {type(e).__name__}")
    return QueueError(f"SQS {what} failed: {type(e).__name__}: {e}")


def _queue_code(aws_code: str) -> str:
    if "NonExistentQueue" in aws_code or aws_code == "QueueDoesNotExist":
        return "queue_not_found"
    if "AccessDenied" in aws_code:
        return "queue_access_denied"
    return "queue_error"


@dataclass(frozen=True)
class BatchFailure:
    """One entry of a batch call that SQS refused."""

    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass
class BatchOutcome:
    """What a batch call (possibly retried) finally did: ids that succeeded and that failed."""

    succeeded: list[str] = field(default_factory=list)
    failed: list[BatchFailure] = field(default_factory=list)


@dataclass(frozen=True)
class BatchRetry:
    """A caller's own retries of a batch call, in place of the adapter's
    :data:`~anomaly_cli.retry.SQS_BATCH` (discovery: :data:`~anomaly_cli.retry.DISCOVERY_SEND`).

    ``sleep`` and ``clock`` default to the queue's sleep and ``time.monotonic``; ``deadline`` is on
    ``clock`` and is a patience (:meth:`~anomaly_cli.retry.Policy.retrying`); ``on_retry(attempt,
    seconds, error)`` is called before each wait.
    """

    policy: retry.Policy
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] | None = None
    deadline: float | None = None
    on_retry: Callable[[int, float, BaseException], None] | None = None


class Unsent(QueueUnavailable):
    """Raised inside a batch call's retries when SQS answered but left entries unsent (``Failed[]``
    without a sender fault): transient, so the policy sends those entries again."""

    code = "batch_entries_unsent"

    def __init__(self, failures: list[BatchFailure]):
        super().__init__(f"{len(failures)} entries unsent: " + ", ".join(sorted({f.code for f in failures})))
        self.failures = failures


def chunks(seq: Sequence[Any], size: int = MAX_BATCH_ENTRIES) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


class SqsQueue:
    """One queue. Every batch call checks ``Failed[]`` and retries only the entries that can
    succeed (``SenderFault == false``), under the one budget of :data:`anomaly_cli.retry.SQS_BATCH`:
    a throttled call and a partly failed one each spend one of its calls, so a chunk of 10 entries
    costs at most ``attempts`` calls. Other calls follow :data:`~anomaly_cli.retry.SQS_CALL`;
    ``ReceiveMessage`` is tried once (the worker loop pauses and polls again).

    ``retries`` (when given) makes every policy ``retries + 1`` calls (``doctor`` and the metrics
    probe ask once more at most); ``sleep`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        client: SqsClient,
        url: str,
        *,
        retries: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        if not url:
            raise ConfigError("SQS_QUEUE_URL is not set: no queue to use", field="SQS_QUEUE_URL")
        self.client = client
        self.url = url
        self.call_policy = retry.SQS_CALL if retries is None else retry.SQS_CALL.with_attempts(retries + 1)
        self.batch_policy = retry.SQS_BATCH if retries is None else retry.SQS_BATCH.with_attempts(retries + 1)
        self._sleep = sleep
        self._rng = rng

    @property
    def is_fifo(self) -> bool:
        return self.url.endswith(".fifo")

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call ``fn`` retrying transient failures (:data:`~anomaly_cli.retry.SQS_CALL`)."""
        for attempt in self.call_policy.retrying(sleep=self._sleep, rng=self._rng):
            with attempt:
                try:
                    return fn(**kwargs)
                except Exception as e:  # translated: QueueUnavailable is retried, QueueError raised
                    raise translate(e, what) from e
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _batches(
        self, what: str, fn: Callable[..., Any], entries: list[dict[str, Any]], own: BatchRetry | None = None
    ) -> BatchOutcome:
        """``entries`` (each with ``Id``) in chunks of 10, each chunk under its own budget (:meth:`_batch`)."""
        out = BatchOutcome()
        for chunk in chunks(entries):
            res = self._batch(what, fn, list(chunk), own)
            out.succeeded += res.succeeded
            out.failed += res.failed
        return out

    def _batch(
        self, what: str, fn: Callable[..., Any], entries: list[dict[str, Any]], own: BatchRetry | None = None
    ) -> BatchOutcome:
        """Send ``entries`` (<= 10, each with ``Id``) until every one succeeded or failed for good.

        One budget of calls (``own.policy``, :data:`~anomaly_cli.retry.SQS_BATCH` by default) covers
        a whole call that failed transiently and the entries ``Failed[]`` names without a sender
        fault. What is still unsent when it runs out (or when an interruptible ``sleep`` is
        interrupted) is reported failed; when no entry was ever answered, the last transient
        error is raised instead. A permanent error (no queue, no access) is raised at once.
        """
        outcome = BatchOutcome()
        pending = {e["Id"]: e for e in entries}
        last: dict[str, BatchFailure] = {}
        answered = False

        def unsent() -> list[BatchFailure]:  # what is still pending, each with its last failure
            return [last.get(i) or BatchFailure(i, "unanswered", "", False) for i in pending]

        own = own or BatchRetry(self.batch_policy)
        retrying = own.policy.retrying(
            sleep=own.sleep or self._sleep,
            rng=self._rng,
            clock=own.clock or time.monotonic,
            deadline=own.deadline,
            deadline_is_patience=own.deadline is not None,
            before_sleep=own.on_retry,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        resp = fn(QueueUrl=self.url, Entries=list(pending.values()))
                    except Exception as e:  # translated: QueueUnavailable is retried, QueueError raised
                        error = translate(e, what)
                        if isinstance(error, QueueUnavailable):
                            for i in pending:
                                last[i] = BatchFailure(i, error.code, str(error), False)
                        raise error from e
                    answered = True
                    for s in resp.get("Successful", []) or []:
                        if pending.pop(s["Id"], None) is not None:
                            outcome.succeeded.append(s["Id"])
                    for f in resp.get("Failed", []) or []:
                        failure = BatchFailure(
                            f["Id"], f.get("Code", ""), f.get("Message", ""), bool(f.get("SenderFault"))
                        )
                        if failure.sender_fault:
                            if pending.pop(f["Id"], None) is not None:
                                outcome.failed.append(failure)
                        else:
                            last[f["Id"]] = failure
                    if pending:
                        raise Unsent(unsent())
        except Unsent:
            pass  # the budget ran out with entries SQS kept refusing: reported below
        except QueueUnavailable:
            if not answered:  # SQS never answered this chunk: its error is the caller's to handle
                raise
        except retry.Interrupted:
            pass  # a stop signal during a wait: what is unsent is reported below
        outcome.failed += unsent()
        return outcome

    def send_batch(self, entries: list[dict[str, Any]], *, own: BatchRetry | None = None) -> BatchOutcome:
        """``SendMessageBatch`` in chunks of 10; entries are dicts with ``Id``, ``MessageBody`` ...

        A caller with more patience than :data:`~anomaly_cli.retry.SQS_BATCH` passes its own
        retries (:class:`BatchRetry`) instead of retrying around this call (discovery:
        :data:`~anomaly_cli.retry.DISCOVERY_SEND`).
        """
        return self._batches("SendMessageBatch", self.client.send_message_batch, entries, own)

    def delete_batch(self, receipts: list[tuple[str, str]]) -> BatchOutcome:
        """Delete ``(id, receipt_handle)`` pairs in chunks of 10, checking ``Failed[]``."""
        entries = [{"Id": i, "ReceiptHandle": r} for i, r in receipts]
        return self._batches("DeleteMessageBatch", self.client.delete_message_batch, entries)

    def change_visibility_batch(self, items: list[tuple[str, str, int]]) -> BatchOutcome:
        """Set visibility of ``(id, receipt_handle, seconds)`` triples in chunks of 10."""
        entries: list[dict[str, Any]] = [
            {"Id": i, "ReceiptHandle": r, "VisibilityTimeout": max(0, min(int(s), MAX_VISIBILITY_TIMEOUT_SECONDS))}
            for i, r, s in items
        ]
        return self._batches("ChangeMessageVisibilityBatch", self.client.change_message_visibility_batch, entries)

    def receive(
        self,
        max_messages: int = MAX_RECEIVE_MESSAGES,
        wait_seconds: int = MAX_LONG_POLL_SECONDS,
        visibility_timeout: int | None = None,
    ) -> list[dict[str, Any]]:
        """Long-poll up to 10 messages with ``ApproximateReceiveCount`` and all attributes."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.url,
            "MaxNumberOfMessages": max(1, min(max_messages, MAX_RECEIVE_MESSAGES)),
            "WaitTimeSeconds": max(0, min(wait_seconds, MAX_LONG_POLL_SECONDS)),
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = max(0, min(visibility_timeout, MAX_VISIBILITY_TIMEOUT_SECONDS))
        # One call (retry.SQS_RECEIVE): the worker loop pauses and polls again (retry.RECEIVE_PAUSE).
        try:
            resp = self.client.receive_message(**kwargs)
        except Exception as e:
            raise translate(e, "ReceiveMessage") from e
        return resp.get("Messages", []) or []

    def attributes(self, names: Sequence[str] = ("All",)) -> dict[str, str]:
        """``GetQueueAttributes`` (raises :class:`QueueError` ``queue_not_found`` when missing)."""
        resp = self._call(
            "GetQueueAttributes", self.client.get_queue_attributes, QueueUrl=self.url, AttributeNames=list(names)
        )
        attributes: dict[str, str] = resp.get("Attributes", {})
        return attributes

    def approximate_counts(self) -> dict[str, int]:
        attrs = self.attributes(
            [
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ]
        )
        return {
            "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        }


def receive_count(message: dict[str, Any]) -> int:
    """``ApproximateReceiveCount`` of a received message (1 when SQS did not say)."""
    try:
        return int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
    except (TypeError, ValueError):
        return 1


def queue_url_from_arn(client: SqsClient, arn: str) -> str:
    """The queue URL for a queue ARN (``arn:aws:sqs:region:account:name``)."""
    parts = arn.split(":")
    if len(parts) < 6:
        raise QueueError(f"not a queue ARN: {arn!r}")
    try:
        return str(client.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])["QueueUrl"])
    except Exception as e:
        raise translate(e, "GetQueueUrl") from e
