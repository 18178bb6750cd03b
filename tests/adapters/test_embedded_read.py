"""The embedded double's read speed-ups answer exactly as the double's own code does.

``speed_up_double`` changes how the double reads (see ``anomaly_cli/adapters/embedded.py``): the
matcher decides plain conditions from the document, the cursor indexes instead of re-slicing and
honours ``batch_size``, projections are combined once and immutable leaves are not copied. Each
property compares the answer with the double's own code, put back by ``doubles_own_code``: the
same collection, the same query, the same documents in the same order (``repr`` equality, so key
order and value types count too). A property that found a difference names the query.
"""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mongomock_ng import filtering

from anomaly_cli.adapters.embedded import decide, doubles_own_code, plan
from anomaly_cli.adapters.mongo import connect

NAIVE = [dt.datetime(2025, 12, 20), dt.datetime(2025, 11, 20), dt.datetime(2025, 12, 20, 6)]
AWARE = dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc)
decidable = st.one_of(st.integers(-2, 2), st.sampled_from(["", "a", "b", "duplicate"]), st.sampled_from(NAIVE))
scalars = st.one_of(
    decidable,
    st.booleans(),
    st.sampled_from([1.0, 0.0, 2.5, float("nan")]),
    st.none(),
    st.just(AWARE),
)
leaf = st.one_of(scalars, st.lists(scalars, max_size=4))
# documents two levels deep under "a" and "b", sub-documents inside lists too
values = st.recursive(leaf, lambda inner: st.dictionaries(st.sampled_from(["b", "c"]), inner, max_size=2), max_leaves=6)
documents = st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3)
paths = st.sampled_from(["a", "b", "a.b", "a.c", "a.b.c", "b.c"])
ranges = st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), decidable, min_size=1, max_size=2)
# plain filters (planned), and a few the plan refuses (the double's own matcher then)
ins = st.fixed_dictionaries({"$in": st.lists(decidable, max_size=4)})
plain_filters = st.dictionaries(paths, st.one_of(decidable, ranges, ins), min_size=1, max_size=3)
other_filters = st.dictionaries(
    paths, st.one_of(scalars, st.fixed_dictionaries({"$in": st.lists(scalars, max_size=3)})), min_size=1, max_size=2
)
filters = st.one_of(plain_filters, other_filters)


@settings(max_examples=1500, deadline=None)
@given(query=plain_filters, doc=documents)
# found by this property: "a" is unsure (the double raises comparing naive with aware), "b" is missing;
# a decided False would differ from the double's answer, which is its error
@example(query={"a": {"$gt": NAIVE[0]}, "b": 0}, doc={"a": AWARE})
def test_a_decided_answer_is_the_doubles_own(query, doc):
    conds = plan(query)
    assert conds is not None, query  # plain conditions are planned
    answer = decide(conds, doc)
    if answer is not None:
        assert answer == filtering.filter_applies(query, doc), (query, doc)


@st.composite
def query_and_near_document(draw):
    """A plain filter and a document built to meet it often (its values, lists holding them, bounds)."""
    query = draw(plain_filters)
    doc = draw(documents)
    for path, want in query.items():
        if isinstance(want, dict) and "$in" in want:
            value = draw(st.sampled_from(want["$in"])) if want["$in"] else draw(decidable)
        elif isinstance(want, dict):
            value = draw(st.sampled_from(list(want.values())))
        else:
            value = want
        value = draw(st.sampled_from([value, [value], [draw(decidable), value], draw(leaf), value]))
        node = doc
        parts = path.split(".")
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        node[parts[-1]] = value
    return query, doc


@settings(max_examples=1500, deadline=None)
@given(case=query_and_near_document())
def test_a_decided_answer_is_the_doubles_own_when_the_document_meets_it(case):
    query, doc = case
    answer = decide(plan(query), doc)
    if answer is not None:
        assert answer == filtering.filter_applies(query, doc), (query, doc)


def test_own_code_puts_the_originals_back():
    from mongomock_ng.collection import Collection, Cursor

    connect("mongomock://test-embedded-read")  # installs the speed-ups
    fast = (Cursor.__next__, Collection._iter_documents, Collection.find)
    with doubles_own_code():
        assert all(a is not b for a, b in zip(fast, (Cursor.__next__, Collection._iter_documents, Collection.find)))
    assert fast == (Cursor.__next__, Collection._iter_documents, Collection.find)


