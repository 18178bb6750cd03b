"""Existing-result lookup by _id or by natural key."""

import datetime as dt

from anomaly_cli.results.lookup import existing_results


def test_found_by_id_or_by_natural_key(mongo):
    coll = mongo.db.results
    coll.insert_one(
        {
            "_id": "id-a",
            "source": {
                "mongo_doc_id": "d1",
                "test_date": dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc),
                "record_type": "teacher",
                "subject_id": "s1",
            },
        }
    )
    # an old result made with another id recipe: only the natural key matches
    coll.insert_one(
        {
            "_id": "legacy-xyz",
            "source": {
                "mongo_doc_id": "d2",
                "test_date": dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc),
                "record_type": "admin",
                "subject_id": "s9",
            },
        }
    )
    keys = [
        ("id-a", ("d1", "2025-12-20", "teacher", "s1")),
        ("id-b", ("d2", "2025-12-20", "admin", "s9")),
        ("id-c", ("d2", "2025-12-20", "teacher", "s9")),  # other record type: not a match
        ("id-d", ("d1", "2025-12-21", "teacher", "s1")),  # other date: not a match
    ]
    assert existing_results(coll, keys) == {"id-a", "id-b"}
    assert existing_results(coll, []) == set()
