"""Put work items on the queue: from a JSONL/CSV file, synthetic test items, or any list.

:func:`send_items` is the one sender of the operator tools (``seed-sqs``, ``push-urls``,
``rescreen``): chunks of 10, ``Failed[]`` retried by :class:`~anomaly_cli.adapters.sqs.SqsQueue`
(only entries that can succeed), counts reported. Bad input rows are reported with their line
number and never sent; the good ones are.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

from anomaly_cli.adapters.protocols import WorkQueue
from anomaly_cli.contract import MESSAGE_FIELDS, RESCREEN_ATTRIBUTE, WorkItem, parse_message
from anomaly_cli.errors import ConfigError, ContractError
from anomaly_cli.log import get_logger

log = get_logger("ops.seed")
#: Bad rows kept in a report (the count is always exact); a broken 1M-line file must not fill memory.
MAX_REPORTED_BAD_ROWS = 1000


@dataclass(frozen=True)
class BadRow:
    """An input row that does not follow the 13-field contract (line number is 1-based)."""

    line: int
    reason: str


@dataclass
class SendReport:
    """What a send did: counts, the entries SQS refused (code -> count) and bad input rows."""

    read: int = 0
    sent: int = 0
    failed: int = 0
    failure_codes: dict[str, int] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)
    bad_count: int = 0
    dry_run: bool = False

    def add_bad(self, line: int, reason: str) -> None:
        """Count a bad row; keep its details up to :data:`MAX_REPORTED_BAD_ROWS`."""
        self.bad_count += 1
        if len(self.bad_rows) < MAX_REPORTED_BAD_ROWS:
            self.bad_rows.append(BadRow(line, reason))

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        return {
            "read": self.read,
            "sent": self.sent,
            "failed": self.failed,
            "failure_codes": self.failure_codes,
            "bad_rows": self.bad_count,
            "bad_row_details": [{"line": b.line, "reason": b.reason} for b in self.bad_rows],
            "dry_run": self.dry_run,
        }


def _csv_row_to_message(row: dict[str, Any]) -> dict[str, Any]:
    # CSV has no null: an empty student_id / udise cell means "absent" (null in the contract).
    msg = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k is not None}
    for name in ("student_id", "udise"):
        if msg.get(name) == "":
            msg[name] = None
    return msg


def read_items(path: str | Path, *, stream: TextIO | None = None) -> Iterator[tuple[int, WorkItem | BadRow]]:
    """Yield ``(line, WorkItem | BadRow)`` for each data row of a JSONL or CSV file (streamed).

    The format follows the extension (``.csv`` -> CSV with a header of the 13 field names,
    anything else -> one JSON object per line). Blank lines are skipped.
    """
    p = Path(path)
    fh = stream if stream is not None else _open(p)
    try:
        yield from _read(p, fh)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start} of a line)", field="--from") from e
    finally:
        if stream is None:
            fh.close()


def _read(p: Path, fh: TextIO) -> Iterator[tuple[int, WorkItem | BadRow]]:
    """The rows of an open JSONL / CSV file (a whole-file problem raises ConfigError)."""
    if p.suffix.lower() == ".csv":
        reader = csv.DictReader(fh)
        missing = [f for f in MESSAGE_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(
                f"{p}: CSV header lacks {', '.join(missing)}",
                field="--from",
                hint="the header must name the 13 message fields",
            )
        for row in reader:
            line = reader.line_num
            extra = row.pop(None, None)
            if extra:
                yield line, BadRow(line, "more cells than header columns")
                continue
            yield line, _parse(line, _csv_row_to_message(row))
    else:
        for line, text in enumerate(fh, 1):
            if not text.strip():
                continue
            yield line, _parse(line, text.strip())


def _open(p: Path) -> TextIO:
    try:
        return p.open("r", encoding="utf-8-sig", newline="")
    except OSError as e:
        raise ConfigError(f"cannot read {p}: {e.strerror or e}", field="--from") from e


def _parse(line: int, raw: Any) -> WorkItem | BadRow:
    try:
        return parse_message(raw)
    except ContractError as e:
        return BadRow(line, str(e))


def synthetic_items(
    n: int,
    *,
    bucket: str,
    prefix: str = "synthetic",
    test_date: str,
    source_collection: str = "synthetic",
    subject_name: str = "वाचन",
    ext: str = "wav",
    now: dt.datetime | None = None,
) -> list[WorkItem]:
    """``n`` contract-valid test items pointing at ``s3://bucket/prefix/<i>.<ext>`` (both record types)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    items = []
    for i in range(n):
        # Deterministic ObjectId-like ids: re-seeding the same N gives the same result ids.
        doc_id = hashlib.sha1(f"{source_collection}:{test_date}:{i}".encode()).hexdigest()[:24]
        created = now - dt.timedelta(seconds=n - i)
        items.append(
            WorkItem(
                source_collection=source_collection,
                mongo_doc_id=doc_id,
                test_date=test_date,
                record_type=("teacher", "admin")[i % 2],
                subject_id=f"syn-{i:06d}",
                subject_name=subject_name,
                audio_s3_url=f"s3://{bucket}/{prefix.strip('/')}/{i:06d}.{ext}".replace("//", "/").replace(
                    "s3:/", "s3://", 1
                ),
                source_updated_at=created,
                subject_created_at=created,
                student_id=f"SYN-{i:06d}",
                udise=None,
                trace_id=str(uuid.uuid4()),
                discovered_at=now,
            )
        )
    return items