def test_the_reports_reads_are_planned_and_decided_from_the_document():
    """The report's own queries take the decided path for the report's documents (not the matcher)."""
    day = dt.datetime(2025, 12, 20)
    doc = {
        "_id": "r1",
        "source": {"test_date": day, "udise": "27251200104"},
        "inference": {"reason_codes": ["noisy", "duplicate"], "is_anomaly": True},
    }
    other = {"_id": "r2", "source": {"test_date": dt.datetime(2025, 11, 20)}, "inference": {"reason_codes": []}}
    fold = {"source.test_date": day}
    span = {"source.test_date": {"$gte": day, "$lte": day}}
    before = {"source.test_date": {"$lt": day}}
    flagged = {"source.test_date": day, "inference.reason_codes": "duplicate"}
    reused = {"source.test_date": day, "inference.reuse_of": {"$gt": ""}}
    for query, want in (
        (fold, (True, False)),
        (span, (True, False)),
        (before, (False, True)),
        (flagged, (True, False)),
    ):
        assert tuple(decide(plan(query), d) for d in (doc, other)) == want, query
    assert decide(plan(reused), doc) is False  # no reuse_of: decided without the matcher
    assert decide(plan(reused), dict(doc, inference={"reuse_of": []})) is False  # an empty list: decided too
    assert decide(plan({"_id": {"$in": ["r1", "r3"]}}), doc) is True  # the members read by _id
    assert plan({"_id": {"$in": ["r1", None]}}) is None  # null matches a missing field: the double's own matcher


def _collection(docs):
    coll = connect(f"mongomock://test-embedded-read-{uuid.uuid4().hex[:8]}").db.results
    if docs:
        coll.insert_many([dict(d, _id=i) for i, d in enumerate(docs)])
    return coll


projections = st.one_of(
    st.none(),
    st.dictionaries(paths, st.just(1), min_size=1, max_size=3),
    st.dictionaries(paths, st.just(0), min_size=1, max_size=2),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(documents, max_size=12),
    query=filters,
    projection=projections,
    skip=st.integers(0, 4),
    limit=st.integers(-3, 5),
    batch=st.sampled_from([0, 1, 2, 5]),
    sort=st.sampled_from([None, [("a", 1)], [("_id", -1)]]),
)
def test_find_returns_what_the_doubles_own_code_returns(docs, query, projection, skip, limit, batch, sort):
    coll = _collection(docs)

    def read():
        try:
            cursor = coll.find(query, projection, skip=skip, limit=limit, sort=sort, batch_size=batch)
            return repr(list(cursor))
        except Exception as e:  # noqa: BLE001 - the same error is part of the same answer
            return f"{type(e).__name__}: {e}"

    got = read()
    with doubles_own_code():
        want = read()
    assert got == want, (query, projection, skip, limit, batch, sort)


@settings(max_examples=100, deadline=None)
@given(docs=st.lists(documents, min_size=1, max_size=10), query=filters)
def test_counts_updates_and_deletes_match_the_same_documents(docs, query):
    """The decided matcher also serves count, update and delete (the double's ``_iter_documents``)."""
    answers = []
    for own in (False, True):
        coll = _collection(docs)
        try:
            if own:
                with doubles_own_code():
                    answers.append(_writes(coll, query))
            else:
                answers.append(_writes(coll, query))
        except Exception as e:  # noqa: BLE001
            answers.append(f"{type(e).__name__}: {e}")
    assert answers[0] == answers[1], query


def _writes(coll, query):
    n = coll.count_documents(query)
    updated = coll.update_many(query, {"$set": {"seen": True}}).modified_count
    deleted = coll.delete_many(query).deleted_count
    return n, updated, deleted, repr(list(coll.find({}, sort=[("_id", 1)])))


def test_a_batched_cursor_holds_one_batch_not_the_result_set():
    coll = _collection([{"a": i} for i in range(100)])
    cursor = coll.find({}, batch_size=5)
    first = next(cursor)
    assert first == {"_id": 0, "a": 0}
    assert cursor._results is None  # the double's list of every document was not built
    assert len(cursor._anomaly_stream.buffer) == 5
    assert [d["a"] for d in cursor] == list(range(1, 100))
    cursor.rewind()
    assert next(cursor)["a"] == 0  # rewound: read again from the start
    assert coll.find({}).batch_size(7).next()["a"] == 0
