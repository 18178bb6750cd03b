"""The data contract shared by every stage: the 13-field SQS message, the result id, the
natural key, and the one function that normalises a source subject row.

Each of these has exactly one builder and one parser, here. ``docs/contract.md`` is the
authority (checked by tests/test_contract_doc.py); it fixes the formats:

- ``mongo_doc_id``: the source ``_id`` as a string (:func:`doc_id_text`: ObjectId hex, a string
  id itself, canonical Extended JSON for any other type); ``test_date``: ``YYYY-MM-DD``;
- ``source_updated_at`` / ``subject_created_at`` / ``discovered_at``: ISO-8601 with an explicit
  UTC offset; ``source_updated_at == subject_created_at``;
- ``record_type``: ``teacher`` | ``admin`` | ``adhoc`` (``push-urls`` items, no source row);
- result ``_id``: lowercase hex SHA-256 of
  ``source_collection|mongo_doc_id|test_date|record_type|subject_id|audio_url``.

The parser is strict: a body that is not a JSON object with exactly the 13 fields, each of the
right type, is a :class:`~anomaly_cli.errors.ContractError` (the worker leaves such a message
for the DLQ, where ``replay-dlq`` can inspect it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

from anomaly_cli.errors import ContractError

RECORD_TYPES = ("teacher", "admin")
ADHOC = "adhoc"
ALL_RECORD_TYPES = RECORD_TYPES + (ADHOC,)
RECORD_PATHS = {"teacher": "teacher_record", "admin": "admin_record"}

MESSAGE_FIELDS = (
    "source_collection",
    "mongo_doc_id",
    "test_date",
    "record_type",
    "subject_id",
    "subject_name",
    "audio_s3_url",
    "source_updated_at",
    "subject_created_at",
    "student_id",
    "udise",
    "trace_id",
    "discovered_at",
)
_DATETIME_FIELDS = ("source_updated_at", "subject_created_at", "discovered_at")
_NULLABLE_FIELDS = ("student_id", "udise")

#: The worker honours this SQS message attribute: overwrite an existing result.
RESCREEN_ATTRIBUTE = "rescreen"
#: Our bodies are < 2 KB; anything near the 256 KiB SQS limit is not one of ours.
MAX_BODY_BYTES = 64 * 1024
MAX_FIELD_CHARS = 4096


def normalize_text(value: str) -> str:
    """NFC-normalise and trim (subject names typed on different phones differ in both)."""
    return unicodedata.normalize("NFC", value).strip()


def utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime; naive values are taken as UTC (that is what MongoDB returns)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def iso(value: dt.datetime) -> str:
    """ISO-8601 with an explicit offset, millisecond precision (MongoDB's precision)."""
    return utc(value).isoformat(timespec="milliseconds")


_TEST_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: After ``YYYY-MM-DD``, what makes a *string* ``assessments.test_date`` a datetime of that day.
STRING_DATE_TIME_SUFFIX = r"T[0-9]{2}:[0-9]{2}"


def is_test_date(value: Any) -> bool:
    """Exactly ``YYYY-MM-DD`` (ASCII digits) naming a real day.

    ``date.fromisoformat`` alone also takes ``2025-W51-6`` (an ISO week date, 10 characters too)
    and ``20251220``: each would name the same day with another string, i.e. a second result id
    for one row.
    """
    if not isinstance(value, str) or not _TEST_DATE_RE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def string_test_date_pattern(days: Sequence[str]) -> str:
    """The regex a *string* ``assessments.test_date`` of one of ``days`` matches (MongoDB and Python).

    The whole value is matched, trailing whitespace aside: the date alone, or the date followed by
    ``THH:MM...``. A prefix is not enough (``2025-12-2099`` is not ``2025-12-20``). The regex
    starts with the literal date so MongoDB can bound it on an index of ``assessments.test_date``.
    """
    valid = [d for d in days if is_test_date(d)]  # digits and '-' only: nothing to escape
    head = valid[0] if len(valid) == 1 else "(?:" + "|".join(valid) + ")"  # one day: a plain literal prefix
    return rf"^{head}(?:\s*$|{STRING_DATE_TIME_SUFFIX})"


def test_date_datetime(test_date: str) -> dt.datetime:
    """``YYYY-MM-DD`` -> midnight UTC, the form ``source.test_date`` is stored in."""
    d = dt.date.fromisoformat(test_date)
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc)


