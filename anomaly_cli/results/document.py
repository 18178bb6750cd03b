"""The result document: the ONE place it is built, plus small readers for the operator tools.

Shape (collection ``MONGO_RESULT_COLLECTION``)::

    _id          WorkItem.result_id (the spec's SHA-256)
    source       the 13 message fields; test_date as a datetime at midnight UTC, datetimes as datetimes
    processing   {status ok|failed, processed_at, worker_id, attempt, model_version,
                  timings_ms {fetch, decode, features, inference, total}, error {code, message, stage}|null,
                  screen_count}
    inference    {is_anomaly, anomaly_score, reasons [{code, value, threshold, detail}], reason_codes,
                  threshold, duplicate_of [ids], reuse_of [ids]}
    features     {name: float}
    audio        {format, codec, sample_rate, channels, duration_s, bytes, sha256, pcm_sha256,
                  fingerprint, fp_bands}
    created_at, updated_at

``source.audio_s3_url`` is stored as enqueued (it is an input of ``_id``, so it must stay
recomputable), even when it is a presigned URL: whoever prints it must pass it through
:func:`anomaly_cli.redact.redact_url` (:func:`display_url` does).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from anomaly_cli.contract import MESSAGE_FIELDS, WorkItem, test_date_datetime
from anomaly_cli.redact import redact_url
from anomaly_cli.screening import Screening

# --- field names the operator tools and queries use -------------------------------------------
F_ID = "_id"
F_TEST_DATE = "source.test_date"
F_MONGO_DOC_ID = "source.mongo_doc_id"
F_RECORD_TYPE = "source.record_type"
F_SUBJECT_ID = "source.subject_id"
F_STUDENT_ID = "source.student_id"
F_SUBJECT_CREATED_AT = "source.subject_created_at"
F_AUDIO_URL = "source.audio_s3_url"
F_STATUS = "processing.status"
F_PROCESSED_AT = "processing.processed_at"
F_MODEL_VERSION = "processing.model_version"
F_ERROR_CODE = "processing.error.code"
F_SCREEN_COUNT = "processing.screen_count"
F_IS_ANOMALY = "inference.is_anomaly"
F_SCORE = "inference.anomaly_score"
F_REASONS = "inference.reasons"
F_REASON_CODES = "inference.reason_codes"
F_DUPLICATE_OF = "inference.duplicate_of"
F_REUSE_OF = "inference.reuse_of"
F_SHA256 = "audio.sha256"
F_PCM_SHA256 = "audio.pcm_sha256"
F_FINGERPRINT = "audio.fingerprint"
F_FP_BANDS = "audio.fp_bands"
F_UPDATED_AT = "updated_at"

STATUS_OK = "ok"
STATUS_FAILED = "failed"
TIMING_STAGES = ("fetch", "decode", "features", "inference", "total")
AUDIO_FIELDS = (
    "format",
    "codec",
    "sample_rate",
    "channels",
    "duration_s",
    "bytes",
    "sha256",
    "pcm_sha256",
    "fingerprint",
    "fp_bands",
)
_DATETIME_FIELDS = ("source_updated_at", "subject_created_at", "discovered_at")


def source_of(item: WorkItem) -> dict[str, Any]:
    """The ``source`` sub-document: all 13 message fields, dates as BSON dates."""
    out: dict[str, Any] = {}
    for name in MESSAGE_FIELDS:
        value = getattr(item, name)
        if name == "test_date":
            value = test_date_datetime(value)
        out[name] = value
    return out


def build_result(
    item: WorkItem,
    screening: Screening,
    *,
    worker_id: str,
    attempt: int,
    now: dt.datetime | None = None,
    fetch_ms: float | None = None,
    total_ms: float | None = None,
    screen_count: int = 1,
) -> dict[str, Any]:
    """The result document of ``item`` screened as ``screening`` (the only builder)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    timings = {k: screening.timings_ms.get(k) for k in TIMING_STAGES}
    if fetch_ms is not None:
        timings["fetch"] = round(fetch_ms, 3)
    if total_ms is not None:
        timings["total"] = round(total_ms, 3)
    reasons = [r.to_dict() for r in screening.reasons]
    audio = {k: screening.audio.get(k) for k in AUDIO_FIELDS}
    if audio["fp_bands"] is not None:
        audio["fp_bands"] = list(audio["fp_bands"])
    if "truncated" in screening.audio:
        audio["truncated"] = bool(screening.audio["truncated"])
    return {
        "_id": item.result_id,
        "source": source_of(item),
        "processing": {
            "status": STATUS_OK if screening.status == STATUS_OK else STATUS_FAILED,
            "processed_at": now,
            "worker_id": worker_id,
            "attempt": int(attempt),
            "model_version": screening.model_version,
            "timings_ms": timings,
            "error": dict(screening.error) if screening.error else None,
            "screen_count": int(screen_count),
        },
        "inference": {
            "is_anomaly": bool(screening.is_anomaly),
            "anomaly_score": float(screening.anomaly_score),
            "reasons": reasons,
            "reason_codes": [r["code"] for r in reasons],
            "threshold": screening.threshold,
            "thresholds": dict(screening.thresholds) or None,
            "duplicate_of": [],
            "reuse_of": [],
        },
        "features": {k: float(v) for k, v in screening.features.items()},
        "audio": audio,
        "created_at": now,
        "updated_at": now,
    }


# --- readers ----------------------------------------------------------------------------------
def test_date_of(doc: Mapping[str, Any]) -> str:
    """``source.test_date`` of a stored result as ``YYYY-MM-DD``."""
    value = (doc.get("source") or {}).get("test_date")
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return str(value)[:10]


def order_key(doc: Mapping[str, Any]) -> tuple[dt.datetime, str]:
    """(subject_created_at, _id): which of two recordings is the *later* one (gets the flag)."""
    created = (doc.get("source") or {}).get("subject_created_at")
    if not isinstance(created, dt.datetime):
        created = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    elif created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return (created, str(doc.get("_id")))


def reason_codes(doc: Mapping[str, Any]) -> list[str]:
    """The reason codes of a stored result."""
    return list((doc.get("inference") or {}).get("reason_codes") or [])


def display_url(doc: Mapping[str, Any]) -> str:
    """The recording URL of a result, safe to print (presigned query strings removed)."""
    return redact_url((doc.get("source") or {}).get("audio_s3_url") or "")


def work_item_of(doc: Mapping[str, Any]) -> WorkItem:
    """Rebuild the :class:`WorkItem` of a stored result (``rescreen`` re-enqueues with it)."""
    src = dict(doc.get("source") or {})
    values: dict[str, Any] = {}
    for name in MESSAGE_FIELDS:
        value = src.get(name)
        if name == "test_date":
            value = test_date_of(doc)
        elif name in _DATETIME_FIELDS and isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        values[name] = value
    return WorkItem(**values)
