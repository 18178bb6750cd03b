"""One batch: source re-check, existing-result check, screening, one bulk write, duplicates,
backlink, then ack / retry visibility. Processing never raises for a message: every message
ends as an :class:`~anomaly_cli.worker.outcome.Outcome`.

Order matters for at-least-once delivery: a message is deleted only after its result is durable
(the bulk write returned); a failed write leaves every message of the batch unacked.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from concurrent.futures import BrokenExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from anomaly_cli import errors
from anomaly_cli.adapters.protocols import WorkQueue
from anomaly_cli.contract import WorkItem
from anomaly_cli.log import get_logger
from anomaly_cli.results import document as D
from anomaly_cli.results.lookup import existing_results
from anomaly_cli.results.repository import ResultRepository
from anomaly_cli.worker import outcome as O
from anomaly_cli.worker.claims import Claims
from anomaly_cli.worker.heartbeat import Held, HeldMessages
from anomaly_cli.worker.pool import ItemScreening, ScreenPool
from anomaly_cli.worker.source_guard import SourceGoneBreaker
from anomaly_cli.worker.stats import WorkerStats

log = get_logger("worker")
#: Visibility of a message whose twin is being screened right now (it returns and finds the result).
DEFER_SECONDS = 15
SourceCheck = Callable[[Sequence[WorkItem]], Mapping[str, bool]]


class AccessDeniedBreaker:
    """Counts access-denied fetches in a row; at ``limit`` the worker stops (credentials/policy)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._lock = threading.Lock()
        self.run = 0
        self.tripped = False

    def observe(self, denied: bool) -> bool:
        """Record one fetch; True when this one must not become a terminal result."""
        with self._lock:
            if self.tripped:
                return denied
            self.run = self.run + 1 if denied else 0
            if self.run >= self.limit:
                self.tripped = True
                return True
            return False


@dataclass
class BatchReport:
    """Outcomes of one batch plus loop-level signals (Mongo down, fatal errors)."""

    outcomes: list[O.Outcome] = field(default_factory=list)
    mongo_unavailable: bool = False
    fatal: BaseException | None = None


