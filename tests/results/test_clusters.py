"""The one definition of a duplicate cluster: connected links, original first, from flags or links."""

from __future__ import annotations

import datetime as dt

from anomaly_cli.results import clusters as C
from anomaly_cli.results.repository import DuplicateLink, ResultRepository
from tests.results.test_repository import result


def _docs(*docs):
    return {d["_id"]: d for d in docs}


def test_links_that_chain_make_one_cluster_with_the_earliest_as_original():
    a, b, c, d, e = (result(minute=m, student=f"S{m}") for m in (1, 2, 3, 4, 5))
    links = [(b["_id"], a["_id"]), (c["_id"], a["_id"]), (c["_id"], b["_id"]), (e["_id"], d["_id"])]
    got = C.build_clusters(links, _docs(a, b, c, d, e))
    assert [x.result_ids for x in got] == [(a["_id"], b["_id"], c["_id"]), (d["_id"], e["_id"])]
    assert got[0].original == a["_id"] and got[0].copies == (b["_id"], c["_id"])
    assert got[0].students == ("S1", "S2", "S3") and len(got[0].links) == 3
    assert C.ClusterSummary.of(got) == C.ClusterSummary(clusters=2, recordings=5, copies=3)


def test_a_member_deleted_since_it_was_flagged_still_counts():
    b = result(minute=2)
    (only,) = C.build_clusters([(b["_id"], "gone")], _docs(b))
    assert set(only.result_ids) == {"gone", b["_id"]} and only.members[-1].audio_url in (
        "",
        b["source"]["audio_s3_url"],
    )


def test_stored_flags_and_a_sweep_give_the_same_clusters(mongo):
    repo = ResultRepository(mongo["nipun"]["anomaly_detection_results"])
    repo.ensure_indexes()
    docs = [result(sha="X", minute=m, student=f"S{m}") for m in (3, 1, 2)] + [result(sha="Y", minute=4)]
    repo.insert_if_absent(docs)
    report = repo.dedupe_sweep("2025-12-20")
    stored = C.load_clusters(repo.collection, "2025-12-20")
    assert [c.result_ids for c in stored] == [c.result_ids for c in report.clusters]
    assert stored[0].result_ids == (docs[1]["_id"], docs[2]["_id"], docs[0]["_id"])
    assert C.load_clusters(repo.collection, "2025-12-21") == []


def test_flags_of_only_a_later_pair_still_reach_their_original(mongo):
    repo = ResultRepository(mongo["nipun"]["anomaly_detection_results"])
    a, b = result(minute=1), result(minute=2)
    repo.insert_if_absent([a, b])
    repo.flag_duplicates([DuplicateLink(b["_id"], a["_id"], "sha256")], now=dt.datetime.now(dt.timezone.utc))
    (c,) = C.load_clusters(repo.collection, "2025-12-20")
    assert c.result_ids == (a["_id"], b["_id"]) and c.members[0].mongo_doc_id == a["source"]["mongo_doc_id"]
