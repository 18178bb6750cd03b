"""The figures behind ``anomaly results report``: one test date (or a range), by reason, place,
duplicate cluster and error code, plus coverage and the previous test date for comparison.

How the results are read (decided for the Mongo double *and* a real server):

- One streamed, index-served read per test-date range, not one scan per chart: a query on
  ``source.test_date`` (the prefix of the spec's result indexes) with a projection of the ten small
  fields the page needs, read in batches of :data:`BATCH` and folded into counters as it streams.
  Client memory is O(schools + duplicate links), never O(results). Every chart and table of the
  page comes out of that one pass.
- Why a streamed projection and not server-side ``$group`` stages: the embedded double
  (mongomock-ng) runs every ``aggregate`` by copying the *whole collection* into Python first
  (measured: ~1 ms per result document, so a handful of ``$group`` pipelines over 10^5 results took
  minutes and held every document in memory), while its ``find`` filters first and copies only the
  projected fields. On a real server the same query is an index range scan returning ~200 bytes
  per result; the fold costs the client ~5 us per result. BENCHMARKS.md has the figures.
  ``tests/realmongo`` explains every query the report sends on a real server: each is an index
  scan (``source.test_date``-prefixed indexes, ``_id`` for cluster members), none a collection scan.
- The only other reads are small and indexed: the previous test date (``source.test_date`` sorted,
  limit 1, then the same fold over that date) and the duplicate clusters, which come from
  :func:`anomaly_cli.results.clusters.load_clusters` (the one definition ``results inspect`` and
  ``results dedupe`` count with: flagged results through the reason index, originals by ``_id``).
- Counting rules are those of ``results inspect``: an anomaly is a result screened ok and flagged;
  a failed result is a processing failure, never also an anomaly; rates are over results screened
  ok. Reason counts are over results screened ok (a failed result's ``corrupt`` / ``unavailable``
  reason is reported as its error code instead).
- Rankings (districts, blocks, schools) only include places with at least ``min_count`` results
  screened ok (default :data:`~anomaly_cli.ops.results.DEFAULT_MIN_SCHOOL_COUNT`); the rest are
  counted as "below the minimum" and still appear in the CSV of every place.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import Database, ReadCollection
from anomaly_cli.config import Settings, validate_test_date
from anomaly_cli.contract import test_date_datetime
from anomaly_cli.errors import ConfigError
from anomaly_cli.ops.places import UNPARSED, parse_udise
from anomaly_cli.ops.results import DEFAULT_MIN_SCHOOL_COUNT
from anomaly_cli.ops.runbook import action_for
from anomaly_cli.results import document as D
from anomaly_cli.results.clusters import KIND_REUSE, DuplicateCluster, load_clusters

#: Documents per cursor batch (the driver fetches the next batch while the fold runs).
BATCH = 2000
#: Longest range of test dates one report covers (a year of monthly tests; bounds the time chart).
MAX_RANGE_DAYS = 366
#: Schools listed in the ranking (all places are in the CSV of each level).
TOP_SCHOOLS = 20
_PROJECTION = {
    "_id": 1,
    "source.test_date": 1,
    "source.udise": 1,
    "source.student_id": 1,
    "source.record_type": 1,
    "processing.status": 1,
    "processing.error.code": 1,
    "processing.model_version": 1,
    "inference.is_anomaly": 1,
    "inference.reason_codes": 1,
}


@dataclass(frozen=True)
class Counts:
    """Results of a slice: ``ok`` screened, ``failed`` processing failures, ``anomalies`` among ok."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    anomalies: int = 0

    @property
    def rate(self) -> float:
        """Anomalies among results screened ok (0.0 when none was)."""
        return self.anomalies / self.ok if self.ok else 0.0


@dataclass(frozen=True)
class PlaceRow:
    """One district, block or school with its counts (``key`` is the code prefix or the raw code)."""

    level: str  # district | block | school
    key: str
    label: str
    district: str
    block: str
    counts: Counts
    ranked: bool


@dataclass(frozen=True)
class ReasonRow:
    """One reason: how many results screened ok carry it, and its rate among them."""

    code: str
    count: int
    rate: float
    threshold: str
    previous_count: int | None = None
    previous_rate: float | None = None


@dataclass(frozen=True)
class FailureRow:
    """One processing error code, its count and the runbook's line for it."""

    code: str
    count: int
    action: str


@dataclass(frozen=True)
class DateRow:
    """One test date's counts and reason counts (the time chart and the comparison)."""

    test_date: str
    counts: Counts
    reasons: Mapping[str, int]