class BatchProcessor:
    """Processes batches of held messages (one call per batch, from a batch thread)."""

    def __init__(
        self,
        *,
        queue: WorkQueue,
        repo: ResultRepository,
        pool: ScreenPool,
        source_check: SourceCheck,
        held: HeldMessages,
        stats: WorkerStats,
        breaker: AccessDeniedBreaker,
        worker_id: str,
        backlink: Callable[[list[tuple[WorkItem, dict[str, Any]]]], None] | None = None,
        claims: Claims | None = None,
        defer_seconds: int = DEFER_SECONDS,
        source_gone: SourceGoneBreaker | None = None,
    ):
        self.queue = queue
        self.repo = repo
        self.pool = pool
        self.source_check = source_check
        self.held = held
        self.stats = stats
        self.breaker = breaker
        self.worker_id = worker_id
        self.backlink = backlink
        self.claims = claims
        self.defer_seconds = defer_seconds
        self.source_gone = source_gone or SourceGoneBreaker(window=200, threshold=0.95)

    def process(self, batch: list[Held], batch_no: int = 0) -> BatchReport:
        """Process ``batch`` end to end, ack / retry its messages; never raises for a message."""
        t0 = time.monotonic()
        report = BatchReport()
        log.info("batch_processing_started", batch=batch_no, size=len(batch))
        try:
            self._process(batch, batch_no, report)
        except errors.MongoUnavailable as e:
            report.mongo_unavailable = True
            done = {o.message_id for o in report.outcomes}
            report.outcomes += [
                O.Outcome(h.message_id, O.TRANSIENT, h.item.result_id, stage="mongo", error_code=e.code, detail=str(e))
                for h in batch
                if h.message_id not in done
            ]
        except Exception as e:  # a bug or refused write must not lose messages
            log.error("batch_failed", exc_info=e, batch=batch_no, error=errors.error_code(e))
            done = {o.message_id for o in report.outcomes}
            rest = [h for h in batch if h.message_id not in done]
            if len(rest) > 1:
                # One message may be what breaks the batch (a row no query can hold, a document
                # no write accepts): process the rest one by one, so it alone carries the failure.
                log.warning("batch_isolating", batch=batch_no, count=len(rest), error=errors.error_code(e))
                for i, h in enumerate(rest):
                    if not self._process_alone(h, rest[i + 1 :], batch_no, report):
                        break
            else:
                report.outcomes += [_failed(h, "batch", e) for h in rest]
        self._settle(batch, report.outcomes, batch_no)
        self.stats.record(report.outcomes)
        kinds: dict[str, int] = {}
        for o in report.outcomes:
            kinds[o.kind] = kinds.get(o.kind, 0) + 1
        log.info(
            "batch_processed",
            batch=batch_no,
            size=len(batch),
            outcomes=kinds,
            duration_ms=round((time.monotonic() - t0) * 1000, 1),
        )
        return report

    def _process_alone(self, h: Held, after: list[Held], batch_no: int, report: BatchReport) -> bool:
        """Process one message of a failed batch on its own; False when MongoDB went away meanwhile."""
        one = BatchReport()
        try:
            self._process([h], batch_no, one)
        except errors.MongoUnavailable as e:
            report.mongo_unavailable = True
            done = {o.message_id for o in one.outcomes}
            report.outcomes += one.outcomes + [_failed(x, "mongo", e) for x in [h, *after] if x.message_id not in done]
            return False
        except Exception as e:  # this message is the poison: its own transient outcome
            log.error("item_failed", exc_info=e, batch=batch_no, message_id=h.message_id, error=errors.error_code(e))
            report.outcomes += one.outcomes or [_failed(h, "batch", e)]
            return True
        report.outcomes += one.outcomes
        return True

    # ----- the steps ---------------------------------------------------------------------------
    def _process(self, batch: list[Held], batch_no: int, report: BatchReport) -> None:
        out = report.outcomes
        sourced = [h.item for h in batch if not h.item.is_adhoc]
        present = self.source_check(sourced) if sourced else {}
        pending: list[Held] = []
        for h in batch:
            gone = not h.item.is_adhoc and not present.get(h.item.result_id, False)
            if not h.item.is_adhoc and self.source_gone.observe(gone):
                out.append(_released(h, "source", "source_gone_drain", "source-gone breaker open"))
            elif gone:
                out.append(O.Outcome(h.message_id, O.SOURCE_GONE, h.item.result_id, stage="source"))
                log.debug("item_skipped", message_id=h.message_id, result_id=h.item.result_id, reason="source_gone")
            else:
                pending.append(h)
        pairs = [(h.item.result_id, h.item.natural_key) for h in pending if not h.rescreen]
        existing = existing_results(self.repo.collection, pairs) if pairs else set()
        log.info("existing_results_checked", batch=batch_no, checked=len(pairs), existing=len(existing))
        eligible: list[Held] = []
        for h in pending:
            if h.item.result_id in existing:
                out.append(O.Outcome(h.message_id, O.RESULT_EXISTS, h.item.result_id, stage="existing"))
            else:
                eligible.append(h)
        log.info(
            "eligible_keys_resolved",
            batch=batch_no,
            eligible=len(eligible),
            source_gone=sum(o.kind == O.SOURCE_GONE for o in out),
            result_exists=sum(o.kind == O.RESULT_EXISTS for o in out),
        )
        eligible, twins = _split_twins(eligible)
        won: set[str] = set()
        try:
            if eligible and self.claims is not None:
                won = self.claims.claim([h.item.result_id for h in eligible])
                for h in [h for h in eligible if h.item.result_id not in won]:
                    out.append(
                        O.Outcome(
                            h.message_id, O.DEFERRED, h.item.result_id, stage="claim", error_code="claimed_elsewhere"
                        )
                    )
                eligible = [h for h in eligible if h.item.result_id in won]
            if eligible:
                self._screen(eligible, batch_no, report)
        finally:
            if won:
                try:
                    self.claims.release(sorted(won))  # type: ignore[union-attr]
                except Exception as e:  # noqa: BLE001 - claims expire on their own
                    log.warning("claim_release_failed", batch=batch_no, error=errors.error_code(e))
            _settle_twins(twins, out)

    def _screen(self, eligible: list[Held], batch_no: int, report: BatchReport) -> None:
        out = report.outcomes
        log.info("inference_batch_started", batch=batch_no, count=len(eligible))
        futures = [(h, self.pool.submit(h.item.audio_s3_url)) for h in eligible]
        docs: list[tuple[Held, dict[str, Any], O.Outcome]] = []
        query_keys: dict[str, list[int]] = {}  # duplicate lookup keys: used after the write, never stored
        featured = 0
        for h, fut in futures:
            try:
                res = fut.result()
                self.stats.observe_item(res)
                o, doc = self._item(h, res, report)
            except Exception as e:  # one item's failure is that item's outcome
                log.error(
                    "item_failed", exc_info=e, batch=batch_no, message_id=h.message_id, error=errors.error_code(e)
                )
                out.append(_failed(h, "screen", e))
                continue
            if doc is None:
                out.append(o)
                continue
            featured += bool(res.screening and res.screening.features)
            docs.append((h, doc, o))
            if res.screening is not None and res.screening.audio.get("fp_query"):
                query_keys[h.item.result_id] = res.screening.audio["fp_query"]
        log.info("feature_build_completed", batch=batch_no, with_features=featured, screened=len(docs))
        log.info(
            "inference_batch_completed",
            batch=batch_no,
            screened=len(docs),
            anomalies=sum(o.is_anomaly for _, _, o in docs),
            failed_terminal=sum(o.kind == O.FAILED_TERMINAL for _, _, o in docs),
        )
        if docs:
            self._write(docs, batch_no, out, query_keys)

    def _item(self, h: Held, res: ItemScreening, report: BatchReport) -> tuple[O.Outcome, dict[str, Any] | None]:
        """The outcome of one screened item, and its result document when one is to be written."""
        latency = time.monotonic() - h.received_at
        if res.fetch_error is not None or res.fetched:
            denied = isinstance(res.fetch_error, errors.AccessDenied)
            if self.breaker.observe(denied):
                return _released(h, "fetch", "access_denied", "access-denied breaker open"), None
        if res.screening is None:
            err = res.error
            if isinstance(err, BrokenExecutor):
                report.fatal = err
            code = errors.error_code(err) if err else "internal_error"
            log.warning(
                "item_failed_pre_inference",
                message_id=h.message_id,
                result_id=h.item.result_id,
                stage=res.stage,
                error=code,
                reason=str(err)[:300],
                attempt=h.receive_count,
                terminal=False,
            )
            return O.Outcome(
                h.message_id, O.TRANSIENT, h.item.result_id, stage=res.stage, error_code=code, detail=str(err)[:300]
            ), None
        s = res.screening
        doc = D.build_result(
            h.item,
            s,
            worker_id=self.worker_id,
            attempt=h.receive_count,
            now=dt.datetime.now(dt.timezone.utc),
            fetch_ms=res.fetch_ms,
            total_ms=res.total_ms,
        )
        if s.status != D.STATUS_OK:
            failure = s.error or {}
            log.warning(
                "item_failed_pre_inference",
                message_id=h.message_id,
                result_id=h.item.result_id,
                stage=failure.get("stage", ""),
                error=failure.get("code", ""),
                reason=str(failure.get("message", ""))[:300],
                attempt=h.receive_count,
                terminal=True,
            )
            return O.Outcome(
                h.message_id,
                O.FAILED_TERMINAL,
                h.item.result_id,
                stage=failure.get("stage", ""),
                error_code=failure.get("code", ""),
                is_anomaly=True,
                latency_s=latency,
            ), doc
        return O.Outcome(h.message_id, O.SUCCEEDED, h.item.result_id, is_anomaly=s.is_anomaly, latency_s=latency), doc

    def _write(
        self,
        docs: list[tuple[Held, dict[str, Any], O.Outcome]],
        batch_no: int,
        out: list[O.Outcome],
        query_keys: dict[str, list[int]] | None = None,
    ) -> None:
        fresh = [(h, d, o) for h, d, o in docs if not h.rescreen]
        again = [(h, d, o) for h, d, o in docs if h.rescreen]
        t_write = time.monotonic()
        try:
            ins = self.repo.insert_if_absent([d for _, d, _ in fresh])
            rep = self.repo.replace([d for _, d, _ in again])
            self.stats.observe_write(time.monotonic() - t_write)
        except errors.MongoUnavailable:
            raise
        except errors.AnomalyError as e:
            log.error("results_upsert_failed", batch=batch_no, error=e.code, reason=str(e)[:300])
            out += [
                O.Outcome(
                    h.message_id, O.TRANSIENT, h.item.result_id, stage="upsert", error_code=e.code, detail=str(e)[:300]
                )
                for h, _, _ in docs
            ]
            return
        log.info(
            "results_upserted",
            batch=batch_no,
            inserted=len(ins.inserted),
            existed=len(ins.existed),
            replaced=len(rep.replaced) + len(rep.inserted),
        )
        existed = set(ins.existed)
        written = []
        for h, d, o in docs:
            if d["_id"] in existed:  # a concurrent twin won the race: first write wins
                out.append(O.Outcome(h.message_id, O.RESULT_EXISTS, h.item.result_id, stage="upsert"))
            else:
                out.append(o)
                written.append((h, d))
        self._after_write(written, batch_no, query_keys)

    def _after_write(
        self, written: list[tuple[Held, dict[str, Any]]], batch_no: int, query_keys: dict[str, list[int]] | None = None
    ) -> None:
        """Duplicate flags and backlinks: both best effort, neither undoes a result."""
        try:
            flagged = self.repo.check_duplicates([d for _, d in written], query_keys)
            if flagged:
                self.stats.add("duplicates_flagged", len(flagged))
                log.info("duplicates_flagged", batch=batch_no, result_ids=flagged)
        except Exception as e:  # noqa: BLE001 - the sweep (anomaly results dedupe) catches what is missed
            log.warning("duplicate_check_failed", batch=batch_no, error=errors.error_code(e), reason=str(e)[:300])
        if self.backlink is not None:
            sourced = [(h.item, d) for h, d in written if not h.item.is_adhoc]
            if sourced:
                self.backlink(sourced)

    # ----- settle with SQS -----------------------------------------------------------------------
    def _settle(self, batch: list[Held], outcomes: list[O.Outcome], batch_no: int) -> None:
        by_id = {h.message_id: h for h in batch}
        acks = [(o.message_id, by_id[o.message_id].receipt) for o in outcomes if o.acked]
        retry = [
            (o.message_id, by_id[o.message_id].receipt, O.retry_visibility(by_id[o.message_id].receive_count))
            for o in outcomes
            if o.kind == O.TRANSIENT
        ]
        retry += [
            (o.message_id, by_id[o.message_id].receipt, self.defer_seconds) for o in outcomes if o.kind == O.DEFERRED
        ]
        release = [(o.message_id, by_id[o.message_id].receipt, 0) for o in outcomes if o.kind == O.RELEASED]
        if acks:
            ack_messages(self.queue, acks, self.stats, batch_no)
        if retry or release:
            try:
                res = self.queue.change_visibility_batch(retry + release)
                for f in res.failed:
                    log.warning("visibility_change_failed", message_id=f.id, error=f.code, reason=f.message[:200])
            except errors.AnomalyError as e:
                log.warning("visibility_change_failed", batch=batch_no, error=e.code, reason=str(e)[:200])
        self.held.discard([h.message_id for h in batch])


