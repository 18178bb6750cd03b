"""The embedded double's fast ``$in`` answers exactly as the double's own operator does.

Property (Hypothesis): for any field value (missing, a scalar or an array of ints, strs, bools,
floats, None, documents) and any list of values long enough to take the fast path, the fast
``$in`` and ``$nin`` agree with mongomock-ng's ``_in_op``; and through a real query on the double
the fast path returns the documents a field-by-field check says match.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from mongomock_ng import filtering

from anomaly_cli.adapters.embedded import MIN_VALUES, fast_in
from anomaly_cli.adapters.mongo import connect

scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["a", "b", "1"]),
    st.booleans(),
    st.sampled_from([1.0, 2.5, -0.0]),
    st.none(),
    st.just({"a": 1}),
)
plain = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "1"]))
doc_values = st.one_of(st.just(filtering.NOTHING), scalars, st.lists(scalars, max_size=6))
value_lists = st.one_of(
    st.lists(plain, min_size=MIN_VALUES, max_size=MIN_VALUES + 8),
    st.lists(scalars, min_size=MIN_VALUES, max_size=MIN_VALUES + 8),
    st.lists(scalars, max_size=4),
)


@settings(max_examples=400, deadline=None)
@given(doc_val=doc_values, search_val=value_lists)
def test_fast_in_agrees_with_the_double(doc_val, search_val):
    fast = fast_in(filtering._in_op)
    assert fast(doc_val, search_val) == filtering._in_op(doc_val, search_val)
    # a second call with the same list object takes the cached set
    assert fast(doc_val, search_val) == filtering._in_op(doc_val, search_val)


def test_a_bool_takes_the_doubles_own_path():
    """True hashes as 1: the set would say whatever Python says, so a bool goes to the double."""
    seen = []

    def original(dv, sv):
        seen.append(dv)
        return filtering._in_op(dv, sv)

    fast = fast_in(original)
    ints = list(range(MIN_VALUES + 1))
    assert fast([True], ints) == filtering._in_op([True], ints)
    assert seen == [[True]]
    assert fast([1], ints) is True and seen == [[True]]  # plain ints: the set, not the double


def test_query_on_the_embedded_double_finds_what_a_field_check_finds():
    coll = connect("mongomock://test-embedded-in").db.results
    coll.delete_many({})
    day = dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc)
    docs = [{"_id": str(i), "d": day, "keys": list(range(i * 10, i * 10 + 30))} for i in range(50)]
    coll.insert_many(docs)
    query = list(range(100, 140))
    got = {d["_id"] for d in coll.find({"d": day, "keys": {"$in": query}}, {"_id": 1})}
    want = {d["_id"] for d in docs if set(d["keys"]) & set(query)}
    assert got == want and want  # non-empty: the query did hit something
    none = {d["_id"] for d in coll.find({"keys": {"$nin": query}}, {"_id": 1})}
    assert none == {d["_id"] for d in docs} - want


def test_aggregate_reads_only_what_its_leading_match_selects_and_answers_the_same():
    """The pre-filtered aggregate returns what the double's own pipeline returns (ranking included)."""
    import mongomock_ng

    coll = connect("mongomock://test-embedded-agg").db.results
    coll.delete_many({})
    day = dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc)
    coll.insert_many([{"_id": str(i), "d": day if i % 3 else None, "keys": list(range(i, i + 30))} for i in range(60)])
    pipeline = [
        {"$match": {"d": day, "keys": {"$in": list(range(20, 45))}}},
        {"$addFields": {"n": {"$size": {"$setIntersection": ["$keys", list(range(20, 45))]}}}},
        {"$sort": {"n": -1, "_id": 1}},
        {"$limit": 7},
        {"$project": {"_id": 1, "n": 1}},
    ]
    plain = mongomock_ng.MongoClient(tz_aware=True).db.results
    plain.insert_many(list(coll.find()))
    from mongomock_ng import aggregate as agg

    want = list(agg.process_pipeline(list(plain.find()), plain.database, pipeline, None))
    assert list(coll.aggregate(pipeline)) == want and len(want) == 7
    grouped = [{"$group": {"_id": None, "n": {"$sum": 1}}}]  # no leading $match: the double's own path
    assert list(coll.aggregate(grouped)) == [{"_id": None, "n": 60}]
