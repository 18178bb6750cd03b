"""Discovery runs: backfill, incremental and sweep, from sorted source rows to SQS messages.

How a run works (decisions where the issue is silent are marked *decision*):

- One aggregation cursor (``pipeline.build_pipeline``) per pass, sliced into pages of
  ``DISCOVERY_BATCH_SIZE`` capped by what is left of ``MAX_RECORDS`` (100, 100, 50): a run
  costs O(rows). Rows equal on the whole order key never split across pages (the page grows).
- Every page: reject invalid rows (counted by reason), skip rows whose result exists (by
  ``_id`` or natural key, one query), in sweep mode also rows enqueued recently, send the rest
  with ``SendMessageBatch`` in chunks of 10 (``Failed[]`` checked, non-sender faults retried by
  :class:`~anomaly_cli.adapters.sqs.SqsQueue`), then advance the watermark past every decided
  row up to (never past) the first unsent one, with a conditional update (never backwards).
- *decision*: rows sent after an unsent one in the same page are sent again by the re-run
  (at-least-once; the result ``_id`` and FIFO deduplication id make that harmless). A page
  with an unsent row ends the run: status ``failed``, report ``partial``.
- *decision*: "recent enqueue" for sweep = the enqueue log (:mod:`~anomaly_cli.discovery.enqueue_log`,
  written for every row sent in any mode, 7-day TTL). Sweep skips rows enqueued less than
  ``SWEEP_RECENT_SECONDS`` ago; they are still in the queue or being screened.
- Rows with a non-date ``subject_created_at`` have no place in the time order: they are
  counted as invalid when a pass from the start meets them, and never move the watermark.
- A stop flag (``threading.Event``-like, set by the CLI's signal handler) is checked between
  pages: the current page finishes and its state is saved.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Protocol, Sequence

from anomaly_cli import errors, retry
from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import Database, ReadCollection
from anomaly_cli.adapters.sqs import BatchOutcome, BatchRetry, SqsQueue, Unsent, chunks
from anomaly_cli.config import MODES, Settings
from anomaly_cli.contract import (
    RejectedRow,
    SubjectRow,
    body_over_limit,
    is_matching_row,
    normalize_subject_row,
    subject_matches,
    utc,
)
from anomaly_cli.discovery.cursor import ResumableRows, StopRequested
from anomaly_cli.discovery.enqueue_log import EnqueueLog
from anomaly_cli.discovery.pipeline import build_pipeline, first_match
from anomaly_cli.discovery.state import StateRepository, WatermarkKey, now_utc, watermark_doc, watermark_key
from anomaly_cli.log import get_logger
from anomaly_cli.results.lookup import existing_results
from anomaly_cli.sqs_quotas import MAX_BATCH_ENTRIES

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

log = get_logger("discovery")

SAMPLE_ROWS = 10
NEARBY = dt.timedelta(days=1)


class StopFlag(Protocol):
    """What the service needs of a stop signal (``threading.Event`` fits)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class Candidate:
    """One subject row out of the cursor: its order key and what normalising made of it."""

    ts: dt.datetime | None
    doc_id: str
    record_type: str
    subject_id: str
    row: SubjectRow | RejectedRow

    @property
    def key(self) -> WatermarkKey | None:
        return (self.ts, self.doc_id, self.record_type, self.subject_id) if self.ts is not None else None

    @property
    def full_key(self) -> tuple[Any, ...]:
        return (self.ts, self.doc_id, self.record_type, self.subject_id)


@dataclass(frozen=True)
class DiscoveryReport:
    """The outcome of one discovery run (what the CLI renders and exits on)."""

    mode: str
    test_date: str
    dry_run: bool
    status: str  # completed | failed | interrupted (dry run: completed)
    pages: int
    fetched: int
    discovered: int
    enqueued: int
    would_enqueue: int
    skipped_existing: int
    skipped_recent: int
    skipped_invalid: Mapping[str, int]
    failed: int
    watermark: Mapping[str, Any] | None
    started_at: dt.datetime
    finished_at: dt.datetime
    sample: tuple[Mapping[str, Any], ...] = ()
    nearby_documents: int | None = None
    stopped: bool = False
    failure_codes: Mapping[str, int] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """True when some rows could not be sent (the CLI exits with the partial code)."""
        return self.failed > 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["partial"] = self.partial
        return d


