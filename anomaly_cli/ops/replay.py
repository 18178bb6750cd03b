"""Move failed messages from the dead-letter queue back to the work queue.

Two ways:

- the copy loop (default): receive from the DLQ, send to the main queue keeping the body, the
  message attributes and the FIFO group id, with a *fresh* deduplication id (the old one would
  be dropped silently inside the 5-minute window, after the DLQ copy is gone), and delete from
  the DLQ only what the send reported as successful (``Failed[]`` checked). Malformed bodies and
  messages outside ``--filter`` stay in the DLQ; they are made visible again at the end.
- ``native``: SQS ``StartMessageMoveTask`` (all messages, no filter), progress read from
  ``ListMessageMoveTasks``.

``peek`` (``--dry-run``) receives with a visibility timeout and releases everything at once at
the end (visibility 0): nothing is consumed. Receives long-poll ``wait_seconds`` (1 s): a short
poll on AWS samples a subset of servers and can answer "empty" while messages remain. It does raise
each message's receive count by one (SQS has no read-only peek); DLQs have no redrive policy of
their own, so that is harmless.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from anomaly_cli.adapters.protocols import SqsClient
from anomaly_cli.adapters.sqs import SqsQueue, queue_url_from_arn, receive_count, translate
from anomaly_cli.contract import parse_message
from anomaly_cli.errors import ConfigError, ContractError, QueueError
from anomaly_cli.log import get_logger
from anomaly_cli.redact import redact_text

log = get_logger("ops.replay")
#: Hold on received DLQ messages while one run works; released (visibility 0) when it ends.
HOLD_SECONDS = 300
FILTER_KEYS = ("test_date", "record_type")
NATIVE_DONE = ("COMPLETED", "FAILED", "CANCELLED")


def parse_filters(raw: list[str] | None) -> dict[str, str]:
    """``["test_date=2025-12-20", "record_type=admin"]`` -> dict; unknown keys are a ConfigError."""
    out: dict[str, str] = {}
    for text in raw or []:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or key not in FILTER_KEYS or not value.strip():
            raise ConfigError(
                f"--filter {text!r}: expected one of {', '.join(k + '=VALUE' for k in FILTER_KEYS)}", field="--filter"
            )
        out[key] = value.strip()
    return out


def resolve_dlq(sqs_client: SqsClient, queue_url: str, dlq_url: str = "") -> str:
    """The DLQ URL: ``dlq_url`` when given, else the main queue's ``RedrivePolicy`` target."""
    if dlq_url:
        return dlq_url
    if not queue_url:
        raise ConfigError(
            "no DLQ: pass --dlq-url or set SQS_QUEUE_URL (its RedrivePolicy names the DLQ)", field="SQS_DLQ_URL"
        )
    attrs = SqsQueue(sqs_client, queue_url).attributes(["RedrivePolicy"])
    policy = attrs.get("RedrivePolicy")
    if not policy:
        raise ConfigError(
            "the queue has no RedrivePolicy, so it has no DLQ to replay",
            field="SQS_DLQ_URL",
            hint="pass --dlq-url, or give the queue a redrive policy (see `anomaly doctor`)",
        )
    arn = json.loads(policy).get("deadLetterTargetArn", "")
    return queue_url_from_arn(sqs_client, arn)


@dataclass
class PeekReport:
    """What the DLQ holds (``--dry-run``)."""

    dlq_url: str
    approximate: int = 0
    seen: int = 0
    test_dates: Counter = field(default_factory=Counter)
    record_types: Counter = field(default_factory=Counter)
    receive_counts: Counter = field(default_factory=Counter)
    invalid: int = 0
    invalid_samples: list[str] = field(default_factory=list)
    matching: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        return {
            "dlq_url": self.dlq_url,
            "approximate_messages": self.approximate,
            "seen": self.seen,
            "matching_filter": self.matching,
            "test_dates": dict(self.test_dates),
            "record_types": dict(self.record_types),
            "receive_counts": {str(k): v for k, v in sorted(self.receive_counts.items())},
            "invalid": self.invalid,
            "invalid_samples": self.invalid_samples,
        }


