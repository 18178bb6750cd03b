"""Properties over hostile and unlucky input (Hypothesis). Each says: the outcome is one of the
documented ones, no unexpected exception type escapes, time stays bounded, and no secret that was
in the input appears in any output. ``make test`` runs the quick profile; ``make fuzz`` the long one."""

from __future__ import annotations

import datetime as dt
import math
import time
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from anomaly_cli import errors
from anomaly_cli.contract import (
    REJECT_REASONS,
    RejectedRow,
    SubjectRow,
    WorkItem,
    normalize_subject_row,
    parse_message,
)

from .strategies import bson_values, message_bodies, source_documents, subject_rows, urls

NOW = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)


@given(message_bodies())
def test_a_body_parses_to_a_work_item_or_a_contract_error(body) -> None:
    t0 = time.monotonic()
    try:
        item = parse_message(body)
    except errors.ContractError as e:
        assert e.code == "malformed_message" and str(e)
    else:
        assert isinstance(item, WorkItem)
        assert len(item.result_id) == 64
        # what the parser accepts, the builder rebuilds (datetimes at millisecond precision, by design)
        assert parse_message(item.to_body()).result_id == item.result_id
    assert time.monotonic() - t0 < 5.0


@given(source_documents(), subject_rows(), st.sampled_from(["teacher", "admin"]))
def test_every_source_row_is_normalised_or_rejected_and_discoverys_items_parse(doc, raw, record_type) -> None:
    row = normalize_subject_row(mongo_doc_id=doc["_id"], record_type=record_type, raw=raw, student=doc, now=NOW)
    assert isinstance(row, (SubjectRow, RejectedRow))
    if isinstance(row, RejectedRow):
        assert row.reason in REJECT_REASONS
        return
    # what discovery would enqueue, the worker accepts: one set of limits on both sides
    item = row.to_work_item("student_assessment_record", "2025-12-20", now=NOW)
    from anomaly_cli.contract import body_over_limit

    if body_over_limit(item):
        return
    assert parse_message(item.to_body()).result_id == row.result_id("student_assessment_record", "2025-12-20")


@given(bson_values())
def test_doc_ids_of_any_type_round_trip(value) -> None:
    import bson

    from anomaly_cli.contract import doc_id_text, doc_id_values

    assume(not isinstance(value, (list, type(None))))
    try:
        bson.encode({"_id": value})
    except Exception:  # noqa: BLE001 - MongoDB could not hold such an _id (lone surrogate, NUL in a key)
        assume(False)
    try:
        text = doc_id_text(value)
    except Exception as e:  # noqa: BLE001 - only bson's own refusal of a non-BSON value is allowed
        pytest.fail(f"doc_id_text raised {type(e).__name__}: {e}")
    assert isinstance(text, str)
    values = doc_id_values([text])
    if "nan" in text.lower():  # NaN payloads differ bit for bit and never compare equal anyway
        return

    def as_bson(v: object) -> bytes:  # what MongoDB compares: the encoded value
        return bson.encode({"v": v})

    assert as_bson(value) in {as_bson(v) for v in values}


@given(urls())
def test_urls_parse_or_fail_with_a_fetch_error_and_never_show_secrets(url) -> None:
    from anomaly_cli.adapters.urls import Allowlist, parse_audio_url
    from anomaly_cli.redact import redact_url

    allow = Allowlist(["cdn.example", "*.cdn.example", "s3://nipun-audio", "http://127.0.0.1:8080"])
    try:
        target = parse_audio_url(url)
        allow.check(target)
    except (errors.InvalidUrl, errors.UrlNotAllowed) as e:
        message = str(e)
    else:
        message = ""
    for shown in (redact_url(url), message):
        assert "sig-secret" not in shown and "pw-secret" not in shown


SETTING_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1", "0", "1e9", "1e10", "", " ", "true", "2025-W51-6"]),
)


@given(st.data())
def test_settings_load_or_fail_naming_the_variable(data) -> None:
    from anomaly_cli.config import load_settings, setting_fields

    field = data.draw(st.sampled_from(setting_fields()))
    env = field.metadata["env"]
    raw = data.draw(SETTING_VALUES)
    assume("\x00" not in raw)
    try:
        s = load_settings(environ={env: raw}, env_file=None)
    except errors.ConfigError as e:
        from anomaly_cli.config import env_name

        known = {f.metadata["env"] for f in setting_fields()}
        assert e.field in known and e.field in str(e)  # names a variable (a cross-field check may name its pair)
        del env_name
        return
    value = getattr(s, field.name)
    if isinstance(value, float):
        assert math.isfinite(value)


SECRETS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=8, max_size=20)


@given(
    SECRETS,
    st.sampled_from(["authMechanismProperties", "tlsCertificateKeyFilePassword", "proxyPassword"]),
    st.booleans(),
)
def test_no_secret_of_a_mongo_uri_survives_redaction(secret, option, with_user) -> None:
    from anomaly_cli.redact import redact_text, redact_uri

    user = f"user:{secret}@" if with_user else ""
    value = f"AWS_SESSION_TOKEN:{secret}" if option == "authMechanismProperties" else secret
    uri = f"mongodb://{user}db1.example:27017/nipun?tls=true&{option}={value}&appname=x"
    assert secret not in redact_uri(uri)
    assert secret not in redact_text(f"error connecting to {uri}")


@lru_cache(maxsize=1)
def _clean_files() -> dict[str, bytes]:
    from anomaly_cli.audio.formats import encode

    t = np.arange(8000) / 8000.0
    clip = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return {
        fmt: encode(clip, 8000 if fmt not in ("opus", "webm") else 48000, fmt)
        if fmt not in ("opus", "webm")
        else encode(np.repeat(clip, 6), 48000, fmt)
        for fmt in ("wav", "flac", "ogg", "opus", "mp3", "m4a", "3gp", "webm")
    }


@given(st.sampled_from(["wav", "flac", "ogg", "opus", "mp3", "m4a", "3gp", "webm"]), st.data())
def test_mutated_audio_headers_decode_or_fail_with_a_decode_error_in_bounded_time(fmt, data) -> None:
    from anomaly_cli.audio.decode import decode_bytes

    raw = bytearray(_clean_files()[fmt])
    head = min(len(raw), 256)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, head - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    t0 = time.monotonic()
    try:
        got = decode_bytes(bytes(raw), max_duration_s=30.0)
    except errors.DecodeError as e:
        assert e.code and str(e)
    else:
        assert got.samples.dtype == np.float32 and np.isfinite(got.samples).all()
        assert got.duration_s <= 30.0 + 1.0
    assert time.monotonic() - t0 < 20.0
