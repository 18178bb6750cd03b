"""Hypothesis strategies for hostile and unlucky input: message bodies, source documents with every
BSON type where a field is expected, URLs, settings values, mutated audio headers."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from hypothesis import strategies as st

from anomaly_cli.contract import MESSAGE_FIELDS

UTC = dt.timezone.utc


def _bson_scalars() -> st.SearchStrategy:
    from bson import Binary, Decimal128, Int64, ObjectId, Timestamp

    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(["", " ", "null", "undefined", "None", "\u0000", "\ud83d"]),
        st.binary(max_size=20),
        st.binary(min_size=16, max_size=16).map(lambda b: Binary(b, 4)),
        st.builds(ObjectId),
        st.sampled_from([Decimal128("1.5"), Decimal128("NaN"), Decimal128("-Infinity")]),
        st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
        st.datetimes(timezones=st.just(UTC)),
        st.builds(Timestamp, st.integers(0, 2**31 - 1), st.integers(0, 100)),
        st.sampled_from(["2025-12-20", "2025-12-2099", "2025-W51-6", "20251220", "2025-12-20T05:00"]),
    )


def bson_values() -> st.SearchStrategy:
    """Any value a MongoDB document may hold in a field (nested up to a few levels)."""
    return st.recursive(
        _bson_scalars(),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=12,
    )


def subject_rows() -> st.SearchStrategy:
    good_time = st.datetimes(
        min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2026, 1, 1), timezones=st.just(UTC)
    )
    return st.fixed_dictionaries(
        {"subject_name": st.sampled_from(["वाचन", " वाचन ", "वाचन"])},
        optional={
            "subject_id": st.one_of(st.text(min_size=1, max_size=30), bson_values()),
            "audio_url": st.one_of(st.just("s3://nipun-audio/a.m4a"), st.text(max_size=60), bson_values()),
            "subject_created_at": st.one_of(good_time, bson_values()),
        },
    )


def source_documents() -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "_id": st.one_of(_bson_scalars().filter(lambda v: not isinstance(v, (list, type(None))))),
            "student_id": bson_values(),
            "udise": bson_values(),
        },
    )


def valid_message() -> st.SearchStrategy:
    t = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(UTC))

    def build(doc_id: str, sid: str, url: str, created: dt.datetime, student: str | None) -> dict:
        return {
            "source_collection": "student_assessment_record",
            "mongo_doc_id": doc_id,
            "test_date": "2025-12-20",
            "record_type": "teacher",
            "subject_id": sid,
            "subject_name": "वाचन",
            "audio_s3_url": url,
            "source_updated_at": created.isoformat(),
            "subject_created_at": created.isoformat(),
            "student_id": student,
            "udise": None,
            "trace_id": str(uuid.uuid4()),
            "discovered_at": created.isoformat(),
        }

    return st.builds(
        build,
        st.text(min_size=1, max_size=30).filter(str.strip),
        st.text(min_size=1, max_size=30).filter(str.strip),
        st.just("https://cdn.example/a.wav"),
        t,
        st.one_of(st.none(), st.text(max_size=20)),
    )


def json_values() -> st.SearchStrategy:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=10,
    )


@st.composite
def message_bodies(draw: st.DrawFn) -> str | bytes:
    """Valid bodies, valid bodies with one field mutated / removed / added, and hostile text."""
    kind = draw(st.sampled_from(["valid", "mutated", "removed", "extra", "text", "bytes", "deep", "dates"]))
    msg = draw(valid_message())
    if kind == "mutated":
        msg[draw(st.sampled_from(MESSAGE_FIELDS))] = draw(json_values())
    elif kind == "removed":
        msg.pop(draw(st.sampled_from(MESSAGE_FIELDS)))
    elif kind == "extra":
        msg[draw(st.text(min_size=1, max_size=10))] = draw(json_values())
    elif kind == "dates":
        field = draw(st.sampled_from(["test_date", "subject_created_at", "source_updated_at", "discovered_at"]))
        msg[field] = draw(
            st.sampled_from(
                [
                    "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-01:00",
                    "2025-W51-6",
                    "2025-12-20\n",
                    "nan",
                    "2025-02-30",
                    "+002025-12-20",
                    "2025-12-20T25:00:00+00:00",
                    "2025-12-20T00:00:00+24:00",
                ]
            )
        )
    elif kind == "text":
        return draw(st.text(max_size=200))
    elif kind == "bytes":
        return draw(st.binary(max_size=200))
    elif kind == "deep":
        return draw(st.sampled_from("[{")) * draw(st.integers(100, 30_000))
    return json.dumps(msg, ensure_ascii=draw(st.booleans()))


def urls() -> st.SearchStrategy:
    """The allowlist's URL forms, hostile variants of them, and random text."""
    hosts = st.sampled_from(
        [
            "cdn.example",
            ".cdn.example",
            "a" * 70 + ".cdn.example",
            "[::1]",
            "[64:ff9b::7f00:1]",
            "127.0.0.1",
            "169.254.169.254",
            "bücher.example",
            "xn--.example",
            "cdn.example.",
            "CDN.EXAMPLE",
            "[::1",
            "",
            "nipun-audio.s3.ap-south-1.amazonaws.com",
            "s3.amazonaws.com",
            "u:pw-secret@cdn.example",
        ]
    )
    schemes = st.sampled_from(["https://", "http://", "s3://", "file://", "ftp://", "", "HTTPS://", "gopher://"])
    paths = st.one_of(st.just("/a.wav"), st.text(max_size=40).map(lambda t: "/" + t))
    queries = st.one_of(
        st.just(""),
        st.just("?X-Amz-Signature=sig-secret&password=pw-secret"),
        st.text(max_size=20).map(lambda t: "?" + t),
    )
    composed = st.builds(lambda s, h, p, q: s + h + p + q, schemes, hosts, paths, queries)
    return st.one_of(composed, st.text(max_size=120))