def _released(h: Held, stage: str, code: str, detail: str) -> O.Outcome:
    """``h`` handed back to the queue unscreened (a breaker is open: another worker, or this one
    later, screens it)."""
    return O.Outcome(h.message_id, O.RELEASED, h.item.result_id, stage=stage, error_code=code, detail=detail)


def _failed(h: Held, stage: str, e: BaseException) -> O.Outcome:
    """A transient outcome for ``h`` from an exception (unknown ones are retried: errors.is_transient)."""
    return O.Outcome(
        h.message_id, O.TRANSIENT, h.item.result_id, stage=stage, error_code=errors.error_code(e), detail=str(e)[:300]
    )


def _split_twins(held: list[Held]) -> tuple[list[Held], list[tuple[Held, Held]]]:
    """Keep the first message of each result id; pair every later twin with it."""
    first: dict[str, Held] = {}
    twins: list[tuple[Held, Held]] = []
    for h in held:
        rep = first.setdefault(h.item.result_id, h)
        if rep is not h:
            twins.append((h, rep))
    return list(first.values()), twins


def _settle_twins(twins: list[tuple[Held, Held]], out: list[O.Outcome]) -> None:
    """A twin shares its representative's fate: acked as ``result_exists`` once the result is written."""
    by_msg = {o.message_id: o for o in out}
    for twin, rep in twins:
        rep_out = by_msg.get(rep.message_id)
        if rep_out is not None and rep_out.kind in (O.SUCCEEDED, O.FAILED_TERMINAL, O.RESULT_EXISTS):
            out.append(O.Outcome(twin.message_id, O.RESULT_EXISTS, twin.item.result_id, stage="twin"))
        elif rep_out is not None:
            out.append(
                O.Outcome(
                    twin.message_id,
                    rep_out.kind,
                    twin.item.result_id,
                    stage=rep_out.stage,
                    error_code=rep_out.error_code,
                )
            )
        # no outcome yet (an exception is propagating): process() marks it transient


