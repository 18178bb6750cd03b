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

``tests/adapters/test_embedded_in.py`` checks both against the double's own code (Hypothesis for
``$in``). Nothing outside the embedded backend is touched: pymongo never sees this. Measured with
``bench/bench_demo.py``: the demo back to 41 s (60 s with the ``$in`` alone, > 10 min before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Value lists shorter than this keep the double's own loop (nothing to win).
MIN_VALUES = 16
_PLAIN = (int, str)
_installed = False


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
    """Install :func:`fast_in` into the double's query filterer and :func:`_prefiltered` as its
    ``aggregate`` (idempotent; called under the adapter's lock when the first embedded client is made)."""
    global _installed
    if _installed:
        return
    from mongomock_ng import filtering
    from mongomock_ng.collection import Collection

    ops = filtering._filterer_inst._operator_map
    original = filtering._in_op
    fast = fast_in(original)
    ops["$in"] = fast
    ops["$nin"] = lambda dv, sv: not fast(dv, sv)
    Collection.aggregate = _prefiltered(Collection.aggregate)  # type: ignore[method-assign]
    _installed = True


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