@dataclass(frozen=True)
class CoverageRow:
    """The ``anomaly coverage`` numbers of one test date (queues left out: the page needs no AWS)."""

    test_date: str
    eligible: int
    invalid_rows: int
    enqueued: int
    state_found: bool
    results_ok: int
    results_failed: int
    missing: int
    missing_enqueued: int
    missing_behind_watermark: int

    @property
    def missing_not_discovered(self) -> int:
        return self.missing - self.missing_enqueued - self.missing_behind_watermark


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows; built by :func:`build_report`, rendered by :mod:`anomaly_cli.report`."""

    date_from: str
    date_to: str
    source_collection: str
    generated_at: dt.datetime
    overall: Counts
    previous: DateRow | None
    by_date: tuple[DateRow, ...]
    reasons: tuple[ReasonRow, ...]
    districts: tuple[PlaceRow, ...]
    blocks: tuple[PlaceRow, ...]
    schools: tuple[PlaceRow, ...]
    unparsed_results: int
    min_count: int
    failures: tuple[FailureRow, ...]
    clusters: tuple[DuplicateCluster, ...]
    reuse: tuple[DuplicateCluster, ...]
    coverage: tuple[CoverageRow, ...] | None
    model_versions: Mapping[str, int]
    threshold_source: str
    record_types: Mapping[str, Counts] = field(default_factory=dict)

    @property
    def dates(self) -> tuple[str, ...]:
        return tuple(d.test_date for d in self.by_date)


# --- the fold ---------------------------------------------------------------------------------
class _Acc:
    __slots__ = ("anomalies", "failed", "ok", "total")

    def __init__(self) -> None:
        self.total = self.ok = self.failed = self.anomalies = 0

    def add(self, failed: bool, anomaly: bool) -> None:
        self.total += 1
        if failed:
            self.failed += 1
        else:
            self.ok += 1
            self.anomalies += anomaly

    def merge(self, other: _Acc) -> None:
        self.total += other.total
        self.ok += other.ok
        self.failed += other.failed
        self.anomalies += other.anomalies

    def freeze(self) -> Counts:
        return Counts(self.total, self.ok, self.failed, self.anomalies)


@dataclass
class Fold:
    """Counters of one streamed pass (public so tests and the bench can drive it directly)."""

    by_date: dict[str, _Acc] = field(default_factory=dict)
    reasons_by_date: dict[str, Counter[str]] = field(default_factory=dict)
    schools: dict[Any, _Acc] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    model_versions: Counter[str] = field(default_factory=Counter)
    record_types: dict[str, _Acc] = field(default_factory=dict)
    seen: int = 0

    def add(self, doc: Mapping[str, Any]) -> None:
        src = doc.get("source") or {}
        proc = doc.get("processing") or {}
        inf = doc.get("inference") or {}
        date = _date_str(src.get("test_date"))
        failed = proc.get("status") == D.STATUS_FAILED
        anomaly = bool(inf.get("is_anomaly")) and not failed
        self.by_date.setdefault(date, _Acc()).add(failed, anomaly)
        # keyed by the stored value; parsed once per distinct code when places are rolled up
        self.schools.setdefault(src.get("udise"), _Acc()).add(failed, anomaly)
        self.record_types.setdefault(str(src.get("record_type")), _Acc()).add(failed, anomaly)
        self.model_versions[str(proc.get("model_version"))] += 1
        if failed:
            self.failures[str((proc.get("error") or {}).get("code") or "unknown")] += 1
        else:
            codes = inf.get("reason_codes") or ()
            if codes:
                self.reasons_by_date.setdefault(date, Counter()).update(set(codes))
        self.seen += 1


def _date_str(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value)[:10]


def fold_results(
    collection: ReadCollection, date_from: str, date_to: str, *, on_progress: Callable[[int], None] | None = None
) -> Fold:
    """One streamed, index-served pass over the results of ``date_from``..``date_to`` (inclusive)."""
    fold = Fold()
    if date_from == date_to:  # an equality is what the index serves best (and the double evaluates fastest)
        match: dict[str, Any] = {D.F_TEST_DATE: test_date_datetime(date_from)}
    else:
        match = {D.F_TEST_DATE: {"$gte": test_date_datetime(date_from), "$lte": test_date_datetime(date_to)}}
    with mongo_errors("report read"):
        for doc in collection.find(match, _PROJECTION, batch_size=BATCH):
            fold.add(doc)
            if on_progress and fold.seen % 5000 == 0:
                on_progress(fold.seen)
    return fold


def previous_test_date(collection: ReadCollection, before: str) -> str | None:
    """The latest test date with results before ``before`` (indexed sort, one document: a batch of
    one, so the Mongo double, which sorts in Python, copies one document, not every earlier result)."""
    with mongo_errors("report previous date"):
        docs = list(
            collection.find({D.F_TEST_DATE: {"$lt": test_date_datetime(before)}}, {D.F_TEST_DATE: 1}, batch_size=1)
            .sort([(D.F_TEST_DATE, -1)])
            .limit(1)
        )
    return _date_str((docs[0].get("source") or {}).get("test_date")) if docs else None


# --- places -----------------------------------------------------------------------------------
def rollup_places(schools: Mapping[Any, _Acc], min_count: int) -> tuple[list[PlaceRow], list[PlaceRow], list[PlaceRow]]:
    """Districts, blocks and schools (every one, ranked first, highest rate first) from counts per stored code."""
    by_school: dict[str, _Acc] = {}
    for raw, acc in schools.items():  # "2725-1200-104" and "27251200104" are one school
        by_school.setdefault(parse_udise(raw).school, _Acc()).merge(acc)
    districts: dict[str, _Acc] = {}
    blocks: dict[str, tuple[str, _Acc]] = {}
    school_rows = []
    for key, acc in by_school.items():
        place = parse_udise(key if key != "(none)" else None)
        d_key = place.district if place.parsed else UNPARSED
        b_key = place.block if place.parsed else UNPARSED
        districts.setdefault(d_key, _Acc()).merge(acc)
        blocks.setdefault(b_key, (d_key, _Acc()))[1].merge(acc)
        c = acc.freeze()
        school_rows.append(
            PlaceRow("school", key, key, place.district_label, place.block_label, c, c.ok >= min_count and place.parsed)
        )
    d_rows = [
        PlaceRow("district", k, _label(k, 4), _label(k, 4), UNPARSED, a.freeze(), a.ok >= min_count and k != UNPARSED)
        for k, a in districts.items()
    ]
    b_rows = [
        PlaceRow("block", k, _label(k, 6), _label(d, 4), _label(k, 6), a.freeze(), a.ok >= min_count and k != UNPARSED)
        for k, (d, a) in blocks.items()
    ]
    return _ranked(d_rows), _ranked(b_rows), _ranked(school_rows)


def _label(key: str, width: int) -> str:
    if key == UNPARSED:
        return UNPARSED
    parts = [key[i : i + 2] for i in range(0, width, 2)]
    return "-".join(parts)


def _ranked(rows: list[PlaceRow]) -> list[PlaceRow]:
    return sorted(rows, key=lambda r: (not r.ranked, -r.counts.rate, -r.counts.ok, r.key))


# --- thresholds from the model's metadata -----------------------------------------------------
def reason_thresholds(meta: Mapping[str, Any] | None) -> dict[str, str]:
    """``code -> "duration_s < 2 or ..."`` from a model's metadata (rules and the outlier model)."""
    out: dict[str, str] = {}
    if not meta:
        return out
    for rule in meta.get("rules") or []:
        alts = [" and ".join(_condition(c) for c in conds) for conds in rule.get("when") or []]
        if rule.get("code") and alts:
            out[str(rule["code"])] = (
                alts[0] if len(alts) == 1 else " or ".join(f"({a})" if " and " in a else a for a in alts)
            )
    outlier = meta.get("outlier") or {}
    if outlier.get("threshold") is not None:
        out["outlier"] = f"isolation-forest score > {_num(outlier['threshold'])}"
    try:
        from anomaly_cli.audio.fingerprint import MATCH_BER

        out.setdefault("duplicate", f"same bytes, same decoded audio, or fingerprint bit error rate <= {MATCH_BER}")
    except ImportError:  # pragma: no cover - the module is part of the package
        pass
    out.setdefault("truncated", "decoded duration shorter than the file declares")
    return out