@dataclass
class _Tally:
    pages: int = 0
    fetched: int = 0
    matched: int = 0  # fetched rows that are matching rows: what MAX_RECORDS caps
    discovered: int = 0
    enqueued: int = 0
    would_enqueue: int = 0
    skipped_existing: int = 0
    skipped_recent: int = 0
    failed: int = 0
    invalid: Counter = field(default_factory=Counter)
    failure_codes: Counter = field(default_factory=Counter)
    sample: list = field(default_factory=list)


@dataclass
class _Run:
    """What one run hands along its loop, passes and pages: who it is, where it stands, its counts."""

    mode: str
    test_date: str
    dry_run: bool
    watermark: WatermarkKey | None  # as the run knows it (sweep never moves it)
    tally: _Tally = field(default_factory=_Tally)
    polls: _Polls | None = None  # incremental runs only

    @property
    def quiet(self) -> bool:
        """True while an incremental run is idle: its per-poll events drop to DEBUG."""
        return self.polls is not None and self.polls.idle


@dataclass
class _Polls:
    """An incremental run's polls, for its heartbeat and for ``state show``.

    *decision*: ``rows_behind`` is what the last poll found after the watermark and has not
    decided yet: 0 once a poll reached the end of the rows (caught up); while a poll works
    through a backlog it counts down page by page. A separate count query per poll would cost as
    much as the poll itself, so the backlog's size is known only as the poll meets it.
    """

    started: dt.datetime
    polls: int = 0
    last_poll_at: dt.datetime | None = None
    last_poll_rows: int = 0
    idle: bool = False  # the last poll found nothing new
    heartbeat_at: dt.datetime | None = None
    enqueued_at_heartbeat: int = 0
    polls_at_heartbeat: int = 0

    def progress(self, run: _Run, now: dt.datetime) -> dict[str, Any]:
        elapsed = max((now - self.started).total_seconds(), 1e-9)
        return {
            "polls": self.polls,
            "last_poll_at": self.last_poll_at,
            "last_poll_rows": self.last_poll_rows,
            "rows_behind": 0 if self.idle else None,
            "caught_up": self.idle,
            "enqueued": run.tally.enqueued,
            "rate_rows_per_s": round(run.tally.enqueued / elapsed, 3),
            "heartbeat_at": now,
        }


def new_holder() -> str:
    """A lease holder id naming this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def candidates(cursor: Iterator[Mapping[str, Any]], *, subject_name: str, now: dt.datetime) -> Iterator[Candidate]:
    """Normalise cursor rows, ordering rows of one (timestamp, document, record type) by the
    *string* subject id (MongoDB orders mixed number/string ids by type; the watermark stores
    strings, so the Python order is the one that counts)."""
    group: list[Candidate] = []
    group_key: tuple[Any, ...] | None = None
    for doc in cursor:
        raw = doc.get("row")
        if not isinstance(raw, Mapping) or not subject_matches(raw, subject_name):
            continue
        record_type = str(doc.get("record_type"))  # the pipeline projects it from the path it unwound
        row = normalize_subject_row(mongo_doc_id=doc["_id"], record_type=record_type, raw=raw, student=doc, now=now)
        ts = doc.get("source_updated_at")
        ts = utc(ts) if isinstance(ts, dt.datetime) else None
        sid = row.subject_id or ""
        cand = Candidate(ts, row.mongo_doc_id, record_type, sid, row)
        gk = (ts, cand.doc_id, record_type)
        if gk != group_key and group:
            yield from sorted(group, key=lambda c: c.subject_id)
            group = []
        group_key = gk
        group.append(cand)
    yield from sorted(group, key=lambda c: c.subject_id)


class _Peekable:
    def __init__(self, it: Iterator[Candidate]):
        self._it = it
        self._head: list[Candidate] = []

    def peek(self) -> Candidate | None:
        if not self._head:
            nxt = next(self._it, None)
            if nxt is None:
                return None
            self._head.append(nxt)
        return self._head[0]

    def next(self) -> Candidate | None:
        c = self.peek()
        if c is not None:
            self._head.pop()
        return c


#: A page holds ``limit`` matching rows and the non-matching ones between them, but never more
#: than this many times ``limit`` rows in all (memory stays bounded on a date full of broken rows).
PAGE_OVERFETCH = 10


def take_page(it: _Peekable, limit: int) -> list[Candidate]:
    """Up to ``limit`` *matching* candidates (:func:`~anomaly_cli.contract.is_matching_row`) with the
    non-matching ones met on the way, plus any that are equal to the last on the whole key."""
    page: list[Candidate] = []
    matched = 0
    while matched < limit and len(page) < limit * PAGE_OVERFETCH:
        c = it.next()
        if c is None:
            return page
        page.append(c)
        matched += is_matching_row(c.row)
    while page and (nxt := it.peek()) is not None and nxt.full_key == page[-1].full_key:
        page.append(it.next())  # type: ignore[arg-type]
    return page


class _Sender:
    """Runs a page's chunk sends ``concurrency`` at a time (threads made on first use, kept for
    the service's life; one at a time without threads when ``concurrency`` is 1)."""

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.concurrency <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="discover-send")
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


