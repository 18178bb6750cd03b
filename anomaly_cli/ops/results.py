"""Read side of the results collection for operators: ``inspect`` (aggregations on indexed
fields, never every document pulled into Python), ``export`` (a streamed cursor, any size) and
``show`` (one result explained).

Every query starts with ``{"source.test_date": <midnight UTC>}``, the prefix of the spec's
indexes. Recording URLs are printed through :func:`~anomaly_cli.redact.redact_url`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from anomaly_cli.adapters.mongo import mongo_errors
from anomaly_cli.adapters.protocols import ReadCollection, S3Client
from anomaly_cli.config import validate_test_date
from anomaly_cli.contract import test_date_datetime
from anomaly_cli.errors import ConfigError, ExportFailed
from anomaly_cli.redact import redact_url
from anomaly_cli.results import clusters as C
from anomaly_cli.results import document as D

#: Schools with fewer screened recordings than this are not ranked (a 1-of-1 "100 %" is noise).
DEFAULT_MIN_SCHOOL_COUNT = 10
EXPORT_FORMATS = (".csv", ".jsonl")
CSV_COLUMNS = (
    "_id",
    "test_date",
    "mongo_doc_id",
    "record_type",
    "subject_id",
    "student_id",
    "udise",
    "audio_url",
    "status",
    "error_code",
    "is_anomaly",
    "anomaly_score",
    "reason_codes",
    "duplicate_of",
    "model_version",
    "processed_at",
    "duration_s",
    "reuse_of",
)


@dataclass(frozen=True)
class Filters:
    """``inspect`` / ``export`` filters; :meth:`match` is the ``$match`` they make."""

    test_date: str
    anomalies_only: bool = False
    reason: str | None = None
    udise: str | None = None

    def match(self) -> dict[str, Any]:
        """The ``$match`` (validates the date first)."""
        validate_test_date(self.test_date, field_name="TEST_DATE")
        m: dict[str, Any] = {D.F_TEST_DATE: test_date_datetime(self.test_date)}
        if self.anomalies_only:
            m[D.F_IS_ANOMALY] = True
        if self.reason:
            m[D.F_REASON_CODES] = self.reason
        if self.udise:
            m["source.udise"] = self.udise
        return m


@dataclass
class InspectReport:
    """The ``results inspect`` summary of one test date."""

    test_date: str
    filters: dict[str, Any]
    total: int = 0
    ok: int = 0
    failed: int = 0
    anomalies: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    by_record_type: dict[str, dict[str, int]] = field(default_factory=dict)
    failures_by_code: dict[str, int] = field(default_factory=dict)
    top_schools: list[dict[str, Any]] = field(default_factory=list)
    duplicate_clusters: int = 0  # = duplicates.clusters (kept for --json readers)
    duplicates_flagged: int = 0  # = duplicates.copies
    duplicates: C.ClusterSummary = field(default_factory=C.ClusterSummary)
    reuse: C.ClusterSummary = field(default_factory=C.ClusterSummary)
    processed_from: dt.datetime | None = None
    processed_to: dt.datetime | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def anomaly_rate(self) -> float:
        """Anomalies among results screened ok (failures are not in the denominator)."""
        return self.anomalies / self.ok if self.ok else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json``."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["duplicates"], d["reuse"] = asdict(self.duplicates), asdict(self.reuse)
        d["anomaly_rate"] = round(self.anomaly_rate, 4)
        return d


def _agg(collection: ReadCollection, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with mongo_errors("results aggregation"):
        return list(collection.aggregate(pipeline))


def inspect(
    collection: ReadCollection, filters: Filters, *, limit: int = 10, min_school_count: int = DEFAULT_MIN_SCHOOL_COUNT
) -> InspectReport:
    """Summarise one test date with a handful of aggregations."""
    match = filters.match()
    r = InspectReport(
        filters.test_date, {"anomalies_only": filters.anomalies_only, "reason": filters.reason, "udise": filters.udise}
    )
    # One definition everywhere: an anomaly is a recording screened ok and flagged; a failed
    # result (could not be fetched / decoded) is counted as a failure, never also as an anomaly.
    anomaly = {
        "$cond": [
            {"$and": [{"$eq": ["$inference.is_anomaly", True]}, {"$ne": ["$processing.status", D.STATUS_FAILED]}]},
            1,
            0,
        ]
    }
    failed = {"$cond": [{"$eq": ["$processing.status", D.STATUS_FAILED]}, 1, 0]}
    totals = _agg(
        collection,
        [
            {"$match": match},
            {
                "$group": {
                    "_id": None,
                    "total": {"$sum": 1},
                    "anomalies": {"$sum": anomaly},
                    "failed": {"$sum": failed},
                    "first": {"$min": "$processing.processed_at"},
                    "last": {"$max": "$processing.processed_at"},
                }
            },
        ],
    )
    if not totals:
        return r
    t = totals[0]
    r.total, r.anomalies, r.failed = t["total"], t["anomalies"], t["failed"]
    r.ok = r.total - r.failed
    r.processed_from, r.processed_to = t["first"], t["last"]
    for row in _agg(
        collection,
        [
            {"$match": match},
            {"$unwind": "$inference.reason_codes"},
            {"$group": {"_id": "$inference.reason_codes", "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id": 1}},
        ],
    ):
        r.by_reason[str(row["_id"])] = row["n"]
    for row in _agg(
        collection,
        [
            {"$match": match},
            {
                "$group": {
                    "_id": "$source.record_type",
                    "total": {"$sum": 1},
                    "anomalies": {"$sum": anomaly},
                    "failed": {"$sum": failed},
                }
            },
            {"$sort": {"_id": 1}},
        ],
    ):
        r.by_record_type[str(row["_id"])] = {
            "total": row["total"],
            "anomalies": row["anomalies"],
            "failed": row["failed"],
        }
    for row in _agg(
        collection,
        [
            {"$match": {**match, D.F_STATUS: D.STATUS_FAILED}},
            {"$group": {"_id": "$processing.error.code", "n": {"$sum": 1}}},
            {"$sort": {"n": -1, "_id": 1}},
        ],
    ):
        r.failures_by_code[str(row["_id"])] = row["n"]
    schools = _agg(
        collection,
        [
            {"$match": {**match, D.F_STATUS: D.STATUS_OK}},
            {"$group": {"_id": "$source.udise", "total": {"$sum": 1}, "anomalies": {"$sum": anomaly}}},
            {"$match": {"total": {"$gte": min_school_count}, "_id": {"$ne": None}}},
            {"$project": {"total": 1, "anomalies": 1, "rate": {"$divide": ["$anomalies", "$total"]}}},
            {"$sort": {"rate": -1, "total": -1, "_id": 1}},
            {"$limit": limit},
        ],
    )
    r.top_schools = [
        {"udise": s["_id"], "total": s["total"], "anomalies": s["anomalies"], "rate": round(s["rate"], 4)}
        for s in schools
    ]
    # one definition of a cluster (results/clusters.py), shared with dedupe and the report
    dup = [c for c in C.load_clusters(collection, filters.test_date) if _in_school(c, filters.udise)]
    reuse = [
        c for c in C.load_clusters(collection, filters.test_date, kind=C.KIND_REUSE) if _in_school(c, filters.udise)
    ]
    r.duplicates = C.ClusterSummary.of(dup)
    r.reuse = C.ClusterSummary.of(reuse)
    r.duplicate_clusters, r.duplicates_flagged = r.duplicates.clusters, r.duplicates.copies
    with mongo_errors("results listing"):
        cursor = collection.find(match, _ROW_PROJECTION).sort([(D.F_PROCESSED_AT, -1)]).limit(limit)
        r.rows = [flat_row(d) for d in cursor]
    return r


def _in_school(cluster: C.DuplicateCluster, udise: str | None) -> bool:
    return udise is None or udise in cluster.schools


#: error codes meaning there is no recording to listen to at that URL (no listening link for those)
FETCH_FAILURE_CODES = frozenset({"not_found", "url_not_allowed", "invalid_url"})
_ROW_PROJECTION = {"features": 0, "audio.fingerprint": 0, "audio.fp_bands": 0}


def flat_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One result as a flat, printable row (the CSV export's columns); the URL is redacted."""
    src, proc, inf, audio = (doc.get(k) or {} for k in ("source", "processing", "inference", "audio"))
    err = proc.get("error") or {}
    return {
        "_id": doc.get("_id"),
        "test_date": D.test_date_of(doc),
        "mongo_doc_id": src.get("mongo_doc_id"),
        "record_type": src.get("record_type"),
        "subject_id": src.get("subject_id"),
        "student_id": src.get("student_id"),
        "udise": src.get("udise"),
        "audio_url": D.display_url(doc),
        "status": proc.get("status"),
        "error_code": err.get("code"),
        "is_anomaly": inf.get("is_anomaly"),
        "anomaly_score": inf.get("anomaly_score"),
        "reason_codes": ";".join(inf.get("reason_codes") or []),
        "duplicate_of": ";".join(inf.get("duplicate_of") or []),
        "model_version": proc.get("model_version"),
        "processed_at": proc.get("processed_at"),
        "duration_s": audio.get("duration_s"),
        "reuse_of": ";".join(inf.get("reuse_of") or []),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def export(
    collection: ReadCollection, filters: Filters, path: str | Path, *, on_progress: Callable[[int], None] | None = None
) -> int:
    """Stream every matching result to ``path`` (.csv flat columns, .jsonl whole documents
    minus the fingerprint); returns the number of rows. Memory stays flat at any size."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ConfigError(f"--export {p.name}: the file must end in .csv or .jsonl", field="--export")
    match = filters.match()
    tmp = p.with_name(p.name + ".part")  # a crash never leaves a half file under the real name
    try:
        n = _export_to(collection, match, suffix, tmp, on_progress)
        tmp.replace(p)
    except OSError as e:  # a full disk, a read-only folder, a missing directory: an error, not a traceback
        tmp.unlink(missing_ok=True)
        raise ExportFailed(
            f"--export {p}: {e.strerror or e}; nothing was written",
            hint="free space or choose another folder (the export streams: it needs about 2 KB per result)",
        ) from e
    except BaseException:
        tmp.unlink(missing_ok=True)  # MongoDB went away, Ctrl-C: no half file left behind
        raise
    return n


def _export_to(
    collection: ReadCollection, match: dict[str, Any], suffix: str, tmp: Path, on_progress: Callable[[int], None] | None
) -> int:
    n = 0
    with mongo_errors("results export"), tmp.open("w", encoding="utf-8", newline="") as fh:
        cursor = collection.find(match, {"audio.fingerprint": 0, "audio.fp_bands": 0}).sort([("_id", 1)])
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS) if suffix == ".csv" else None
        if writer:
            writer.writeheader()
        for doc in cursor:
            if writer:
                writer.writerow({k: ("" if v is None else v) for k, v in flat_row(doc).items()})
            else:
                doc = dict(doc)
                doc["source"] = {**(doc.get("source") or {}), "audio_s3_url": D.display_url(doc)}
                fh.write(json.dumps(_jsonable(doc), ensure_ascii=False) + "\n")
            n += 1
            if on_progress and n % 500 == 0:
                on_progress(n)
    return n


#: ``results show`` takes a result id's first characters (``results inspect`` prints 12), like a short git hash.
MIN_ID_PREFIX = 8
_HEX = frozenset("0123456789abcdef")


def find_for_show(collection: ReadCollection, key: str) -> list[dict[str, Any]]:
    """The result with ``_id == key``, else every result of the source document ``key``, else the
    results whose ``_id`` starts with ``key`` (at least :data:`MIN_ID_PREFIX` hex characters)."""
    import re

    with mongo_errors("results show"):
        doc = collection.find_one({"_id": key}, {"audio.fingerprint": 0})
        if doc is not None:
            return [doc]
        docs = list(
            collection.find({D.F_MONGO_DOC_ID: key}, {"audio.fingerprint": 0})
            .sort([(D.F_TEST_DATE, 1), ("_id", 1)])
            .limit(100)
        )
        if docs or not (MIN_ID_PREFIX <= len(key) < 64 and set(key) <= _HEX):
            return docs
        # an anchored prefix regex walks the _id index; only typed hex reaches the query
        return list(collection.find({"_id": {"$regex": "^" + re.escape(key)}}, {"audio.fingerprint": 0}).limit(20))


def explain(doc: Mapping[str, Any], *, listen_url: str | None = None) -> dict[str, Any]:
    """A result laid out for a human (and ``--json``): verdict, reasons, audio, processing."""
    src, proc, inf = (doc.get(k) or {} for k in ("source", "processing", "inference"))
    return {
        "_id": doc.get("_id"),
        "source": {
            **{k: v for k, v in src.items() if k != "audio_s3_url"},
            "test_date": D.test_date_of(doc),
            "audio_url": D.display_url(doc),
        },
        "verdict": (
            "failed" if proc.get("status") == D.STATUS_FAILED else "anomaly" if inf.get("is_anomaly") else "normal"
        ),
        "anomaly_score": inf.get("anomaly_score"),
        "threshold": inf.get("threshold"),
        "reasons": inf.get("reasons") or [],
        "duplicate_of": inf.get("duplicate_of") or [],
        "reuse_of": inf.get("reuse_of") or [],
        "processing": proc,
        "audio": {k: v for k, v in (doc.get("audio") or {}).items() if k not in ("fingerprint", "fp_bands")},
        "features": doc.get("features") or {},
        "listen_url": listen_url,
    }


def listen_link(s3_client: S3Client, doc: Mapping[str, Any], expires_s: int = 300) -> tuple[str | None, str | None]:
    """(presigned URL, None) or (None, why not): a short-lived link to the recording.

    No link when the worker found no recording there (``not_found``) or the URL is not one to
    fetch (``invalid_url``, ``url_not_allowed``): presigning works for any key, so such a link would
    only lead to an error page. ``access_denied`` still gets one: the operator's credentials may
    read what the worker's could not.
    """
    from anomaly_cli.adapters.storage import presign
    from anomaly_cli.errors import AnomalyError

    url = (doc.get("source") or {}).get("audio_s3_url") or ""
    error = (doc.get("processing") or {}).get("error") or {}
    if error.get("code") in FETCH_FAILURE_CODES:
        return None, f"the recording could not be fetched ({error.get('code')})"
    try:
        return presign(s3_client, url, expires_s), None
    except AnomalyError as e:
        return None, f"{e.code}: {redact_url(url)}"


def iter_docs(
    collection: ReadCollection, match: Mapping[str, Any], projection: Mapping[str, Any]
) -> Iterator[dict[str, Any]]:
    """A streamed cursor (the driver fetches it in batches) under the Mongo error translation."""
    with mongo_errors("results read"):
        yield from collection.find(dict(match), dict(projection))
