"""The bad-input corpus: every case, its input and its expected outcome, in ONE table.

The tests in this folder are parametrised from :data:`CASES` (one builder per case id lives
next to the test that runs it, and a test fails when a case has no builder), and
``docs/bad-input.md`` is checked to list exactly these ids with the same expected
outcome text, so the table an operator reads is the table the tests prove.

Three kinds of case:

- ``source``: a source document on the Mongo double, run through a real backfill discovery
  (moto SQS). ``enqueued`` messages are sent; ``invalid`` counts rows rejected for a data reason
  (``stats.skipped_invalid.<reason>``); a case with neither is *ignored* (not a reading row of
  the test date). The run always completes.
- ``message``: an SQS body sent to a queue with a DLQ (``maxReceiveCount`` 2, visibility 1 s)
  and consumed by the real worker. ``dlq``: never acked, moved to the DLQ by redrive, logged as
  ``message_malformed`` with its message id; ``screened``: a result is written and it is acked.
- ``audio``: an ad-hoc work item whose audio comes from a local HTTP server, through the real
  worker and the real engine. ``status`` / ``reason`` / ``code`` describe the result document;
  ``transient`` cases write no result, stay unacked (visibility set to a backoff) and are
  retried (the DLQ only after ``maxReceiveCount``: they are not known to be permanent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SOURCE, MESSAGE, AUDIO = "source", "message", "audio"


@dataclass(frozen=True)
class Case:
    """One bad input: ``text`` is the expected outcome as the README states it."""

    id: str
    kind: str
    input: str
    text: str
    # source: messages enqueued and rows rejected by reason
    enqueued: int = 0
    invalid: dict[str, int] = field(default_factory=dict)
    # message: "dlq" | "screened"
    route: str = ""
    # audio: the result document (status "ok" | "failed") or "transient" (no result, unacked)
    status: str = ""
    reason: str = ""  # a reason code the result must carry ("" = only: not corrupt/unavailable)
    code: str = ""  # processing.error.code of a failed result / the transient error code

    @property
    def markdown_row(self) -> str:
        return f"| `{self.id}` | {self.kind} | {self.input} | {self.text} |"


def _src(id: str, input: str, text: str, enqueued: int = 0, **invalid: int) -> Case:
    return Case(id, SOURCE, input, text, enqueued=enqueued, invalid=dict(invalid))


def _msg(id: str, input: str, route: str = "dlq") -> Case:
    text = (
        "unacked, logged `message_malformed` with its message id, moved to the DLQ by redrive; worker keeps running"
        if route == "dlq"
        else "parsed, screened, result written, acked"
    )
    return Case(id, MESSAGE, input, text, route=route)


def _aud(id: str, input: str, text: str, status: str, reason: str = "", code: str = "") -> Case:
    return Case(id, AUDIO, input, text, status=status, reason=reason, code=code)


CASES: tuple[Case, ...] = (
    # ----- source documents -> discovery ----------------------------------------------------
    _src("src_no_assessments", "document without `assessments`", "ignored (no row of the date); run completes"),
    _src("src_assessments_null", "`assessments: null`", "ignored; run completes"),
    _src(
        "src_assessments_object",
        "`assessments` an object, not a list (looks like one assessment)",
        "ignored: never enqueued (the worker's re-check would call it gone); run completes",
    ),
    _src("src_assessment_not_object", '`assessments: ["x", null, 5]`', "ignored; run completes"),
    _src("src_subjects_null", "`teacher_record.subjects: null`", "ignored; run completes"),
    _src(
        "src_subjects_object",
        "`teacher_record.subjects` a single row object instead of a list",
        "ignored; run completes",
    ),
    _src("src_subject_row_not_object", '`subjects: ["वाचन", null, 7]`', "ignored; run completes"),
    _src(
        "src_audio_url_number", "`audio_url: 12345`", "skipped_invalid `audio_url_not_string`", audio_url_not_string=1
    ),
    _src(
        "src_audio_url_list",
        '`audio_url: ["s3://…"]`',
        "skipped_invalid `audio_url_not_string`",
        audio_url_not_string=1,
    ),
    _src("src_audio_url_missing", "row without `audio_url`", "skipped_invalid `empty_audio_url`", empty_audio_url=1),
    _src("src_audio_url_empty", '`audio_url: ""`', "skipped_invalid `empty_audio_url`", empty_audio_url=1),
    _src("src_audio_url_whitespace", '`audio_url: "   "`', "skipped_invalid `empty_audio_url`", empty_audio_url=1),
    _src("src_audio_url_null_string", '`audio_url: "null"`', "skipped_invalid `empty_audio_url`", empty_audio_url=1),
    _src(
        "src_audio_url_padded",
        '`audio_url: "  s3://bucket/key.m4a \\n"`',
        "enqueued once with the URL trimmed",
        enqueued=1,
    ),
    _src(
        "src_created_at_string",
        '`subject_created_at: "2025-12-20T05:00:00Z"` (a string)',
        "skipped_invalid `subject_created_at_not_date`",
        subject_created_at_not_date=1,
    ),
    _src(
        "src_created_at_none",
        "`subject_created_at: null`",
        "skipped_invalid `missing_subject_created_at`",
        missing_subject_created_at=1,
    ),
    _src(
        "src_created_at_future",
        "`subject_created_at` 30 days in the future (phone clock)",
        "skipped_invalid `subject_created_at_in_future`",
        subject_created_at_in_future=1,
    ),
    _src(
        "src_missing_subject_id",
        "row without `subject_id`",
        "skipped_invalid `missing_subject_id`",
        missing_subject_id=1,
    ),
    _src(
        "src_subject_id_object",
        '`subject_id: {"$oid": "…"}` (an object)',
        "skipped_invalid `missing_subject_id`",
        missing_subject_id=1,
    ),
    _src(
        "src_created_at_epoch_ms",
        "`subject_created_at: 1766209267000` (epoch milliseconds)",
        "skipped_invalid `subject_created_at_not_date`",
        subject_created_at_not_date=1,
    ),
    _src("src_subject_id_number", "`subject_id: 12345` (a number)", 'enqueued once, `subject_id` "12345"', enqueued=1),
    _src(
        "src_duplicate_subject_id_same_row",
        "the same row twice in one `subjects` list",
        "one message; the copy is skipped_invalid `duplicate_row`",
        enqueued=1,
        duplicate_row=1,
    ),
    _src(
        "src_duplicate_subject_id_other_url",
        "two rows with one `subject_id` and different URLs",
        "two messages (two recordings, two result ids)",
        enqueued=2,
    ),
    _src(
        "src_subject_id_in_both_records",
        "one `subject_id` in `teacher_record` and `admin_record`",
        "two messages (`record_type` teacher and admin)",
        enqueued=2,
    ),
    _src(
        "src_document_15mb",
        "a 15 MB document (large unrelated field) with one reading row",
        "enqueued once (the big field is never projected)",
        enqueued=1,
    ),
    _src("src_name_nfd", "`subject_name` in Unicode NFD form", "enqueued once, `subject_name` sent in NFC", enqueued=1),
    _src("src_name_trailing_spaces", '`subject_name: " वाचन  "`', "enqueued once", enqueued=1),
    _src("src_name_regex_chars", '`subject_name: "वा.*"` (regex metacharacters)', "ignored (matched literally)"),
    _src("src_name_other_subject", '`subject_name: "गणित"` (maths)', "ignored"),
    _src("src_test_date_string", '`assessments.test_date: "2025-12-20"` (a string)', "enqueued once", enqueued=1),
    _src("src_test_date_other_day_string", '`assessments.test_date: "2025-12-21"`', "ignored"),
    _src("src_test_date_garbage", '`assessments.test_date: "soon"`', "ignored"),
    _src("src_test_date_number", "`assessments.test_date: 20251220` (a number)", "ignored"),
    # ----- SQS messages -> the real worker --------------------------------------------------
    _msg("msg_not_json", "`hello {` (not JSON)"),
    _msg("msg_whitespace", "a body of three spaces"),
    _msg("msg_json_array", "`[1, 2, 3]`"),
    _msg("msg_json_string", '`"a string"`'),
    _msg("msg_json_null", "`null`"),
    _msg("msg_json_number", "`42`"),
    _msg("msg_missing_field", "the 13-field body without `audio_s3_url`"),
    _msg("msg_extra_field", "the 13 fields plus `priority`"),
    _msg("msg_subject_id_number", "`subject_id: 12345` (number)"),
    _msg("msg_test_date_operator", '`test_date: {"$gt": ""}` (an operator object)'),
    _msg("msg_test_date_operator_string", '`test_date: "{\\"$gt\\": \\"\\"}"` (operator text)'),
    _msg("msg_test_date_impossible", '`test_date: "2025-13-45"`'),
    _msg("msg_test_date_other_format", '`test_date: "20/12/2025"`'),
    _msg("msg_datetime_no_offset", '`subject_created_at: "2025-12-20T05:00:00"` (no UTC offset)'),
    _msg("msg_datetime_garbage", '`discovered_at: "yesterday"`'),
    _msg("msg_unknown_record_type", '`record_type: "parent"`'),
    _msg("msg_empty_subject_id", '`subject_id: ""`'),
    _msg("msg_lone_surrogate", '`subject_id: "\\ud83d"` (a lone UTF-16 surrogate escape)'),
    _msg("msg_body_250kb", "a 250 KB body (a valid item with a padded field)"),
    _msg("msg_non_bmp_valid", "a valid item with non-BMP text (`😀𝔘` in ids, Devanagari name)", route="screened"),
    # ----- audio -> the real worker and engine ----------------------------------------------
    _aud("aud_empty", "0 bytes (HTTP 200)", "failed, `corrupt`, code `empty`; acked", "failed", "corrupt", "empty"),
    _aud(
        "aud_html_error_page",
        "an HTML error page served as `.wav` with 200",
        "failed, `corrupt`, code `not_audio`; acked",
        "failed",
        "corrupt",
        "not_audio",
    ),
    _aud(
        "aud_random_bytes",
        "20 KB of random bytes",
        "failed, `corrupt`, code `not_audio`; acked",
        "failed",
        "corrupt",
        "not_audio",
    ),
    _aud("aud_truncated_wav", "a WAV cut in half", "ok, reason `truncated`; acked", "ok", "truncated"),
    _aud("aud_truncated_mp3", "an MP3 cut in half", "ok, reason `truncated`; acked", "ok", "truncated"),
    _aud(
        "aud_truncated_m4a",
        "an m4a (moov at end) cut before its index",
        "failed, reason `truncated`, code `truncated`; acked",
        "failed",
        "truncated",
        "truncated",
    ),
    _aud("aud_wrong_extension", "an MP3 served as `.wav`", "ok (sniffed as mp3); acked", "ok"),
    _aud(
        "aud_id3_only",
        "an ID3 tag and no audio frames",
        "failed, `corrupt`, code `empty`; acked",
        "failed",
        "corrupt",
        "empty",
    ),
    _aud("aud_0_1s", "0.1 s of speech", "ok, reason `too_short`; acked", "ok", "too_short"),
    _aud(
        "aud_two_hours_header",
        "a WAV whose header claims 2 hours (3 s present)",
        "ok, reason `truncated` (nothing allocated for 2 h); acked",
        "ok",
        "truncated",
    ),
    _aud(
        "aud_two_hours_stream",
        "a real 2-hour FLAC stream (MAX_DURATION_SECONDS 30)",
        "failed, reason `too_long`, code `duration_over_cap`; acked",
        "failed",
        "too_long",
        "duration_over_cap",
    ),
    _aud("aud_8khz", "speech at 8 kHz", "ok (screened, not corrupt); acked", "ok"),
    _aud("aud_96khz", "speech at 96 kHz", "ok (screened, not corrupt); acked", "ok"),
    _aud("aud_6_channels", "speech in 6 channels", "ok (channels averaged); acked", "ok"),
    _aud(
        "aud_float_nan",
        "float WAV with a NaN sample",
        "failed, `corrupt`, code `nonfinite_samples`; acked",
        "failed",
        "corrupt",
        "nonfinite_samples",
    ),
    _aud(
        "aud_float_inf",
        "float WAV with +inf",
        "failed, `corrupt`, code `nonfinite_samples`; acked",
        "failed",
        "corrupt",
        "nonfinite_samples",
    ),
    _aud("aud_dc_offset", "speech riding on a +0.3 DC offset", "ok, reason `dc_offset`; acked", "ok", "dc_offset"),
    _aud(
        "aud_unsupported_rate",
        "a WAV header claiming 1000 Hz",
        "failed, `corrupt`, code `unsupported_rate`; acked",
        "failed",
        "corrupt",
        "unsupported_rate",
    ),
    _aud(
        "aud_http_404",
        "HTTP 404",
        "failed, `unavailable`, code `not_found`; acked",
        "failed",
        "unavailable",
        "not_found",
    ),
    _aud(
        "aud_s3_no_such_key",
        "`s3://` URL of a key that does not exist",
        "failed, `unavailable`, code `not_found`; acked",
        "failed",
        "unavailable",
        "not_found",
    ),
    _aud(
        "aud_s3_xml_error_object",
        "an S3 object holding an XML error document",
        "failed, `corrupt`, code `not_audio`; acked",
        "failed",
        "corrupt",
        "not_audio",
    ),
    _aud(
        "aud_s3_other_bucket",
        "`s3://` URL of a bucket outside the allowlist",
        "failed, `unavailable`, code `url_not_allowed` (no S3 request); acked",
        "failed",
        "unavailable",
        "url_not_allowed",
    ),
    _aud(
        "aud_streams_forever",
        "a server streaming bytes forever (no Content-Length)",
        "failed, `unavailable`, code `too_large` at MAX_AUDIO_BYTES; acked",
        "failed",
        "unavailable",
        "too_large",
    ),
    _aud(
        "aud_huge_content_length",
        "a server announcing a 10 GB Content-Length",
        "failed, `unavailable`, code `too_large` before reading the body; acked",
        "failed",
        "unavailable",
        "too_large",
    ),
    _aud(
        "aud_drips_forever",
        "a server sending one byte every 0.2 s forever",
        "transient `fetch_transient` (download deadline): no result, unacked with backoff, retried",
        "transient",
        code="fetch_transient",
    ),
    _aud(
        "aud_never_answers",
        "a server that accepts and never answers",
        "transient `fetch_transient` (read timeout): no result, unacked with backoff, retried",
        "transient",
        code="fetch_transient",
    ),
    _aud(
        "aud_http_503",
        "HTTP 503 on every attempt",
        "transient `fetch_transient`: no result, unacked with backoff",
        "transient",
        code="fetch_transient",
    ),
)

BY_ID: dict[str, Case] = {c.id: c for c in CASES}


def of_kind(kind: str) -> list[Case]:
    """The cases of one kind, in table order."""
    return [c for c in CASES if c.kind == kind]


def markdown_table() -> str:
    """The table as it appears in ``docs/bad-input.md``."""
    head = "| case | kind | input | expected outcome |\n|---|---|---|---|"
    return "\n".join([head, *(c.markdown_row for c in CASES)])


def ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def param(cases: list[Case]) -> Any:
    """``pytest.mark.parametrize`` arguments for ``cases`` with readable ids."""
    import pytest

    return pytest.mark.parametrize("case", cases, ids=ids(cases))