def _condition(c: Mapping[str, Any]) -> str:
    """``speech_ratio < 0.1``; an ``abs`` operator reads ``|dc_offset| > 0.03``."""
    feature, op = str(c.get("feature")), str(c.get("op"))
    if op.startswith("abs"):
        feature, op = f"|{feature}|", op[3:]
    return f"{feature} {op.strip()} {_num(c.get('threshold'))}"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def load_thresholds(model_dir: str, versions: Iterable[str]) -> tuple[dict[str, str], str]:
    """Thresholds of the most used model version found under ``model_dir``, and which one it was."""
    from anomaly_cli.errors import ModelError
    from anomaly_cli.model.artifacts import read_metadata, resolve

    wanted = list(versions)
    for version in wanted:
        try:
            return reason_thresholds(read_metadata(resolve(model_dir, version))), f"model {version}"
        except ModelError:
            continue
    try:  # none of the results' versions is installed: the installed default, said so
        meta = read_metadata(resolve(model_dir, None))
        return reason_thresholds(meta), f"model {meta.get('version')} (the results' {', '.join(wanted)} not installed)"
    except ModelError:
        return {}, "no model metadata found under MODEL_DIR"


# --- the report -------------------------------------------------------------------------------
def date_range(date_from: str, date_to: str | None) -> tuple[str, str]:
    """Validated (from, to); ``to`` defaults to ``from``, must not be earlier, spans at most a year."""
    validate_test_date(date_from, field_name="TEST_DATE")
    date_to = date_to or date_from
    validate_test_date(date_to, field_name="--to")
    a, b = dt.date.fromisoformat(date_from), dt.date.fromisoformat(date_to)
    if b < a:
        raise ConfigError(f"--to {date_to} is before {date_from}", field="--to")
    if (b - a).days > MAX_RANGE_DAYS:
        raise ConfigError(f"--to {date_to}: a report covers at most {MAX_RANGE_DAYS} days", field="--to")
    return date_from, date_to