@dataclass
class MoveReport:
    """The end-of-run report: moved, skipped (invalid / not matching), failed (left in the DLQ)."""

    dlq_url: str
    moved: int = 0
    skipped_invalid: int = 0
    skipped_filter: int = 0
    failed: int = 0
    delete_failed: int = 0
    failure_codes: dict[str, int] = field(default_factory=dict)
    native: bool = False
    task_handle: str | None = None
    native_status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        return {
            k: getattr(self, k)
            for k in (
                "dlq_url",
                "moved",
                "skipped_invalid",
                "skipped_filter",
                "failed",
                "delete_failed",
                "failure_codes",
                "native",
                "task_handle",
                "native_status",
            )
        }

    @property
    def partial(self) -> bool:
        """True when some messages could not be moved (the command exits 5)."""
        return bool(self.failed or self.delete_failed or self.native_status in ("FAILED", "CANCELLED"))


def _classify(message: Mapping[str, Any], filters: Mapping[str, str]) -> tuple[Any, bool]:
    """(parsed item or None, matches the filters). Invalid bodies never match a filter."""
    try:
        item = parse_message(message.get("Body", ""))
    except ContractError:
        return None, not filters
    ok = all(getattr(item, k) == v for k, v in filters.items())
    return item, ok


def peek(
    dlq: SqsQueue,
    *,
    max_messages: int | None = None,
    filters: Mapping[str, str] | None = None,
    wait_seconds: int = 1,
    on_progress: Callable[[int], None] | None = None,
) -> PeekReport:
    """Summarise the DLQ without consuming anything."""
    filters = filters or {}
    report = PeekReport(dlq.url, approximate=dlq.approximate_counts()["visible"])
    held: list[tuple[str, str]] = []
    try:
        while max_messages is None or report.seen < max_messages:
            batch = dlq.receive(wait_seconds=wait_seconds, visibility_timeout=HOLD_SECONDS)
            if not batch:
                break
            for m in batch:
                held.append((m["MessageId"], m["ReceiptHandle"]))
                report.seen += 1
                report.receive_counts[receive_count(m)] += 1
                item, ok = _classify(m, filters)
                if item is None:
                    report.invalid += 1
                    if len(report.invalid_samples) < 5:
                        # redacted before cut: a body may carry a presigned URL
                        report.invalid_samples.append(redact_text(m.get("Body", ""))[:120])
                else:
                    report.test_dates[item.test_date] += 1
                    report.record_types[item.record_type] += 1
                report.matching += ok
            if on_progress:
                on_progress(report.seen)
    finally:
        _release(dlq, held)
    return report


def _release(q: SqsQueue, held: list[tuple[str, str]]) -> None:
    if held:
        q.change_visibility_batch([(str(i), r, 0) for i, (_, r) in enumerate(held)])