def ack_messages(
    queue: WorkQueue,
    acks: list[tuple[str, str]],
    stats: WorkerStats,
    batch_no: int = 0,
) -> list[str]:
    """Delete ``(id, receipt)`` pairs: one ``delete_batch``, retried by the queue adapter only.

    The adapter retries a throttled call and the entries ``Failed[]`` names under one budget
    (:data:`anomaly_cli.retry.SQS_BATCH`: at most 5 calls per chunk of 10); this layer adds no
    attempts of its own, so an ack of ``k`` messages costs at most ``5 x ceil(k / 10)`` calls.
    Returns the ids still not deleted (logged as ``ack_failed``; their results are durable, so a
    redelivery is only counted as ``result_exists``).
    """
    try:
        res = queue.delete_batch(acks)
    except errors.AnomalyError as e:
        log.warning("ack_failed", batch=batch_no, count=len(acks), error=e.code, reason=str(e)[:200])
        failed_ids = [i for i, _ in acks]
        deleted = 0
    else:
        deleted = len(res.succeeded)
        failed_ids = [f.id for f in res.failed]
        if res.failed:
            log.warning(
                "ack_failed", batch=batch_no, count=len(res.failed), errors=sorted({f.code for f in res.failed})
            )
    stats.add("acked", deleted)
    if failed_ids:
        stats.add("ack_failed", len(failed_ids))
    log.info("processed_items_acked", batch=batch_no, acked=deleted, failed=len(failed_ids))
    return failed_ids