def build_report(
    settings: Settings,
    db: Database,
    date_from: str,
    date_to: str | None = None,
    *,
    min_count: int = DEFAULT_MIN_SCHOOL_COUNT,
    with_coverage: bool = True,
    now: dt.datetime | None = None,
    on_progress: Callable[[str, int], None] | None = None,
) -> ReportData:
    """All the figures of the page for ``date_from``..``date_to``."""
    date_from, date_to = date_range(date_from, date_to)
    results = db[settings.mongo_result_collection]
    fold = fold_results(
        results, date_from, date_to, on_progress=(lambda n: on_progress("results", n)) if on_progress else None
    )
    prev_date = previous_test_date(results, date_from)
    prev_fold = fold_results(results, prev_date, prev_date) if prev_date else None
    previous = _date_rows(prev_fold)[0] if prev_fold and prev_fold.by_date else None

    total = _Acc()
    for acc in fold.by_date.values():
        total.merge(acc)
    overall = total.freeze()
    reason_totals: Counter[str] = Counter()
    for c in fold.reasons_by_date.values():
        reason_totals.update(c)
    versions = [v for v, _ in fold.model_versions.most_common() if v != "None"]
    thresholds, source = load_thresholds(settings.model_dir, versions or [settings.model_version or ""])
    reasons = tuple(
        ReasonRow(
            code,
            n,
            n / overall.ok if overall.ok else 0.0,
            thresholds.get(code, ""),
            previous.reasons.get(code, 0) if previous else None,
            (previous.reasons.get(code, 0) / previous.counts.ok if previous.counts.ok else 0.0) if previous else None,
        )
        for code, n in sorted(reason_totals.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    districts, blocks, schools = rollup_places(fold.schools, min_count)
    unparsed = sum(r.counts.total for r in schools if r.district == UNPARSED)
    failures = tuple(
        FailureRow(code, n, action_for(code))
        for code, n in sorted(fold.failures.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    # the ONE definition of a cluster (results/clusters.py), from the stored flags, per test date
    clusters = tuple(c for d in sorted(fold.by_date) for c in load_clusters(results, d))
    reuse = tuple(c for d in sorted(fold.by_date) for c in load_clusters(results, d, kind=KIND_REUSE))
    coverage_rows = None
    if with_coverage:
        coverage_rows = tuple(_coverage(settings, db, d, on_progress) for d in _days(date_from, date_to, fold))
    by_date = tuple(_date_rows(fold))
    return ReportData(
        date_from=date_from,
        date_to=date_to,
        source_collection=settings.mongo_source_collection,
        generated_at=now or dt.datetime.now(dt.UTC),
        overall=overall,
        previous=previous,
        by_date=((previous,) if previous else ()) + by_date,
        reasons=reasons,
        districts=tuple(districts),
        blocks=tuple(blocks),
        schools=tuple(schools),
        unparsed_results=unparsed,
        min_count=min_count,
        failures=failures,
        clusters=clusters,
        reuse=reuse,
        coverage=coverage_rows,
        model_versions=dict(fold.model_versions),
        threshold_source=source,
        record_types={k: v.freeze() for k, v in sorted(fold.record_types.items())},
    )


def _date_rows(fold: Fold) -> list[DateRow]:
    return [
        DateRow(d, acc.freeze(), dict(fold.reasons_by_date.get(d, Counter())))
        for d, acc in sorted(fold.by_date.items())
    ]


def _days(date_from: str, date_to: str, fold: Fold) -> list[str]:
    """Coverage dates: the range's dates that have results, or ``date_from`` when none has."""
    return sorted(fold.by_date) or [date_from]


def _coverage(
    settings: Settings, db: Database, test_date: str, on_progress: Callable[[str, int], None] | None
) -> CoverageRow:
    from anomaly_cli.ops.coverage import coverage

    r = coverage(
        settings, db, test_date, limit=0, on_progress=(lambda n: on_progress("source", n)) if on_progress else None
    )
    return CoverageRow(
        test_date=test_date,
        eligible=r.eligible,
        invalid_rows=r.invalid_rows,
        enqueued=r.enqueued,
        state_found=r.state_found,
        results_ok=r.results_ok,
        results_failed=r.results_failed,
        missing=r.missing,
        missing_enqueued=r.missing_enqueued,
        missing_behind_watermark=r.missing_behind_watermark,
    )
