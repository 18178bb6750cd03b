"""Coverage of one test date: eligible source rows vs enqueued (state) vs results vs queues,
and the eligible rows that have no result.

Each eligible row without a result is one of:

- *enqueued* (discovery's enqueue log has it, 7-day TTL): waiting in the queue, in a worker, or
  in the DLQ;
- *behind the watermark* and not in the enqueue log: discovery passed its place in the order
  without ever sending it, i.e. a row synced late (its ``subject_created_at`` is older than rows
  already enqueued), or one enqueued so long ago its log entry expired and the message was lost.
  ``discover --mode sweep`` re-enqueues those;
- *ahead of the watermark*: simply not discovered yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from anomaly_cli.adapters.mongo import mongo_errors, read_preference
from anomaly_cli.adapters.protocols import Database, ReadCollection, WorkQueue
from anomaly_cli.config import Settings, validate_test_date
from anomaly_cli.contract import SubjectRow, test_date_datetime
from anomaly_cli.discovery.enqueue_log import EnqueueLog
from anomaly_cli.redact import redact_url

if TYPE_CHECKING:
    from anomaly_cli.discovery.state import WatermarkKey
from anomaly_cli.results import document as D
from anomaly_cli.results.lookup import existing_ids_for

#: Rows looked up together (one results query and one enqueue-log query per chunk).
CHUNK = 1000


@dataclass
class CoverageReport:
    """Counts along the pipeline for one test date, plus the rows without a result."""

    test_date: str
    source_collection: str
    eligible: int = 0
    invalid_rows: int = 0
    state_found: bool = False
    enqueued: int = 0
    watermark: dict[str, Any] | None = None
    results_total: int = 0
    results_ok: int = 0
    results_anomaly: int = 0
    results_failed: int = 0
    queue: dict[str, int] | None = None
    dlq: dict[str, int] | None = None
    missing: int = 0
    missing_enqueued: int = 0
    missing_behind_watermark: int = 0
    missing_rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def coverage(
    settings: Settings,
    db: Database,
    test_date: str,
    *,
    queue: WorkQueue | None = None,
    dlq: WorkQueue | None = None,
    limit: int = 20,
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> CoverageReport:
    """Count one test date along the pipeline (reads the source once, in discovery order)."""
    from anomaly_cli.discovery.pipeline import build_pipeline
    from anomaly_cli.discovery.service import candidates
    from anomaly_cli.discovery.state import state_id, watermark_key

    validate_test_date(test_date)
    now = now or dt.datetime.now(dt.timezone.utc)
    src_name = settings.mongo_source_collection
    report = CoverageReport(test_date, src_name)
    state = db[settings.mongo_state_collection].find_one({"_id": state_id(src_name, test_date)})
    wm = watermark_key(state)
    if state:
        report.state_found = True
        report.enqueued = int((state.get("stats") or {}).get("enqueued", 0) or 0)
        report.watermark = {k: v for k, v in (state.get("watermark") or {}).items()}

    results = db[settings.mongo_result_collection]
    source = db[settings.mongo_source_collection].with_options(
        read_preference=read_preference(settings.mongo_read_preference)
    )
    # Streamed in chunks of CHUNK rows: each chunk's results and enqueue-log entries are looked up
    # in one query each and only the counts and the first ``limit`` missing rows are kept, so memory
    # stays flat however many rows a test date holds.
    chunk: list[tuple[SubjectRow, str]] = []
    with mongo_errors("coverage source read"):
        cursor = source.aggregate(build_pipeline(test_date, settings.tz, settings.subject_name), allowDiskUse=True)
        for n, cand in enumerate(candidates(cursor, subject_name=settings.subject_name, now=now), 1):
            if isinstance(cand.row, SubjectRow):
                report.eligible += 1
                chunk.append((cand.row, cand.row.result_id(src_name, test_date)))
                if len(chunk) >= CHUNK:
                    _settle_chunk(report, chunk, settings, db, results, test_date, wm, limit)
                    chunk = []
            else:
                report.invalid_rows += 1
            if on_progress and n % 500 == 0:
                on_progress(n)
    if chunk:
        _settle_chunk(report, chunk, settings, db, results, test_date, wm, limit)
    match = {D.F_TEST_DATE: test_date_datetime(test_date), "source.source_collection": src_name}
    with mongo_errors("coverage results count"):
        agg = list(
            results.aggregate(
                [
                    {"$match": match},
                    {
                        "$group": {
                            "_id": None,
                            "total": {"$sum": 1},
                            "failed": {"$sum": {"$cond": [{"$eq": ["$processing.status", D.STATUS_FAILED]}, 1, 0]}},
                            "anomaly": {
                                "$sum": {
                                    "$cond": [
                                        {
                                            "$and": [
                                                {"$eq": ["$inference.is_anomaly", True]},
                                                {"$ne": ["$processing.status", D.STATUS_FAILED]},
                                            ]
                                        },
                                        1,
                                        0,
                                    ]
                                }
                            },
                        }
                    },
                ]
            )
        )
    if agg:
        report.results_total, report.results_failed, report.results_anomaly = (
            agg[0]["total"],
            agg[0]["failed"],
            agg[0]["anomaly"],
        )
        report.results_ok = report.results_total - report.results_failed
    if queue is not None:
        report.queue = queue.approximate_counts()
    if dlq is not None:
        report.dlq = dlq.approximate_counts()
    return report


def _settle_chunk(
    report: CoverageReport,
    chunk: list[tuple[SubjectRow, str]],
    settings: Settings,
    db: Database,
    results: ReadCollection,
    test_date: str,
    wm: WatermarkKey | None,
    limit: int,
) -> None:
    """Count the rows of ``chunk`` without a result and say where each one is."""
    pairs = [(rid, (row.mongo_doc_id, test_date, row.record_type, row.subject_id)) for row, rid in chunk]
    have = existing_ids_for(results, pairs)
    missing = [(row, rid) for row, rid in chunk if rid not in have]
    logged = EnqueueLog(db[settings.mongo_enqueue_log_collection]).logged([rid for _, rid in missing])
    for row, rid in missing:
        report.missing += 1
        state_of = (
            "enqueued"
            if rid in logged
            else "behind_watermark"
            if wm is not None and row.sort_key <= wm
            else "not_discovered"
        )
        report.missing_enqueued += state_of == "enqueued"
        report.missing_behind_watermark += state_of == "behind_watermark"
        if len(report.missing_rows) < limit:
            report.missing_rows.append(
                {
                    "result_id": rid,
                    "mongo_doc_id": row.mongo_doc_id,
                    "record_type": row.record_type,
                    "subject_id": row.subject_id,
                    "subject_created_at": row.subject_created_at,
                    "audio_url": redact_url(row.audio_url),
                    "state": state_of,
                }
            )