def entry_for(
    item: WorkItem, entry_id: str, *, fifo: bool, group_id: str = "", rescreen: bool = False
) -> dict[str, Any]:
    """The ``SendMessageBatch`` entry of one item.

    FIFO: the group is ``SQS_FIFO_GROUP_ID`` or the row's ``mongo_doc_id`` (like discovery); the
    deduplication id includes the fresh ``trace_id``, so a deliberate re-send (seed again,
    rescreen) is not silently swallowed inside the 5-minute window, while SQS retries of the
    same send are.
    """
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": item.to_body()}
    if rescreen:
        entry["MessageAttributes"] = {RESCREEN_ATTRIBUTE: {"DataType": "String", "StringValue": "true"}}
    if fifo:
        entry["MessageGroupId"] = group_id or item.mongo_doc_id
        entry["MessageDeduplicationId"] = hashlib.sha256(f"{item.result_id}|{item.trace_id}".encode()).hexdigest()
    return entry


def send_items(
    queue: WorkQueue | None,
    items: Iterable[WorkItem | BadRow],
    *,
    group_id: str = "",
    rescreen: bool = False,
    dry_run: bool = False,
    report: SendReport | None = None,
    on_progress: Callable[[SendReport], None] | None = None,
) -> SendReport:
    """Send items in chunks of 10 (``BadRow`` entries are counted, not sent); never raises per entry.

    Queue-level failures (queue missing, no access) raise :class:`~anomaly_cli.errors.QueueError`.
    """
    report = report or SendReport(dry_run=dry_run)
    fifo = bool(queue is not None and queue.is_fifo)
    pending: list[WorkItem] = []

    def flush() -> None:
        if not pending:
            return
        if dry_run:
            report.sent += len(pending)
        else:
            entries = [
                entry_for(it, str(i), fifo=fifo, group_id=group_id, rescreen=rescreen) for i, it in enumerate(pending)
            ]
            assert queue is not None  # only a dry run goes without a queue
            outcome = queue.send_batch(entries)
            report.sent += len(outcome.succeeded)
            report.failed += len(outcome.failed)
            for f in outcome.failed:
                report.failure_codes[f.code or "unknown"] = report.failure_codes.get(f.code or "unknown", 0) + 1
            if outcome.failed:
                log.error(
                    "enqueue_batch_failed", failed=len(outcome.failed), codes=sorted({f.code for f in outcome.failed})
                )
        pending.clear()
        if on_progress:
            on_progress(report)

    for obj in items:
        report.read += 1
        if isinstance(obj, BadRow):
            report.add_bad(obj.line, obj.reason)
            continue
        pending.append(obj)
        if len(pending) == 10:
            flush()
    flush()
    log.info(
        "seed_completed",
        read=report.read,
        sent=report.sent,
        failed=report.failed,
        bad_rows=report.bad_count,
        dry_run=dry_run,
        rescreen=rescreen,
    )
    return report


def items_only(pairs: Iterable[tuple[int, WorkItem | BadRow]]) -> Iterator[WorkItem | BadRow]:
    """Drop the line numbers of :func:`read_items` (BadRow keeps its own)."""
    for _, obj in pairs:
        yield obj
