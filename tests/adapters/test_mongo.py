"""The Mongo adapter's unordered writes: a duplicate key is an answer (someone got there first),
any other refused operation is an error of the project's tree."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import BulkWriteError

from anomaly_cli.adapters.mongo import DUPLICATE_KEY, insert_many_new, unordered_write
from anomaly_cli.errors import MongoWriteFailed


def test_insert_many_new_keeps_what_exists_and_says_which(mongo: Any) -> None:
    # GIVEN a collection holding _id 2, WHEN 1, 2 and 3 are inserted unordered
    coll = mongo["db"]["log"]
    coll.insert_one({"_id": 2, "mark": "first"})
    existed = insert_many_new(coll, [{"_id": 1}, {"_id": 2, "mark": "second"}, {"_id": 3}], what="test write")
    # THEN 2 is reported as existing and keeps its first document; the others are written
    assert existed == {2}
    assert coll.find_one({"_id": 2})["mark"] == "first"
    assert sorted(d["_id"] for d in coll.find()) == [1, 2, 3]


def test_a_refusal_other_than_a_duplicate_key_is_mongo_write_failed() -> None:
    # GIVEN a bulk write whose second operation fails document validation (code 121) and first is a duplicate
    def write() -> None:
        raise BulkWriteError(
            {
                "writeErrors": [
                    {"index": 0, "code": DUPLICATE_KEY, "errmsg": "E11000 duplicate key"},
                    {"index": 1, "code": 121, "errmsg": "Document failed validation"},
                ]
            }
        )

    # THEN the caller gets the project's error, naming the operation and the server's reason
    with pytest.raises(MongoWriteFailed, match="test write: Document failed validation"):
        unordered_write(write, what="test write")


def test_claims_of_another_worker_are_not_taken(mongo: Any) -> None:
    from anomaly_cli.worker.claims import Claims

    # GIVEN worker a holding live claims on r1 and r2, WHEN worker b claims r2 and r3
    a = Claims(mongo["db"]["claims"], "worker-a", 60)
    b = Claims(mongo["db"]["claims"], "worker-b", 60)
    assert a.claim(["r1", "r2"]) == {"r1", "r2"}
    # THEN b holds only r3 (its upsert on r2 hit a's claim as a duplicate key)
    assert b.claim(["r2", "r3"]) == {"r3"}