class DiscoveryService:
    """Runs discovery for one test date. Clients are injected; nothing here creates one."""

    def __init__(
        self,
        settings: Settings,
        *,
        source: ReadCollection,
        state: StateRepository,
        results: ReadCollection,
        enqueue_log: EnqueueLog,
        queue: SqsQueue | None,
        stop: StopFlag | None = None,
        clock: Callable[[], dt.datetime] = now_utc,
        holder: str | None = None,
        on_page: Callable[[Mapping[str, Any]], None] | None = None,
    ):
        self.s = settings
        self.source = source
        self.state = state
        self.results = results
        self.enqueue_log = enqueue_log
        self.queue = queue
        self.stop = stop if stop is not None else threading.Event()
        self.clock = clock
        self.holder = holder or new_holder()
        self.on_page = on_page
        self._state_lock = threading.Lock()
        self._sender = _Sender(settings.discovery_send_concurrency)

    # ----- public -----
    def run(self, mode: str | None = None, *, test_date: str | None = None, dry_run: bool = False) -> DiscoveryReport:
        """Run one discovery (``mode`` default ``MONGO_TO_SQS_MODE``) and return its report."""
        mode = mode or self.s.mongo_to_sqs_mode
        test_date = test_date or self.s.test_date
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.s.require("test_date")
        if not dry_run and self.queue is None:
            self.s.require("sqs_queue_url")
        started = self.clock()
        run_id = uuid.uuid4().hex
        wm: WatermarkKey | None
        if dry_run:
            wm = watermark_key(self.state.get(test_date))
        else:
            self.state.ensure_indexes()
            self.enqueue_log.ensure_indexes()
            self.state.acquire(test_date, self.holder, mode=mode)
            doc = self.state.start_run(test_date, self.holder, mode=mode, run_id=run_id)
            wm = watermark_key(doc)
            log.info(
                "state_run_started",
                test_date=test_date,
                mode=mode,
                state_id=self.state.id_for(test_date),
                holder=self.holder,
                run_id=run_id,
            )
        run = _Run(mode, test_date, dry_run, wm)
        tally = run.tally
        if wm is None:
            log.info("watermark_missing", test_date=test_date, mode=mode)
        else:
            log.info("watermark_loaded", test_date=test_date, mode=mode, **watermark_doc(wm))
        log.info(
            "discovery_run_started",
            test_date=test_date,
            mode=mode,
            dry_run=dry_run,
            batch_size=self.s.discovery_batch_size,
            max_records=self.s.max_records,
            subject_name=self.s.subject_name,
            test_date_timezone=self.s.test_date_timezone,
        )
        status = "completed"
        try:
            status = self._loop(run)
            wm = run.watermark
        except KeyboardInterrupt:
            if not dry_run:
                self.state.finish_run(test_date, self.holder, status="interrupted", error="interrupted")
            raise
        except Exception as e:
            if not dry_run:
                from anomaly_cli.redact import redact_text

                self.state.finish_run(test_date, self.holder, status="failed", error=redact_text(str(e))[:500])
            raise
        finally:
            self._sender.close()
        if not dry_run:
            self.state.finish_run(test_date, self.holder, status=status)
            # report what is stored: a capped backfill behind a later watermark leaves it where it was
            wm = watermark_key(self.state.get(test_date))
        nearby = None
        if dry_run and tally.fetched == 0:
            nearby = self._nearby_documents(test_date)
        report = DiscoveryReport(
            mode=mode,
            test_date=test_date,
            dry_run=dry_run,
            status=status,
            pages=tally.pages,
            fetched=tally.fetched,
            discovered=tally.discovered,
            enqueued=tally.enqueued,
            would_enqueue=tally.would_enqueue,
            skipped_existing=tally.skipped_existing,
            skipped_recent=tally.skipped_recent,
            skipped_invalid=dict(tally.invalid),
            failed=tally.failed,
            watermark=watermark_doc(wm) if wm else None,
            started_at=started,
            finished_at=self.clock(),
            sample=tuple(tally.sample),
            nearby_documents=nearby,
            stopped=status == "interrupted",
            failure_codes=dict(tally.failure_codes),
        )
        log.info(
            "state_run_finished",
            test_date=test_date,
            mode=mode,
            status=status,
            dry_run=dry_run,
            pages=report.pages,
            fetched=report.fetched,
            enqueued=report.enqueued,
            skipped_existing=report.skipped_existing,
            skipped_recent=report.skipped_recent,
            skipped_invalid=report.skipped_invalid,
            failed=report.failed,
        )
        return report

    # ----- the loop -----
    def _remaining(self, tally: _Tally) -> int | None:
        return None if self.s.max_records is None else self.s.max_records - tally.matched

    def _loop(self, run: _Run) -> str:
        """Passes until the run ends; returns its status (``run.watermark`` is where it stands)."""
        iteration = 0
        if run.mode == "incremental" and not run.dry_run:
            run.polls = _Polls(started=self.clock())
        while True:
            iteration += 1
            # backfill and sweep read the whole date from the start; incremental reads after the watermark
            after = run.watermark if run.mode == "incremental" else None
            (log.debug if run.quiet else log.info)(
                "discovery_run_once_started",
                test_date=run.test_date,
                mode=run.mode,
                iteration=iteration,
                after=watermark_doc(after) if after else None,
            )
            outcome, new_rows = self._pass(run, after)
            if run.polls is not None:
                self._polled(run, new_rows, caught_up=outcome == "exhausted")
            if outcome != "exhausted":
                return outcome
            if run.mode != "incremental" or run.dry_run:
                return "completed"
            remaining = self._remaining(run.tally)
            if remaining is not None and remaining <= 0:
                return "completed"
            if new_rows == 0:
                # nothing new: sleep, waking early on a stop signal; the lease is kept alive
                if self.stop.wait(self.s.poll_interval_seconds):
                    return "interrupted"
                # re-take rather than renew: a poll interval longer than the lease may have let it
                # expire, which is fine as long as nobody else took it meanwhile (else LeaseHeld)
                self.state.acquire(run.test_date, self.holder, mode=run.mode)
            if self.stop.is_set():
                return "interrupted"

    def _polled(self, run: _Run, rows: int, *, caught_up: bool) -> None:
        """Count a poll; every ``DISCOVERY_HEARTBEAT_SECONDS`` (and when the run goes idle or
        wakes up) log ``discovery_heartbeat`` and store the progress for ``state show``."""
        polls = run.polls
        assert polls is not None
        now = self.clock()
        was_idle = polls.idle
        polls.polls += 1
        polls.last_poll_at = now
        polls.last_poll_rows = rows
        polls.idle = caught_up and rows == 0
        due = (
            polls.heartbeat_at is None
            or (now - polls.heartbeat_at).total_seconds() >= self.s.discovery_heartbeat_seconds
        )
        if not (due or polls.idle != was_idle):
            return
        progress = polls.progress(run, now)
        log.info(
            "discovery_heartbeat",
            test_date=run.test_date,
            polls_since=polls.polls - polls.polls_at_heartbeat,
            enqueued_since=run.tally.enqueued - polls.enqueued_at_heartbeat,
            watermark=watermark_doc(run.watermark) if run.watermark else None,
            **{k: v for k, v in progress.items() if k not in ("heartbeat_at", "last_poll_at")},
        )
        polls.heartbeat_at, polls.polls_at_heartbeat, polls.enqueued_at_heartbeat = now, polls.polls, run.tally.enqueued
        self.state.record_progress(run.test_date, self.holder, progress)

    def _pass(self, run: _Run, after: WatermarkKey | None) -> tuple[str, int]:
        """One sorted cursor (rows after ``after``) sliced into pages. Returns (outcome, rows fetched):
        outcome is ``exhausted`` | ``capped`` (as ``completed``) | ``failed`` | ``interrupted``."""
        test_date, tally = run.test_date, run.tally
        rows = self._rows(test_date, after)
        fetched_here = 0
        try:
            while True:
                remaining = self._remaining(tally)
                if remaining is not None and remaining <= 0:
                    return "completed", fetched_here
                limit = (
                    self.s.discovery_batch_size if remaining is None else min(self.s.discovery_batch_size, remaining)
                )
                page_no = tally.pages + 1
                (log.debug if run.quiet else log.info)(
                    "discovery_page_fetch_started", test_date=test_date, page=page_no, limit=limit
                )
                t0 = time.perf_counter()
                try:
                    page = rows.next_page(limit)
                except StopRequested:
                    return "interrupted", fetched_here
                (log.debug if run.quiet and not page else log.info)(
                    "discovery_page_fetch_completed",
                    test_date=test_date,
                    page=page_no,
                    rows=len(page),
                    elapsed_ms=round((time.perf_counter() - t0) * 1000, 1),
                )
                if not page:
                    return "exhausted", fetched_here
                fetched_here += len(page)
                failed = self._page(run, page, page_no)
                if self.on_page:
                    self.on_page(
                        {
                            "pages": tally.pages,
                            "fetched": tally.fetched,
                            "enqueued": tally.enqueued,
                            "max_records": self.s.max_records,
                            "skipped_existing": tally.skipped_existing,
                            "failed": tally.failed,
                        }
                    )
                if failed:
                    return "failed", fetched_here
                if self.stop.is_set():
                    return "interrupted", fetched_here
        finally:
            rows.close()

    def _rows(self, test_date: str, after: WatermarkKey | None) -> ResumableRows:
        """The pass's sorted candidates, strictly after ``after``, reopened when the cursor dies."""

        def open_cursor(position: WatermarkKey | None) -> tuple[Any, Iterator[Candidate]]:
            pipeline = build_pipeline(
                test_date, self.s.tz, self.s.subject_name, after=position[0] if position else None
            )
            cursor = self.source.aggregate(pipeline, allowDiskUse=True, batchSize=self.s.discovery_batch_size)
            cands: Iterator[Candidate] = candidates(iter(cursor), subject_name=self.s.subject_name, now=self.clock())
            if position is not None:
                cands = (c for c in cands if c.key is not None and c.key > position)
            return cursor, cands

        return ResumableRows(
            open_cursor,
            take_page,
            _Peekable,
            after=after,
            wait=self.stop.wait,
            context={"test_date": test_date},
        )

    def _page(self, run: _Run, page: Sequence[Candidate], page_no: int) -> bool:
        """Decide every row of a page, send, advance the watermark; returns True when a row was not sent."""
        mode, test_date, tally, wm = run.mode, run.test_date, run.tally, run.watermark
        coll = self.s.mongo_source_collection
        invalid: Counter = Counter()
        valid: dict[str, SubjectRow] = {}
        for c in page:
            if isinstance(c.row, RejectedRow):
                invalid[c.row.reason] += 1
            else:
                rid = c.row.result_id(coll, test_date)
                if rid in valid:
                    invalid["duplicate_row"] += 1  # the same row twice in one record: one message
                elif body_over_limit(c.row.to_work_item(coll, test_date, trace_id="0" * 36)):
                    invalid["body_too_large"] += 1  # the worker's parser would refuse it on every delivery
                else:
                    valid[rid] = c.row
        log.info(
            "discovery_page_fetched",
            test_date=test_date,
            page=page_no,
            rows=len(page),
            valid=len(valid),
            invalid=sum(invalid.values()),
            fetched_total=tally.fetched + len(page),
        )
        existing = existing_results(
            self.results, [(rid, (r.mongo_doc_id, test_date, r.record_type, r.subject_id)) for rid, r in valid.items()]
        )
        recent: set[str] = set()
        if mode == "sweep":
            since = self.clock() - dt.timedelta(seconds=self.s.sweep_recent_seconds)
            recent = self.enqueue_log.logged([rid for rid in valid if rid not in existing], since=since)
        to_send = [(rid, r) for rid, r in valid.items() if rid not in existing and rid not in recent]
        log.info(
            "discovery_candidates_resolved",
            test_date=test_date,
            page=page_no,
            candidates=len(valid),
            skipped_existing=len(existing),
            skipped_recent=len(recent),
            to_enqueue=len(to_send),
        )
        failed_ids: set[str] = set()
        sent: list[str] = []
        if run.dry_run:
            for rid, r in to_send:
                if len(tally.sample) < SAMPLE_ROWS:
                    tally.sample.append(
                        {
                            "mongo_doc_id": r.mongo_doc_id,
                            "record_type": r.record_type,
                            "subject_id": r.subject_id,
                            "source_updated_at": r.subject_created_at,
                            "result_id": rid,
                        }
                    )
        else:
            sent, failed_ids = self._send(run, page_no, to_send)
        # the watermark: past every decided row, up to (never past) the first unsent one
        new_wm = wm
        for c in page:
            if not isinstance(c.row, RejectedRow) and c.row.result_id(coll, test_date) in failed_ids:
                break
            if c.key is not None and (new_wm is None or c.key > new_wm):
                new_wm = c.key
        tally.pages += 1
        tally.fetched += len(page)
        tally.matched += sum(is_matching_row(c.row) for c in page)
        tally.discovered += len(valid)
        tally.skipped_existing += len(existing)
        tally.skipped_recent += len(recent)
        tally.invalid.update(invalid)
        tally.enqueued += len(sent)
        tally.failed += len(failed_ids)
        if run.dry_run:
            tally.would_enqueue += len(to_send)
            run.watermark = new_wm
            return False
        self.state.record_page(
            test_date,
            self.holder,
            {
                "pages": 1,
                "discovered": len(valid),
                "enqueued": len(sent),
                "skipped_existing": len(existing),
                "skipped_recent": len(recent),
                "failed": len(failed_ids),
            },
            invalid,
        )
        if mode != "sweep" and new_wm is not None and new_wm != wm:
            # sweep never moves the watermark: it re-reads rows behind it on purpose
            if self.state.advance_watermark(test_date, self.holder, new_wm):
                log.info("watermark_advanced", test_date=test_date, page=page_no, **watermark_doc(new_wm))
        self.state.renew(test_date, self.holder)
        if mode != "sweep":
            run.watermark = new_wm
        return bool(failed_ids)

    # ----- SQS -----
    def _send(self, run: _Run, page_no: int, rows: Sequence[tuple[str, SubjectRow]]) -> tuple[list[str], set[str]]:
        """Send rows in chunks of 10, up to ``DISCOVERY_SEND_CONCURRENCY`` chunks at a time;
        returns (result ids sent, result ids not sent).

        *decision*: chunks of one page go out concurrently. One ``SendMessageBatch`` costs a
        round trip (10-20 ms in a region), so one at a time caps discovery near 500-1000 rows/s,
        below the 1700 rows/s a 10^6-row test date needs to be enqueued in 10 minutes. The page is
        still decided as a whole once every chunk has an answer (the watermark rule is unchanged)
        and everything but the HTTP calls stays on the run's thread.
        """
        assert self.queue is not None
        test_date = run.test_date
        now = self.clock()
        sent: list[str] = []
        failed: set[str] = set()
        batches: list[tuple[list[dict[str, Any]], dict[str, tuple[str, SubjectRow]]]] = []
        for chunk in chunks(list(rows), MAX_BATCH_ENTRIES):
            entries = []
            by_entry: dict[str, tuple[str, SubjectRow]] = {}
            for i, (rid, row) in enumerate(chunk):
                item = row.to_work_item(self.s.mongo_source_collection, test_date, now=now)
                entry: dict[str, Any] = {"Id": str(i), "MessageBody": item.to_body()}
                if self.queue.is_fifo:
                    entry["MessageGroupId"] = self.s.sqs_fifo_group_id or row.mongo_doc_id
                    entry["MessageDeduplicationId"] = rid
                entries.append(entry)
                by_entry[str(i)] = (rid, row)
            batches.append((entries, by_entry))
        for n, (entries, _) in enumerate(batches, 1):
            log.info("enqueue_chunk_started", test_date=test_date, page=page_no, chunk=n, entries=len(entries))
        outcomes = self._sender.map(lambda b: self._send_patiently(test_date, page_no, b[0]), batches)
        for n, ((_entries, by_entry), outcome) in enumerate(zip(batches, outcomes), 1):
            sent += [by_entry[i][0] for i in outcome.succeeded if i in by_entry]
            for f in outcome.failed:
                rid, row = by_entry[f.id]
                failed.add(rid)
                run.tally.failure_codes[f.code or "unknown"] += 1
            log.info(
                "enqueue_chunk_completed",
                test_date=test_date,
                page=page_no,
                chunk=n,
                sent=len(outcome.succeeded),
                failed=len(outcome.failed),
            )
            if outcome.failed:
                log.error(
                    "enqueue_batch_failed",
                    test_date=test_date,
                    page=page_no,
                    chunk=n,
                    failed=len(outcome.failed),
                    codes=sorted({f.code for f in outcome.failed}),
                    rows=[
                        {
                            "mongo_doc_id": by_entry[f.id][1].mongo_doc_id,
                            "subject_id": by_entry[f.id][1].subject_id,
                            "code": f.code,
                            "sender_fault": f.sender_fault,
                        }
                        for f in outcome.failed
                    ],
                )
        sent_set = set(sent)
        self.enqueue_log.record(test_date, [(rid, r) for rid, r in rows if rid in sent_set], now)
        return sent, failed

    def _send_patiently(self, test_date: str, page_no: int, entries: list[dict[str, Any]]) -> BatchOutcome:
        """``send_batch`` under discovery's patience (:data:`anomaly_cli.retry.DISCOVERY_SEND`).

        The queue adapter's own budget (a few calls within seconds) is outlasted by an SQS that
        throttles or answers 5xx for minutes, so discovery hands the adapter a more patient policy
        instead of retrying around it (the two would multiply): the entries still unsent with no
        sender fault (and a whole call that failed as unavailable) are sent again after a backoff
        doubling from 0.2 s to 30 s, at least 5 times and then for up to
        ``DISCOVERY_SEND_PATIENCE_SECONDS`` of the run's clock. The lease is renewed at every wait
        (the run is alive, just waiting), the wait ends early on a stop signal, and the cursor may
        time out meanwhile (it is reopened after the watermark: :mod:`~anomaly_cli.discovery.cursor`).
        Only entries SQS did not take are resent, so the duplicates this can make are those of a
        call that failed after SQS stored part of it, which the result id (and a FIFO queue's
        deduplication id) absorb. When patience runs out the rows stay unsent: the page fails and
        the watermark stays before them (and when SQS never answered at all, its error ends the run).
        """
        assert self.queue is not None

        def clock() -> float:
            return self.clock().timestamp()

        def on_retry(attempt: int, seconds: float, error: BaseException) -> None:
            failures = error.failures if isinstance(error, Unsent) else None
            log.warning(
                "enqueue_backoff",
                test_date=test_date,
                page=page_no,
                attempt=attempt,
                unsent=len(failures) if failures is not None else len(entries),
                wait_s=round(seconds, 3),
                codes=sorted({f.code for f in failures}) if failures is not None else [errors.error_code(error)],
            )
            with self._state_lock:
                self.state.renew(test_date, self.holder)

        return self.queue.send_batch(
            entries,
            own=BatchRetry(
                retry.DISCOVERY_SEND,
                sleep=retry.interruptible(self.stop.wait),
                clock=clock,
                deadline=clock() + self.s.discovery_send_patience_seconds,
                on_retry=on_retry,
            ),
        )

    # ----- dry run: the time-zone trap -----
    def _nearby_documents(self, test_date: str) -> int:
        """Documents with a row of the subject within a day either side of ``test_date``."""
        with mongo_errors("nearby rows count"):
            return self.source.count_documents(
                first_match(test_date, self.s.tz, self.s.subject_name, widen=NEARBY), limit=1000
            )


def build_service(settings: Settings, db: Database, queue: SqsQueue | None, **kwargs: Any) -> DiscoveryService:
    """A service on database ``db`` with the configured collections and read preference."""
    from anomaly_cli.adapters.mongo import read_preference

    source = db[settings.mongo_source_collection].with_options(
        read_preference=read_preference(settings.mongo_read_preference)
    )
    state = StateRepository(
        db[settings.mongo_state_collection],
        pipeline_name=settings.pipeline_name,
        source_collection=settings.mongo_source_collection,
        clock=kwargs.get("clock", now_utc),
        lease_seconds=settings.discovery_lease_seconds,
    )
    return DiscoveryService(
        settings,
        source=source,
        state=state,
        results=db[settings.mongo_result_collection],
        enqueue_log=EnqueueLog(db[settings.mongo_enqueue_log_collection]),
        queue=queue,
        **kwargs,
    )
