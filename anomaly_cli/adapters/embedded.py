"""Keeps the embedded MongoDB double (mongomock-ng) usable for the demo's duplicate lookups.

The double evaluates every query by scanning the collection, and its ``$in`` compares each
array element of a document with each listed value through a generic BSON equality
(``O(len(array) * len(values))`` Python calls per document). The duplicate lookup asks
``{audio.fp_bands: {$in: <~1000 keys>}}`` against documents holding ~250 keys each, so one lookup
over 200 results took 9-12 s (measured on an idle machine: 200 documents of 300 random keys,
1000 keys asked; 6 ms with the set lookup, the ranking aggregation 80 ms) and ``anomaly demo``
went from 40 s to more than 10 minutes (``bench/bench_demo.py``). A real MongoDB answers the same
query from the multikey index.

:func:`speed_up_double` replaces the double's ``$in`` / ``$nin`` with a set lookup **where the
answer is the same by construction**: every listed value is a plain ``int`` or ``str`` (not
``bool``, whose BSON type differs from int's though Python hashes them alike) and so is every
value of the document's field. Anything else (floats, ``None``, documents, regexes, a missing
field) goes to the double's own operator unchanged.

It also makes the double's ``aggregate`` read only the documents its leading
``$match`` selects (the double copies the *whole collection* into every pipeline first: the
ranking aggregation cost O(results) copies per lookup, 40 % of the demo's screening). The
``$match`` stays in the pipeline, so the answer is the double's own; only what it reads shrinks.

Reading many results (``anomaly results report`` over 10^5 of them, ``bench/bench_report.py``)
met four more of the double's costs, each replaced by a cheaper way to the same answer:

- **the cursor re-slices its result list for every document** (``Cursor.__next__`` takes
  ``results[skip:][:limit]`` and indexes it: O(n^2) for a cursor of n documents, more than half of
  reading 10^5). :func:`_indexed_next` indexes ``results[skip + emitted]`` instead.
- **``batch_size`` is ignored**: the double builds the list of every projected document before
  handing out the first. With a ``batch_size`` (``find(..., batch_size=n)`` or
  ``cursor.batch_size(n)``) the cursor now produces its documents ``n`` at a time, as a server
  sends batches, so a streamed read holds one batch, not the result set. The documents are the
  double's own (its ``_get_dataset`` generator, its time-zone step); what differs is only *when*
  a document is filtered and copied, which a server does not promise either (writes made while a
  cursor is read may or may not be seen). Without a ``batch_size`` nothing changes.
- **every query evaluates the double's generic matcher on every document** (~15 us each). For a
  filter of plain conditions only (``{field.path: value}``, ``{field.path: {$gt/$gte/$lt/$lte:
  value}}`` or ``{field.path: {$in: [values]}}`` with str, int or naive-datetime values, as the
  result indexes' queries are)
  :func:`decide` answers from the document when it can tell (the field missing, or holding a
  value of the query's own type, or a list of such for equality) and asks the double's matcher
  otherwise; it never answers where the double would raise, since such filters are not planned.
- **the projection is recombined and each leaf copied through ``copy.copy`` for every document**:
  the combined projection spec is cached per spec, and immutable leaves (str, int, float, bool,
  None, bytes, datetime) are returned as they are (``copy.copy`` returns the same object for all
  but datetime, whose copy is an equal new object).

``tests/adapters/test_embedded_in.py`` checks all of these against the double's own code
(Hypothesis; :func:`doubles_own_code` puts the originals back for a comparison). Nothing outside
the embedded backend is touched: pymongo never sees this. Measured with ``bench/bench_demo.py``:
the demo back to 41 s (60 s with the ``$in`` alone, > 10 min before); with ``bench/bench_report.py``
the figures are in BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import Any

#: Value lists shorter than this keep the double's own loop (nothing to win).
MIN_VALUES = 16
_PLAIN = (int, str)
_installed = False
#: (owner, name, original, replacement) of every patch, for :func:`doubles_own_code`.
_PATCHES: list[tuple[Any, str, Any, Any]] = []


def _plain(v: object) -> bool:
    return type(v) in _PLAIN  # exact types: bool is an int subclass and must not take this path


def fast_in(original: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """``$in`` answered with a set where every value is a plain int or str, else ``original``."""
    # the value list seen last and its set (a query passes one list object for every document);
    # one tuple in a cell, so a thread reads a consistent pair
    last: list[tuple[Any, frozenset[Any] | None]] = [(None, None)]

    def _in(doc_val: Any, search_val: Any) -> bool:
        if not isinstance(search_val, (list, tuple)) or len(search_val) < MIN_VALUES:
            return original(doc_val, search_val)
        cached_list, cached_set = last[0]
        if cached_list is search_val:
            values = cached_set
        else:
            values = frozenset(search_val) if all(_plain(v) for v in search_val) else None
            last[0] = (search_val, values)
        if values is None:
            return original(doc_val, search_val)
        items = doc_val if isinstance(doc_val, list) else [doc_val]
        if not items or not all(_plain(x) for x in items):
            return original(doc_val, search_val)
        # a whole array never equals a plain scalar, so only the elements can match
        return any(x in values for x in items)

    return _in


def speed_up_double() -> None:
    """Install the speed-ups described above into the double (idempotent; called under the
    adapter's lock when the first embedded client is made)."""
    global _installed
    if _installed:
        return
    from mongomock_ng import collection, filtering

    ops = filtering._filterer_inst._operator_map
    fast = fast_in(filtering._in_op)
    _patch(ops, "$in", fast)
    _patch(ops, "$nin", lambda dv, sv: not fast(dv, sv))
    coll, cursor = collection.Collection, collection.Cursor
    _patch(coll, "aggregate", _prefiltered(coll.aggregate))
    _patch(coll, "_iter_documents", _decided_iter(coll._iter_documents))
    _patch(coll, "find", _find_with_batches(coll.find))
    _patch(cursor, "__next__", _streamed_next(cursor.__next__))
    _patch(cursor, "next", cursor.__next__)
    _patch(cursor, "rewind", _rewind(cursor.rewind))
    _patch(cursor, "batch_size", _batch_size)
    _patch(collection, "_combine_projection_spec", _cached_spec(collection._combine_projection_spec))
    _patch(collection, "_copy_field", _copy_field)
    _installed = True


def _patch(owner: Any, name: str, replacement: Any) -> None:
    original = owner[name] if isinstance(owner, dict) else getattr(owner, name)
    _PATCHES.append((owner, name, original, replacement))
    _set(owner, name, replacement)


def _set(owner: Any, name: str, value: Any) -> None:
    if isinstance(owner, dict):
        owner[name] = value
    else:
        setattr(owner, name, value)


@contextlib.contextmanager
def doubles_own_code() -> Iterator[None]:
    """The double's own code for the duration (tests compare the speed-ups' answers with it;
    not thread-safe, and not for use while another thread queries the double)."""
    for owner, name, original, _ in reversed(_PATCHES):
        _set(owner, name, original)
    try:
        yield
    finally:
        for owner, name, _, replacement in _PATCHES:
            _set(owner, name, replacement)


# --- the cursor ----------------------------------------------------------------------------------
def _indexed_next(self: Any) -> Any:
    """``Cursor.__next__`` without re-slicing: ``results[skip + emitted]`` (the same document)."""
    from mongomock_ng.collection import _cast_document_class

    skip, emitted = self._skip, self._emitted
    if self._limit and emitted >= abs(self._limit):
        raise StopIteration
    results = self._compute_results()
    if skip + emitted >= len(results):
        raise StopIteration
    self._emitted = emitted + 1
    return _cast_document_class(results[skip + emitted], self.collection.codec_options.document_class)  # type: ignore[no-untyped-call]


class _Stream:
    """A cursor's documents produced ``batch`` at a time from the double's own generator."""

    __slots__ = ("batch", "buffer", "docs", "factory", "limit", "pos", "skip")

    def __init__(self, cursor: Any, batch: int) -> None:
        self.factory, self.skip, self.limit, self.batch = cursor._factory, cursor._skip, cursor._limit, batch
        self.docs = cursor._factory()  # the double's _get_dataset: filter, sort, projection, lazily
        for _ in itertools.islice(self.docs, self.skip):
            pass
        self.buffer: list[Any] = []
        self.pos = 0

    def fresh_for(self, cursor: Any) -> bool:
        return self.factory is cursor._factory and self.skip == cursor._skip and self.limit == cursor._limit


def _streamed_next(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from mongomock_ng import helpers
    from mongomock_ng.collection import _cast_document_class

    def next_document(self: Any) -> Any:
        skip = self._skip
        if type(skip) is not int or skip < 0:  # what slicing means there is the double's business
            return original(self)
        state = self.__dict__.get("_anomaly_stream")
        batch = self.__dict__.get("_anomaly_batch", 0)
        if state is None and batch and self._emitted == 0 and self._results is None:
            state = self._anomaly_stream = _Stream(self, batch)
        if state is None:
            return _indexed_next(self)
        if not state.fresh_for(self):  # sort/skip/limit changed while reading: the double's own way
            self._anomaly_stream = None
            return _indexed_next(self)
        if self._limit and self._emitted >= abs(self._limit):
            raise StopIteration
        if state.pos == len(state.buffer):
            chunk = list(itertools.islice(state.docs, state.batch))
            if self.collection.codec_options.tz_aware:
                chunk = [helpers.make_datetime_timezone_aware_in_document(d) for d in chunk]  # type: ignore[no-untyped-call]
            state.buffer, state.pos = chunk, 0
            if not chunk:
                raise StopIteration
        doc = state.buffer[state.pos]
        state.buffer[state.pos] = None  # the batch is released as it is read
        state.pos += 1
        self._emitted += 1
        return _cast_document_class(doc, self.collection.codec_options.document_class)  # type: ignore[no-untyped-call]

    return next_document


def _rewind(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def rewind(self: Any) -> Any:
        self.__dict__.pop("_anomaly_stream", None)
        return original(self)

    return rewind


def _batch_size(self: Any, count: int) -> Any:
    """``cursor.batch_size(n)``: the documents are produced ``n`` at a time (0: all at once)."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise TypeError("batch_size must be a non-negative integer")
    self._anomaly_batch = count
    return self


def _find_with_batches(original: Callable[..., Any]) -> Callable[..., Any]:
    def find(self: Any, *args: Any, **kwargs: Any) -> Any:
        batch = kwargs.get("batch_size") or 0
        cursor = original(self, *args, **kwargs)
        if batch:
            _batch_size(cursor, batch)
        return cursor

    return find


# --- the matcher ---------------------------------------------------------------------------------
_RANGE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_MISSING = object()
_UNSURE = object()
#: One condition: (path, None, value) for equality, (path, ((op, bound), ...), None) for a range,
#: (path, None, frozenset(values)) for ``$in``.
Condition = tuple[tuple[str, ...], tuple[tuple[Callable[[Any, Any], bool], Any], ...] | None, Any]


def _decidable(v: object) -> bool:
    t = type(v)
    return t is str or t is int or (t is dt.datetime and isinstance(v, dt.datetime) and v.tzinfo is None)


def plan(search_filter: object) -> tuple[Condition, ...] | None:
    """The filter's conditions when it has only plain ones (see the module's docstring), else None."""
    if type(search_filter) is not dict or not search_filter:
        return None
    conds: list[Condition] = []
    for key, want in search_filter.items():
        if type(key) is not str or not key or key.startswith("$"):
            return None
        path = tuple(key.split("."))
        if "" in path:
            return None
        if _decidable(want):
            conds.append((path, None, want))
        elif type(want) is dict and want and all(op in _RANGE for op in want) and all(map(_decidable, want.values())):
            conds.append((path, tuple((_RANGE[op], b) for op, b in want.items()), None))
        elif (
            type(want) is dict
            and list(want) == ["$in"]
            and type(want["$in"]) is list
            and all(map(_decidable, want["$in"]))
        ):
            conds.append((path, None, frozenset(want["$in"])))
        else:
            return None
    return tuple(conds)


def _same_kind(x: object, want: object) -> bool:
    return type(x) is type(want) and (not isinstance(x, dt.datetime) or x.tzinfo is None)


def decide(conds: tuple[Condition, ...], doc: object) -> bool | None:
    """True/False where the document's values settle it, None where the double's matcher must.

    The double's matcher goes through the conditions in the filter's order and stops at the first that
    fails; so a condition that fails after an unsure one is the double's to judge too (its own answer
    there may be an error, e.g. a naive against an aware datetime), never a decided False."""
    unsure = False
    for path, ranges, want in conds:
        x: Any = doc
        for part in path:
            if type(x) is not dict:
                x = _UNSURE
                break
            x = x.get(part, _MISSING)
            if x is _MISSING:
                break
        if x is _MISSING:
            # neither an equality with a non-null value nor a range matches a missing field
            return None if unsure else False
        if x is _UNSURE:
            unsure = True
        elif type(want) is frozenset:  # $in of plain values: the value, or an element of the list, among them
            items = x if type(x) is list else (x,)
            if all(map(_decidable, items)):
                if not any(e in want for e in items):
                    return None if unsure else False
            else:
                unsure = True
        elif ranges is None:
            if _same_kind(x, want):
                if x != want:
                    return None if unsure else False
            elif type(x) is list and all(_same_kind(e, want) for e in x):
                if want not in x:
                    return None if unsure else False
            else:
                unsure = True
        elif all(_same_kind(x, b) for _, b in ranges):
            if not all(op(x, b) for op, b in ranges):
                return None if unsure else False
        elif type(x) is list and all(_same_kind(e, b) for e in x for _, b in ranges):
            if not all(any(op(e, b) for e in x) for op, b in ranges):  # each bound met by some element
                return None if unsure else False
        else:
            unsure = True
    return None if unsure else True


def _decided_iter(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    from mongomock_ng.filtering import filter_applies

    def _iter_documents(self: Any, search_filter: Any) -> Any:
        conds = plan(search_filter)
        if conds is None:
            return original(self, search_filter)
        original(self, search_filter)  # the double's profiler record and checks; its generator is dropped unread

        def matches(doc: Any) -> bool:
            answer = decide(conds, doc)
            return filter_applies(search_filter, doc) if answer is None else answer  # type: ignore[no-untyped-call]

        return (doc for doc in list(self._store.documents) if matches(doc))

    return _iter_documents


# --- projection and copies -----------------------------------------------------------------------
def _cached_spec(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    cache: dict[tuple[Any, ...], Any] = {}

    def combine(spec: Any) -> Any:
        try:
            key = tuple((k, type(v), v) for k, v in spec.items())  # 1 and True hash alike: keep the type
            hash(key)
        except (AttributeError, TypeError):
            return original(spec)
        got = cache.get(key)
        if got is None:
            if len(cache) > 256:
                cache.clear()
            got = cache[key] = original(spec)  # read-only for its callers (_project_by_spec)
        return got

    return combine


_ATOMS = frozenset({str, int, float, bool, type(None), bytes, dt.datetime})


def _copy_field(obj: Any, container: Any) -> Any:
    """mongomock-ng's ``_copy_field`` with immutable leaves returned as they are."""
    if type(obj) in _ATOMS:
        return obj
    if isinstance(obj, list):
        return [_copy_field(item, container) for item in obj]
    if isinstance(obj, Mapping):
        new = container()
        for key, value in obj.items():
            new[key] = _copy_field(value, container)
        return new
    return copy.copy(obj)


def _prefiltered(original: Callable[..., Any]) -> Callable[..., Any]:
    """``aggregate`` whose input is ``find(<leading $match>)`` instead of the whole collection."""

    def aggregate(self: Any, pipeline: Any, session: Any = None, **kwargs: Any) -> Any:
        first = pipeline[0] if isinstance(pipeline, list) and pipeline else None
        if not (isinstance(first, dict) and list(first) == ["$match"] and isinstance(first["$match"], dict)):
            return original(self, pipeline, session, **kwargs)
        from mongomock_ng import aggregate as agg
        from mongomock_ng import helpers

        for param in kwargs:
            helpers.warn_noop(param, "aggregate")
        rows = list(self.find(first["$match"]))
        return agg.process_pipeline(rows, self.database, pipeline, session)  # type: ignore[no-untyped-call]

    return aggregate