def result_id(
    source_collection: str, mongo_doc_id: str, test_date: str, record_type: str, subject_id: str, audio_url: str
) -> str:
    """The deterministic result ``_id``: anyone can recompute it from the six parts."""
    raw = "|".join([source_collection, mongo_doc_id, test_date, record_type, subject_id, audio_url.strip()])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WorkItem:
    """One audio to screen: the parsed SQS message (exactly the 13 contract fields)."""

    source_collection: str
    mongo_doc_id: str
    test_date: str
    record_type: str
    subject_id: str
    subject_name: str
    audio_s3_url: str
    source_updated_at: dt.datetime
    subject_created_at: dt.datetime
    student_id: str | None
    udise: str | None
    trace_id: str
    discovered_at: dt.datetime

    @property
    def result_id(self) -> str:
        return result_id(
            self.source_collection,
            self.mongo_doc_id,
            self.test_date,
            self.record_type,
            self.subject_id,
            self.audio_s3_url,
        )

    @property
    def natural_key(self) -> tuple[str, str, str, str]:
        """(mongo_doc_id, test_date, record_type, subject_id): how old results are recognised."""
        return (self.mongo_doc_id, self.test_date, self.record_type, self.subject_id)

    @property
    def is_adhoc(self) -> bool:
        return self.record_type == ADHOC

    def to_message(self) -> dict[str, Any]:
        """The message as a JSON-ready dict, fields in contract order."""
        raw = asdict(self)
        return {k: (iso(raw[k]) if k in _DATETIME_FIELDS else raw[k]) for k in MESSAGE_FIELDS}

    def to_body(self) -> str:
        """The SQS message body (the only place a body is built)."""
        return json.dumps(self.to_message(), ensure_ascii=False, separators=(",", ":"))


def natural_key_filter(item: WorkItem) -> dict[str, Any]:
    """A results-collection filter on the natural key (served by the spec's first index)."""
    return {
        "source.mongo_doc_id": item.mongo_doc_id,
        "source.test_date": test_date_datetime(item.test_date),
        "source.record_type": item.record_type,
        "source.subject_id": item.subject_id,
    }


