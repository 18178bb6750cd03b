"""The crash matrix: kill a real worker at a stage boundary, let a new worker take over, check
the invariants. A plain module (no pytest fixtures) so ``bench/bench_crash_matrix.py`` runs the
very same scenario at full size.

How a crash is simulated. A worker process that dies runs no ``except``/``finally`` code that can
reach the outside world. Here every client the worker gets (the boto3 SQS client, the Mongo
database, the audio fetcher, the screen function) goes through one :class:`KillSwitch`. At the
crash point the switch trips and raises :class:`Crash`, a ``BaseException`` subclass the worker's
error handling does not catch (it catches ``Exception``); from then on every call of that worker
to SQS or Mongo raises ``Crash`` too, so its cleanup (release, ack, claim release, heartbeat)
never happens: exactly like ``kill -9``. Its threads are abandoned.

Crash points (the stage boundaries of the issue):
- ``after_receive``: ``ReceiveMessage`` returned messages (now invisible), then the worker dies;
- ``after_fetch``: an item's audio was downloaded;
- ``after_features``: an item was screened (features + inference) but nothing written;
- ``after_write``: a batch's results were written (``bulk_write`` on the results returned), before the ack;
- ``mid_delete``: ``DeleteMessageBatch`` deleted the first half of its entries, then the worker died.
Which occurrence of the point crashes is drawn from the seed, so crashes land in different batches.

Invariants checked (:class:`Verdict`):
- no message is acked without its durable result (checked at every delete call, before the delete);
- every item ends with exactly one result, or is still in the queue (none lost);
- a result that existed when the worker died is never overwritten (its ``processing`` block is
  unchanged) and its item is never screened again by the new worker.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from anomaly_cli.config import Settings

POINTS = ("after_receive", "after_fetch", "after_features", "after_write", "mid_delete")
RESULTS = "anomaly_detection_results"


def worker_settings(url: str, audio_base: str, **overrides: Any) -> Settings:
    """Worker settings of the fault tests and the crash matrix for the queue ``url`` and the audio
    server at ``audio_base``: small batches, no long poll, one fetch attempt; ``overrides`` win."""
    from anomaly_cli.config import load_settings

    values: dict[str, Any] = {
        "sqs_queue_url": url,
        "audio_url_allowlist": (audio_base,),
        "batch_size": 5,
        "max_concurrency": 4,
        "flush_seconds": 0.2,
        "sqs_wait_seconds": 0,
        "visibility_timeout_seconds": 30,
        "fetch_retries": 1,
        "throughput_log_seconds": 60,
        "mongo_uri": "mongomock://unused",
    }
    return load_settings({**values, **overrides}, environ={"AWS_REGION": "ap-south-1"}, env_file=None)


class Crash(BaseException):
    """The injected death: not an ``Exception``, so no handler in the worker catches it."""


class KillSwitch:
    """Trips once at the chosen occurrence of ``point``; afterwards every guarded call dies."""

    def __init__(self, point: str | None, occurrence: int):
        self.point = point
        self.occurrence = occurrence
        self.seen: Counter[str] = Counter()
        self.dead = threading.Event()
        self._lock = threading.Lock()

    def guard(self) -> None:
        """Called before every outside call: a dead worker reaches nothing."""
        if self.dead.is_set():
            raise Crash("worker is dead")

    def reached(self, point: str) -> bool:
        """Count one occurrence of ``point``; True (and tripped) when this one is the crash."""
        if point != self.point:
            return False
        with self._lock:
            self.seen[point] += 1
            if self.seen[point] == self.occurrence and not self.dead.is_set():
                self.dead.set()
                return True
        return False


class Ledger:
    """What the queue saw, across workers: receipts -> result ids, and every ack checked."""

    def __init__(self, results: Any):
        self.results = results  # the raw (unwrapped) results collection
        self.receipt_to_rid: dict[str, str] = {}
        self.acked: list[str] = []
        self.acked_without_result: list[str] = []
        self._lock = threading.Lock()

    def received(self, messages: list[dict[str, Any]]) -> None:
        from anomaly_cli.contract import parse_message

        for m in messages:
            try:
                rid = parse_message(m["Body"]).result_id
            except Exception:  # noqa: BLE001 - malformed bodies have no result id
                continue
            with self._lock:
                self.receipt_to_rid[m["ReceiptHandle"]] = rid

    def before_delete(self, receipts: list[str]) -> None:
        for r in receipts:
            rid = self.receipt_to_rid.get(r)
            if rid is None:
                continue
            with self._lock:
                self.acked.append(rid)
                if self.results.count_documents({"_id": rid}) != 1:
                    self.acked_without_result.append(rid)


class SqsProxy:
    """The boto3 SQS client of one worker, guarded by its switch and recorded in the ledger."""

    def __init__(self, client: Any, switch: KillSwitch, ledger: Ledger):
        self._c, self._s, self._l = client, switch, ledger

    def receive_message(self, **kw: Any) -> Any:
        self._s.guard()
        resp = self._c.receive_message(**kw)
        msgs = resp.get("Messages", [])
        self._l.received(msgs)
        if msgs and self._s.reached("after_receive"):
            raise Crash("after_receive")
        return resp

    def delete_message_batch(self, **kw: Any) -> Any:
        self._s.guard()
        entries = kw["Entries"]
        if len(entries) > 1 and self._s.reached("mid_delete"):
            half = entries[: len(entries) // 2]
            self._l.before_delete([e["ReceiptHandle"] for e in half])
            self._c.delete_message_batch(QueueUrl=kw["QueueUrl"], Entries=half)
            raise Crash("mid_delete")
        self._l.before_delete([e["ReceiptHandle"] for e in entries])
        return self._c.delete_message_batch(**kw)

    def delete_message(self, **kw: Any) -> Any:
        self._s.guard()
        self._l.before_delete([kw["ReceiptHandle"]])
        return self._c.delete_message(**kw)

    def __getattr__(self, name: str) -> Any:
        return guarded(getattr(self._c, name), self._s.guard)


def recorded(client: Any, ledger: Ledger) -> SqsProxy:
    """``client`` with every receive and delete recorded in ``ledger``, and no crash point."""
    return SqsProxy(client, KillSwitch(None, 0), ledger)


def guarded(attr: Any, before: Callable[[], None], after: Callable[[str], None] | None = None, name: str = "") -> Any:
    """``attr`` itself when it is not callable; else a function that calls ``before()``, then ``attr``,
    then ``after(name)`` (for a crash right after the call), and returns what ``attr`` returned."""
    if not callable(attr):
        return attr

    def call(*a: Any, **k: Any) -> Any:
        before()
        out = attr(*a, **k)
        if after is not None:
            after(name)
        return out

    return call


class CollectionProxy:
    """A Mongo collection whose every call is guarded; ``bulk_write`` on results may crash after."""

    def __init__(self, coll: Any, switch: KillSwitch, is_results: bool):
        self._c, self._s, self._results = coll, switch, is_results

    def __getattr__(self, name: str) -> Any:
        return guarded(getattr(self._c, name), self._s.guard, self._after, name)

    def _after(self, name: str) -> None:
        if self._results and name == "bulk_write" and self._s.reached("after_write"):
            raise Crash("after_write")


class DbProxy:
    """A database handing out guarded collections."""

    def __init__(self, db: Any, switch: KillSwitch):
        self._db, self._s = db, switch

    def __getitem__(self, name: str) -> CollectionProxy:
        return CollectionProxy(self._db[name], self._s, name == RESULTS)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class FetcherProxy:
    """The real fetcher; may die right after a download."""

    def __init__(self, fetcher: Any, switch: KillSwitch):
        self._f, self._s = fetcher, switch

    def fetch(self, url: str) -> Any:
        self._s.guard()
        out = self._f.fetch(url)
        if self._s.reached("after_fetch"):
            raise Crash("after_fetch")
        return out


class CountingScreen:
    """The real engine, counting screenings per recording hash; may die right after one."""

    def __init__(self, model: Any, switch: KillSwitch | None = None):
        self.model, self.switch = model, switch
        self.count: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> Any:
        from anomaly_cli.model.engine import screen_bytes

        if self.switch is not None:
            self.switch.guard()
        out = screen_bytes(data, self.model, max_duration_s=600.0)
        with self._lock:
            self.count[hashlib.sha256(data).hexdigest()] += 1
        if self.switch is not None and self.switch.reached("after_features"):
            raise Crash("after_features")
        return out

    @property
    def total(self) -> int:
        """Screenings so far, all recordings."""
        return sum(self.count.values())


@dataclass(frozen=True)
class AllWritten:
    """Stop policy for the takeover: every item has its result and nothing was held for a moment
    (otherwise only idling past the visibility timeout ends the run)."""

    results: Any
    items: int

    def should_stop(self, received: int, idle_seconds: float) -> bool:
        return idle_seconds >= 0.3 and self.results.count_documents({}) >= self.items

    def receive_budget(self, received: int) -> int | None:
        return None


@dataclass
class Verdict:
    """The outcome of one scenario and its invariant violations (empty lists = holds)."""

    point: str
    seed: int
    items: int
    crashed: bool
    results_at_crash: int = 0
    results: int = 0
    left_in_queue: int = 0
    acked: int = 0
    acked_without_result: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    overwritten: list[str] = field(default_factory=list)
    rescreened_after_result: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def holds(self) -> bool:
        return self.crashed and not (
            self.acked_without_result or self.missing or self.overwritten or self.rescreened_after_result
        )


def doomed_worker(
    settings: Settings, *, sqs: Any, db: Any, model: Any, switch: KillSwitch, ledger: Ledger, **kwargs: Any
) -> tuple[Any, CountingScreen]:
    """A real worker whose every outside call (SQS, Mongo, downloads, the screening) goes through
    ``switch``: once it trips, the worker reaches nothing more, as if its process died. Returns the
    worker and its screen; ``kwargs`` go to ``build_worker`` (policy, worker_id ...)."""
    from anomaly_cli.adapters.storage import Fetcher
    from anomaly_cli.worker.factory import build_worker

    screen = CountingScreen(model, switch)
    worker = build_worker(
        settings,
        sqs_client=SqsProxy(sqs, switch, ledger),
        db=DbProxy(db, switch),
        model_version=model.version,
        screen=screen,
        fetcher=FetcherProxy(Fetcher(settings), switch),
        **kwargs,
    )
    return worker, screen


def make_recordings(n: int, seed: int) -> list[bytes]:
    """``n`` distinct short WAV recordings (different synthetic children, so no two are duplicates)."""
    import numpy as np

    from anomaly_cli import synth
    from anomaly_cli.audio.formats import encode

    out = []
    for i in range(n):
        clip = synth.make_clip("normal", np.random.default_rng(seed * 100_003 + i), variant="plain", duration_s=2.0)
        out.append(encode(clip.samples, clip.sr, "wav"))
    return out


def shrink_claims(ttl_s: float) -> Callable[[], None]:
    """Claims live max(30 s, visibility) in production; with a 2 s visibility the takeover would
    wait 30 s per scenario, so the matrix sets their lifetime to the (test) visibility timeout.
    Returns the undo."""
    from anomaly_cli.worker import factory
    from anomaly_cli.worker.claims import Claims

    class ShortClaims(Claims):
        def __init__(self, collection: Any, worker_id: str, ttl_seconds: float):
            super().__init__(collection, worker_id, ttl_seconds)
            self.ttl = dt.timedelta(seconds=ttl_s)

    original = factory.Claims
    factory.Claims = ShortClaims  # type: ignore[misc]
    return lambda: setattr(factory, "Claims", original)


def run_scenario(
    point: str,
    seed: int,
    *,
    items: int,
    model: Any,
    sqs: Any,
    mongo: Any,
    server: Any,
    recordings: list[bytes] | None = None,
    visibility: int = 2,
    deadline_s: float = 120.0,
) -> Verdict:
    """One crash at ``point`` (occurrence drawn from ``seed``) and a takeover; returns the verdict.

    ``sqs`` is a boto3 client (moto), ``mongo`` a Mongo double client, ``server`` an audio HTTP server
    with ``put(path, bytes) -> url`` and ``base``.
    """
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown
    from tests.worker.conftest import make_item

    t0 = time.monotonic()
    rng = random.Random(seed)
    tag = f"{point}-{seed}-{uuid.uuid4().hex[:6]}"
    db = mongo[f"crash-{tag}"]
    results = db[RESULTS]
    url = sqs.create_queue(QueueName=f"crash-{tag}"[:80], Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    recs = recordings or make_recordings(items, seed)
    work = []
    for i in range(items):
        work.append(make_item(server.put(f"/{tag}/{i}.wav", recs[i % len(recs)]), n=i))
    for i in range(0, items, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(j), "MessageBody": w.to_body()} for j, w in enumerate(work[i : i + 10])]
        )
    rids = [w.result_id for w in work]
    settings = worker_settings(
        url,
        server.base,
        visibility_timeout_seconds=visibility,
        fetch_deadline_seconds=30.0,
        fetch_read_timeout_seconds=15.0,
        throughput_log_seconds=30,
    )
    ledger = Ledger(results)
    # the n-th occurrence crashes: receive/delete/write happen per batch, fetch/features per item
    per_item = point in ("after_fetch", "after_features")
    switch = KillSwitch(point, rng.randint(1, max(2, items // 2) if per_item else max(2, items // 10)))
    undo = shrink_claims(visibility)
    try:
        w1, doomed = doomed_worker(
            settings,
            sqs=sqs,
            db=db,
            model=model,
            switch=switch,
            ledger=ledger,
            policy=AnyOf((IdleShutdown(3.0),)),
            worker_id="doomed",
            defer_seconds=1,
        )
        died: list[BaseException] = []

        def doomed_run() -> None:
            try:
                w1.run()
            except Crash as e:  # the thread "process" dies here; nothing of it runs any more
                died.append(e)

        th = threading.Thread(target=doomed_run, daemon=True, name=f"doomed-{tag}")
        th.start()
        end = time.monotonic() + deadline_s
        while not switch.dead.is_set() and th.is_alive() and time.monotonic() < end:
            time.sleep(0.05)
        crashed = switch.dead.is_set()
        th.join(timeout=10)  # a dead worker's loop raises Crash on its next outside call
        at_crash = {d["_id"]: d["processing"] for d in results.find({}, {"processing": 1})}

        fresh = CountingScreen(model)
        while time.monotonic() < end:
            w2 = build_worker(
                settings,
                sqs_client=recorded(sqs, ledger),
                db=db,
                model_version=model.version,
                screen=fresh,
                policy=AnyOf((IdleShutdown(visibility + 2.0), AllWritten(results, items))),
                worker_id="takeover",
                defer_seconds=1,
            )
            w2.run()
            if results.count_documents({}) >= items and _queue_empty(sqs, url):
                break
    finally:
        undo()
    final = {d["_id"]: d for d in results.find({})}
    by_hash = {rid: hashlib.sha256(recs[i % len(recs)]).hexdigest() for i, rid in enumerate(rids)}
    v = Verdict(
        point=point,
        seed=seed,
        items=items,
        crashed=crashed,
        results_at_crash=len(at_crash),
        results=len(final),
        left_in_queue=_queue_total(sqs, url),
        acked=len(ledger.acked),
        acked_without_result=list(ledger.acked_without_result),
    )
    v.missing = [rid for rid in rids if rid not in final]
    v.overwritten = [rid for rid, proc in at_crash.items() if final.get(rid, {}).get("processing") != proc]
    v.rescreened_after_result = [rid for rid in at_crash if fresh.count[by_hash[rid]] > 0]
    v.seconds = round(time.monotonic() - t0, 2)
    sqs.delete_queue(QueueUrl=url)
    return v


def _queue_total(sqs: Any, url: str) -> int:
    from tests.conftest import queue_counts

    return sum(queue_counts(sqs, url).values())


def _queue_empty(sqs: Any, url: str) -> bool:
    return _queue_total(sqs, url) == 0