def _user_attributes(message: Mapping[str, Any]) -> dict[str, Any]:
    # Received attributes carry empty list fields that SendMessage rejects: keep only what it accepts.
    out: dict[str, Any] = {}
    for name, attr in (message.get("MessageAttributes") or {}).items():
        kept = {"DataType": attr["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if key in attr:
                kept[key] = attr[key]
        out[name] = kept
    return out


def move(
    dlq: SqsQueue,
    target: SqsQueue,
    *,
    max_messages: int | None = None,
    filters: Mapping[str, str] | None = None,
    include_invalid: bool = False,
    wait_seconds: int = 1,
    on_progress: Callable[[MoveReport], None] | None = None,
) -> MoveReport:
    """Copy DLQ messages to ``target`` and delete each from the DLQ only after its send succeeded."""
    filters = filters or {}
    report = MoveReport(dlq.url)
    # Receipts this run holds invisible and has not deleted: released (visibility 0) at the end,
    # also when a send raises, so a failed run never hides the DLQ for HOLD_SECONDS.
    held: dict[str, str] = {}
    try:
        while max_messages is None or report.moved + report.failed < max_messages:
            batch = dlq.receive(wait_seconds=wait_seconds, visibility_timeout=HOLD_SECONDS)
            if not batch:
                break
            entries: list[dict[str, Any]] = []
            by_id: dict[str, Any] = {}
            for m in batch:
                held[m["MessageId"]] = m["ReceiptHandle"]
                item, ok = _classify(m, filters)
                room = max_messages is None or report.moved + report.failed + len(entries) < max_messages
                if item is None and not include_invalid:
                    report.skipped_invalid += 1
                elif not ok:
                    report.skipped_filter += 1
                elif room:
                    entry = {"Id": str(len(entries)), "MessageBody": m["Body"]}
                    attrs = _user_attributes(m)
                    if attrs:
                        entry["MessageAttributes"] = attrs
                    if target.is_fifo:
                        group = (m.get("Attributes") or {}).get("MessageGroupId") or (
                            item.mongo_doc_id if item else "replay"
                        )
                        entry["MessageGroupId"] = group
                        entry["MessageDeduplicationId"] = uuid.uuid4().hex
                    by_id[entry["Id"]] = m
                    entries.append(entry)
            if not entries:
                continue
            outcome = target.send_batch(entries)
            for f in outcome.failed:
                report.failed += 1
                report.failure_codes[f.code or "unknown"] = report.failure_codes.get(f.code or "unknown", 0) + 1
            sent = [by_id[i] for i in outcome.succeeded]
            if sent:
                deleted = dlq.delete_batch([(str(i), m["ReceiptHandle"]) for i, m in enumerate(sent)])
                for i in deleted.succeeded:
                    held.pop(sent[int(i)]["MessageId"], None)
                report.moved += len(deleted.succeeded)
                # A delete that failed leaves a copy in both queues: the deterministic result id
                # makes the second screening a no-op, so it is reported, not retried forever.
                report.delete_failed += len(deleted.failed)
            log.info("replay_chunk_completed", moved=report.moved, failed=report.failed)
            if on_progress:
                on_progress(report)
    finally:
        _release(dlq, list(held.items()))
    log.info("replay_completed", **{k: v for k, v in report.to_dict().items() if k != "dlq_url"})
    return report


def queue_arn(q: SqsQueue) -> str:
    """The ARN of a queue (the move task addresses queues by ARN)."""
    return q.attributes(["QueueArn"])["QueueArn"]


def move_native(
    sqs_client: SqsClient,
    dlq: SqsQueue,
    target: SqsQueue,
    *,
    max_per_second: int | None = None,
    poll_seconds: float = 2.0,
    timeout_s: float = 3600.0,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[Mapping[str, Any]], None] | None = None,
) -> MoveReport:
    """``StartMessageMoveTask`` from the DLQ to ``target``, then poll ``ListMessageMoveTasks``."""
    report = MoveReport(dlq.url, native=True)
    source_arn = queue_arn(dlq)
    kwargs: dict[str, Any] = {"SourceArn": source_arn, "DestinationArn": queue_arn(target)}
    if max_per_second:
        kwargs["MaxNumberOfMessagesPerSecond"] = int(max_per_second)
    try:
        report.task_handle = sqs_client.start_message_move_task(**kwargs)["TaskHandle"]
    except Exception as e:
        raise translate(e, "StartMessageMoveTask") from e
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            tasks = sqs_client.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        except Exception as e:
            raise translate(e, "ListMessageMoveTasks") from e
        task = tasks[0] if tasks else {}
        report.native_status = task.get("Status")
        report.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0) or 0)
        if on_progress:
            on_progress(task)
        if report.native_status in NATIVE_DONE:
            if report.native_status == "FAILED":
                report.failure_codes[task.get("FailureReason", "unknown")[:80]] = 1
            break
        if time.monotonic() > deadline:
            raise QueueError(
                f"message move task still {report.native_status} after {timeout_s:.0f}s",
                code="move_task_timeout",
                hint="it keeps running in SQS; check it in the console",
            )
        sleep(poll_seconds)
    log.info("replay_completed", native=True, moved=report.moved, status=report.native_status)
    return report