def _parse_datetime(name: str, value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ContractError(f"field {name!r} must be an ISO-8601 string, got {type(value).__name__}")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise ContractError(f"field {name!r} is not an ISO-8601 datetime: {value[:64]!r}") from e
    if parsed.tzinfo is None:
        raise ContractError(f"field {name!r} has no UTC offset: {value[:64]!r}")
    try:
        return utc(parsed)
    except OverflowError as e:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ContractError(f"field {name!r} is outside the years 1-9999 in UTC: {value[:64]!r}") from e


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_message(body: str | bytes | Mapping[str, Any]) -> WorkItem:
    """Parse an SQS body into a :class:`WorkItem` or raise :class:`ContractError` saying why."""
    if isinstance(body, (str, bytes)):
        size = len(body.encode("utf-8") if isinstance(body, str) else body)
        if size > MAX_BODY_BYTES:
            raise ContractError(f"body is {size} bytes, over the {MAX_BODY_BYTES} byte limit of a work item")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise ContractError(f"body is not JSON: {e}") from e
        except RecursionError as e:  # 20 000 nested "[" fit in 64 KB and exhaust the parser's stack
            raise ContractError("body is nested too deeply to be a work item") from e
    else:
        data = dict(body)
    if not isinstance(data, dict):
        raise ContractError(f"body must be a JSON object, got {type(data).__name__}")
    missing = [k for k in MESSAGE_FIELDS if k not in data]
    if missing:
        raise ContractError(f"missing fields: {', '.join(missing)}")
    extra = sorted(k for k in data if k not in MESSAGE_FIELDS)
    if extra:
        raise ContractError(f"unexpected fields: {', '.join(extra[:5])}")
    values: dict[str, Any] = {}
    for name in MESSAGE_FIELDS:
        value = data[name]
        if name in _DATETIME_FIELDS:
            values[name] = _parse_datetime(name, value)
            continue
        if name in _NULLABLE_FIELDS and value is None:
            values[name] = None
            continue
        if not isinstance(value, str):
            raise ContractError(f"field {name!r} must be a string, got {type(value).__name__}")
        if not _is_utf8(value):  # a JSON escape like "\ud83d" (lone surrogate) breaks the result id
            raise ContractError(f"field {name!r} holds a lone UTF-16 surrogate (not valid Unicode text)")
        if len(value) > MAX_FIELD_CHARS:
            raise ContractError(f"field {name!r} is longer than {MAX_FIELD_CHARS} characters")
        if name not in _NULLABLE_FIELDS and not value.strip():
            raise ContractError(f"field {name!r} is empty")
        values[name] = value
    if not is_test_date(values["test_date"]):
        raise ContractError(f"field 'test_date' must be YYYY-MM-DD, got {values['test_date'][:32]!r}")
    if values["record_type"] not in ALL_RECORD_TYPES:
        raise ContractError(
            f"field 'record_type' must be one of {', '.join(ALL_RECORD_TYPES)}, got {values['record_type'][:32]!r}"
        )
    if values["audio_s3_url"] != values["audio_s3_url"].strip():
        values["audio_s3_url"] = values["audio_s3_url"].strip()
    return WorkItem(**values)


# --- source rows -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SubjectRow:
    """A valid reading row of a source document, normalised (what discovery enqueues)."""

    mongo_doc_id: str
    record_type: str
    subject_id: str
    subject_name: str
    audio_url: str
    subject_created_at: dt.datetime
    student_id: str | None
    udise: str | None

    @property
    def sort_key(self) -> tuple[dt.datetime, str, str, str]:
        """The discovery order: (source_updated_at, mongo_doc_id, record_type, subject_id)."""
        return (self.subject_created_at, self.mongo_doc_id, self.record_type, self.subject_id)

    def to_work_item(
        self, source_collection: str, test_date: str, *, now: dt.datetime | None = None, trace_id: str | None = None
    ) -> WorkItem:
        """The work item of this row; ``trace_id`` is a fresh UUID per enqueue."""
        return WorkItem(
            source_collection=source_collection,
            mongo_doc_id=self.mongo_doc_id,
            test_date=test_date,
            record_type=self.record_type,
            subject_id=self.subject_id,
            subject_name=self.subject_name,
            audio_s3_url=self.audio_url,
            source_updated_at=self.subject_created_at,
            subject_created_at=self.subject_created_at,
            student_id=self.student_id,
            udise=self.udise,
            trace_id=trace_id or str(uuid.uuid4()),
            discovered_at=now or dt.datetime.now(dt.timezone.utc),
        )

    def result_id(self, source_collection: str, test_date: str) -> str:
        return result_id(
            source_collection, self.mongo_doc_id, test_date, self.record_type, self.subject_id, self.audio_url
        )


@dataclass(frozen=True)
class RejectedRow:
    """A reading row that cannot be screened, with the data reason (counted, never enqueued)."""

    mongo_doc_id: str
    record_type: str
    subject_id: str | None
    reason: str


#: Reasons a reading row is rejected; stats count them under ``skipped_invalid.<reason>``.
REJECT_REASONS = (
    "missing_subject_id",
    "audio_url_not_string",
    "empty_audio_url",
    "missing_subject_created_at",
    "subject_created_at_not_date",
    "subject_created_at_in_future",
    "field_too_long",
    "field_not_unicode",
    "empty_doc_id",
    "body_too_large",
)
#: Rejections that mean the row is not a *matching row* of the spec's selection (a non-empty string
#: ``audio_url`` and a date-typed ``subject_created_at``): counted by reason, but they never consume
#: ``MAX_RECORDS`` or a page's ``DISCOVERY_BATCH_SIZE`` (the spec's decisions, revised 2026-12-01).
NOT_MATCHING_REASONS = frozenset(
    {"audio_url_not_string", "empty_audio_url", "missing_subject_created_at", "subject_created_at_not_date"}
)


def is_matching_row(row: SubjectRow | RejectedRow) -> bool:
    """Whether a normalised row is a matching row of the selection (what ``MAX_RECORDS`` counts)."""
    return not (isinstance(row, RejectedRow) and row.reason in NOT_MATCHING_REASONS)


def body_over_limit(item: WorkItem) -> bool:
    """Whether ``item``'s body is over :data:`MAX_BODY_BYTES`, the limit :func:`parse_message` enforces.

    Discovery asks before sending, so a row the worker would always refuse is counted as invalid
    (``body_too_large``) instead of looping to the DLQ. A cheap bound first: most bodies are < 2 KB.
    """
    chars = sum(len(v) for v in (item.mongo_doc_id, item.subject_id, item.subject_name, item.audio_s3_url))
    chars += len(item.source_collection) + len(item.student_id or "") + len(item.udise or "")
    if 4 * chars + 1024 < MAX_BODY_BYTES:
        return False
    return len(item.to_body().encode("utf-8")) > MAX_BODY_BYTES


#: Rows stamped further than this in the future are phone-clock errors, not screenable rows.
FUTURE_TOLERANCE = dt.timedelta(days=1)


def doc_id_text(value: Any) -> str:
    """The source ``_id`` as the message's ``mongo_doc_id`` string (the spec's field stays a string).

    - a string: itself; an ObjectId: its 24 hex digits (the spec's two forms, unchanged);
    - anything else MongoDB allows as an ``_id`` (int, Int64, double, Decimal128, UUID / binary,
      an embedded document, a date...): its MongoDB Extended JSON v2 *canonical* form, compact,
      e.g. ``{"$numberInt":"42"}``, ``{"$binary":{"base64":"...","subType":"04"}}``. Canonical
      keeps the BSON type, so :func:`doc_id_values` finds exactly that document again. ``str()``
      would not: ``str(42)`` is looked up as the string ``"42"`` and the row was acked as gone.

    A *string* ``_id`` that happens to spell canonical Extended JSON of another document's id
    would share its result ids; both are looked up, so nothing is lost (a collection with such
    ids is not one we have met).
    """
    if isinstance(value, str):
        return value
    from bson import ObjectId, json_util

    if isinstance(value, ObjectId):
        return str(value)
    return json_util.dumps(value, json_options=_canonical_json(), separators=(",", ":"))


def doc_id_values(doc_ids: Sequence[str]) -> list[Any]:
    """The ``_id`` values to put in one ``$in`` for ``mongo_doc_id`` strings (inverse of :func:`doc_id_text`).

    Each string is tried as itself, as an ObjectId when it is 24 hex digits (some collections
    hold hex *strings*), and as the value its canonical Extended JSON names.
    """
    from bson import ObjectId, json_util

    values: list[Any] = []
    for d in dict.fromkeys(doc_ids):
        values.append(d)
        if ObjectId.is_valid(d):
            values.append(ObjectId(d))
        elif d[:1] == "{" or d in ("true", "false", "null"):
            try:
                value = json_util.loads(d, json_options=_canonical_json())
            except Exception:  # noqa: BLE001 - not Extended JSON: the string alone is the id
                continue
            # inside $in a regular expression MATCHES instead of comparing: a hostile message naming
            # {"$regularExpression": ...} would make the re-check read the whole collection
            if not _holds_regex(value):
                values.append(value)
    return values


def _holds_regex(value: Any) -> bool:
    from bson.regex import Regex

    if isinstance(value, (Regex, re.Pattern)):
        return True
    if isinstance(value, dict):
        return any(_holds_regex(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_regex(v) for v in value)
    return False


def _canonical_json() -> Any:
    from bson.binary import UuidRepresentation
    from bson.json_util import JSONMode, JSONOptions

    # UNSPECIFIED: a UUID _id reads back as Binary subtype 4, the form pymongo stores and queries
    return JSONOptions(json_mode=JSONMode.CANONICAL, uuid_representation=UuidRepresentation.UNSPECIFIED)


def _id_str(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def subject_matches(raw: Mapping[str, Any], subject_name: str) -> bool:
    """True when a raw subject row is a row of ``subject_name`` (after NFC + trim)."""
    name = raw.get("subject_name") if isinstance(raw, Mapping) else None
    return isinstance(name, str) and normalize_text(name) == normalize_text(subject_name)


def normalize_subject_row(
    *,
    mongo_doc_id: Any,
    record_type: str,
    raw: Mapping[str, Any],
    student: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> SubjectRow | RejectedRow:
    """Normalise one raw subject row (already known to be of the right subject).

    The one function behind discovery and the worker's source re-check: it trims
    ``audio_url``, turns ids into strings and rejects rows for a *data* reason instead of
    raising, so one bad row never stops a run.
    """
    doc_id = doc_id_text(mongo_doc_id)
    if not doc_id.strip():  # an _id of "" is legal in MongoDB; the parser refuses an empty mongo_doc_id
        return RejectedRow(doc_id, record_type, None, "empty_doc_id")
    subject_id = _id_str(raw.get("subject_id"))
    if subject_id is None:
        return RejectedRow(doc_id, record_type, None, "missing_subject_id")
    url = raw.get("audio_url")
    if not isinstance(url, str):
        return RejectedRow(
            doc_id, record_type, subject_id, "audio_url_not_string" if url is not None else "empty_audio_url"
        )
    url = url.strip()
    if not url or url.lower() in ("null", "none", "undefined"):
        return RejectedRow(doc_id, record_type, subject_id, "empty_audio_url")
    created = raw.get("subject_created_at")
    if created is None:
        return RejectedRow(doc_id, record_type, subject_id, "missing_subject_created_at")
    if not isinstance(created, dt.datetime):
        return RejectedRow(doc_id, record_type, subject_id, "subject_created_at_not_date")
    created = utc(created)
    now = now or dt.datetime.now(dt.timezone.utc)
    if created > now + FUTURE_TOLERANCE:
        return RejectedRow(doc_id, record_type, subject_id, "subject_created_at_in_future")
    student_id, udise = _id_str(student.get("student_id")), _id_str(student.get("udise"))
    subject_name = normalize_text(raw["subject_name"])
    # the parser's own limit (MAX_FIELD_CHARS): a row the worker would refuse is never enqueued
    if any(len(v) > MAX_FIELD_CHARS for v in (doc_id, subject_id, url, subject_name, student_id or "", udise or "")):
        return RejectedRow(doc_id[:MAX_FIELD_CHARS], record_type, subject_id[:64], "field_too_long")
    if not all(_is_utf8(v) for v in (doc_id, subject_id, url, subject_name, student_id or "", udise or "")):
        return RejectedRow(doc_id[:MAX_FIELD_CHARS], record_type, None, "field_not_unicode")
    return SubjectRow(
        mongo_doc_id=doc_id,
        record_type=record_type,
        subject_id=subject_id,
        subject_name=subject_name,
        audio_url=url,
        subject_created_at=created,
        student_id=student_id,
        udise=udise,
    )


def test_date_matches(value: Any, test_date: str, tz: dt.tzinfo) -> bool:
    """Whether an ``assessments.test_date`` (a date, or the string ``YYYY-MM-DD``) is ``test_date``.

    A date-typed value belongs to its calendar day in ``tz`` (``TEST_DATE_TIMEZONE``): apps in
    India often store local midnight, i.e. 18:30 UTC the day before.
    """
    if isinstance(value, dt.datetime):
        return utc(value).astimezone(tz).date().isoformat() == test_date
    if isinstance(value, str):
        return re.match(string_test_date_pattern([test_date]), value) is not None
    return False


def test_date_window(test_date: str, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC ``[start, end)`` of the calendar day ``test_date`` in ``tz``."""
    d = dt.date.fromisoformat(test_date)
    start = dt.datetime(d.year, d.month, d.day, tzinfo=tz).astimezone(dt.timezone.utc)
    end = (dt.datetime(d.year, d.month, d.day, tzinfo=tz) + dt.timedelta(days=1)).astimezone(dt.timezone.utc)
    return start, end
