"""A hand-computed results fixture for the report (figures worked out in the docstring of ``fill``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.ops.conftest import cli, db, make_item, put_result, screening  # noqa: F401  (cli, db: fixtures)

A, B, C, BAD = "27251200104", "27251200211", "27261400412", "12345"


def fill(db: Any) -> dict[str, Any]:  # db here is the argument, not the fixture
    """Results of 2025-12-20 (plus 2025-11-20 before it and 2025-12-21 after it).

    school     ok  anomalies (reasons)                         failed
    A          12  4 (noisy x3, noisy+clipped)                 1 not_found
    B          10  2 (silent, duplicate of A's #5)             0
    C           3  2 (no_speech x2)                            0
    "12345"     2  0                                           1 undecodable   (does not parse)
    (none)      1  0                                           0               (no udise)
    -> total 30, ok 28, failed 2, anomalies 8 (8/28); districts 27-25 = A+B (22 ok, 6), 27-26 = C (3, 2),
       ? = 3 ok; ranked at min 10: district 27-25, block 27-25-12, schools A (4/12) then B (2/10).
    2025-11-20: school A, 5 ok, 1 noisy.   2025-12-21: one anomaly (outside the range).
    """
    n = iter(range(1000))
    ids: dict[str, Any] = {}

    def put(udise: Any, scr: Any, date: str = "2025-12-20", name: str | None = None) -> dict[str, Any]:
        doc = put_result(db, dataclasses.replace(make_item(next(n), test_date=date), udise=udise), scr)
        if name:
            ids[name] = doc
        return doc

    for i in range(12):
        reasons = ("noisy",) if i < 3 else ("noisy", "clipped") if i == 3 else ()
        put(A, screening(reasons=reasons), name=f"A{i}")
    put(A, screening(failed="not_found"))
    put(B, screening(reasons=("silent",)))
    dup = put(B, screening(reasons=("duplicate",)), name="B1")
    db["anomaly_detection_results"].update_one(
        {"_id": dup["_id"]}, {"$set": {"inference.duplicate_of": [ids["A5"]["_id"]]}}
    )
    for _ in range(8):
        put(B, screening())
    put(C, screening(reasons=("no_speech",)))
    put(C, screening(reasons=("no_speech",)))
    put(C, screening())
    put(BAD, screening())
    put(BAD, screening())
    put(BAD, screening(failed="undecodable"))
    put(None, screening())
    for i in range(5):
        put(A, screening(reasons=("noisy",) if i == 0 else ()), date="2025-11-20")
    put(A, screening(reasons=("silent",)), date="2025-12-21")
    return ids


@pytest.fixture
def filled(db: Any) -> dict[str, Any]:  # the ops kit's db fixture
    return fill(db)
