"""Results repository on the Mongo double: indexes, first write wins, re-screen, duplicates, sweep."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from anomaly_cli import synth
from anomaly_cli.audio import fingerprint as fp
from anomaly_cli.audio.decode import decode_bytes
from anomaly_cli.audio.formats import encode
from anomaly_cli.contract import WorkItem
from anomaly_cli.results import document as D
from anomaly_cli.results.repository import EMPTY_SHA256, ResultRepository
from anomaly_cli.screening import Reason, Screening

_n = itertools.count()


def result(
    *,
    sha=None,
    pcm=None,
    minute=0,
    doc_id=None,
    student=None,
    reasons=(),
    status="ok",
    test_date="2025-12-20",
    fingerprint=None,
    bands=(),
) -> dict:
    n = next(_n)
    sha, pcm = sha or f"sha{n}", pcm or f"pcm{n}"
    t = dt.datetime(2025, 12, 20, 5, minute, tzinfo=dt.timezone.utc)
    item = WorkItem(
        "src",
        doc_id or f"doc{n}",
        test_date,
        "teacher",
        f"sub{n}",
        "वाचन",
        f"s3://b/{n}.m4a",
        t,
        t,
        student,
        None,
        "trace",
        t,
    )
    if status == "ok":
        s = Screening(
            status="ok",
            is_anomaly=bool(reasons),
            anomaly_score=0.2,
            reasons=tuple(Reason(r) for r in reasons),
            model_version="v1",
            audio={"sha256": sha, "pcm_sha256": pcm, "fingerprint": fingerprint, "fp_bands": list(bands)},
        )
    else:
        s = Screening.failed(
            code="undecodable", message="x", stage="decode", reason="corrupt", model_version="v1", audio={"sha256": sha}
        )
    return D.build_result(item, s, worker_id="w", attempt=1)


@pytest.fixture
def repo(mongo):
    r = ResultRepository(mongo["nipun"]["anomaly_detection_results"])
    r.ensure_indexes()
    return r


def test_indexes_include_the_spec_three_and_the_duplicate_ones(repo):
    keys = [tuple(k for k, _ in v["key"]) for v in repo.collection.index_information().values()]
    assert ("source.mongo_doc_id", "source.test_date", "source.record_type", "source.subject_id") in keys
    assert ("source.test_date", "processing.processed_at") in keys
    assert ("source.test_date", "inference.is_anomaly") in keys
    for extra in ("audio.sha256", "audio.pcm_sha256", "audio.fp_bands", "inference.reason_codes"):
        assert ("source.test_date", extra) in keys


def test_first_write_wins(repo):
    first = result()
    second = dict(first, processing=dict(first["processing"], worker_id="other"))
    a = repo.insert_if_absent([first])
    b = repo.insert_if_absent([second, result()])
    assert a.inserted == (first["_id"],) and a.existed == ()
    assert b.existed == (first["_id"],) and len(b.inserted) == 1
    assert repo.collection.find_one({"_id": first["_id"]})["processing"]["worker_id"] == "w"


def test_replace_overwrites_and_counts_screens(repo):
    first = result()
    repo.insert_if_absent([first])
    again = dict(
        first,
        processing=dict(first["processing"], worker_id="rescreener"),
        created_at=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc),
    )
    rep = repo.replace([again])
    stored = repo.collection.find_one({"_id": first["_id"]})
    assert rep.replaced == (first["_id"],)
    assert stored["processing"]["worker_id"] == "rescreener" and stored["processing"]["screen_count"] == 2
    assert stored["created_at"] == first["created_at"].replace(
        microsecond=first["created_at"].microsecond // 1000 * 1000
    )


def test_exact_duplicate_flags_the_later_recording_even_when_screened_first(repo):
    early, late = result(sha="same", minute=1), result(sha="same", minute=9)
    repo.insert_if_absent([late])
    assert repo.check_duplicates([late]) == []  # nothing earlier yet
    repo.insert_if_absent([early])
    flagged = repo.check_duplicates([early])  # the earlier arrives second: the later gains the flag now
    assert flagged == [late["_id"]]
    stored_late = repo.collection.find_one({"_id": late["_id"]})
    assert stored_late["inference"]["is_anomaly"] is True
    assert stored_late["inference"]["reason_codes"] == ["duplicate"]
    assert stored_late["inference"]["duplicate_of"] == [early["_id"]]
    assert repo.collection.find_one({"_id": early["_id"]})["inference"]["reason_codes"] == []
    assert repo.check_duplicates([late, early]) == []  # idempotent: flagged once
    assert repo.collection.find_one({"_id": late["_id"]})["inference"]["reason_codes"] == ["duplicate"]


def test_copies_match_whatever_their_outcome_but_not_across_dates_or_empty_files(repo):
    """Issue 17: an exact or PCM-identical copy of a no_speech / silent / corrupt recording is
    still a copy filed under another child; only the identical-by-construction is left out."""
    base = result(sha="B", pcm="quiet", minute=1, reasons=("no_speech",))
    copies = [
        result(pcm="quiet", minute=2, reasons=("silent",)),  # same PCM, other container
        result(sha="B", minute=5, status="failed"),  # byte copy that failed to decode (corrupt)
    ]
    strangers = [
        result(pcm="quiet", minute=4, test_date="2025-12-21"),  # other test date
        result(sha=EMPTY_SHA256, minute=6),
        result(sha=EMPTY_SHA256, minute=7),  # two empty uploads: identical by construction
    ]
    repo.insert_if_absent([base] + copies + strangers)
    flagged = repo.check_duplicates([base] + copies + strangers)
    assert sorted(flagged) == sorted(c["_id"] for c in copies)
    for c in copies:
        assert repo.collection.find_one({"_id": c["_id"]})["inference"]["duplicate_of"] == [base["_id"]]
    for d in [base] + strangers:
        assert repo.collection.find_one({"_id": d["_id"]})["inference"]["duplicate_of"] == []


def test_same_student_reuse_is_its_own_informational_finding(repo, mongo):
    teacher = result(pcm="P", minute=1)
    admin = result(pcm="P", minute=2, doc_id=teacher["source"]["mongo_doc_id"])  # the same student's admin row
    repo.insert_if_absent([teacher, admin])
    assert repo.check_duplicates([admin]) == []  # not a duplicate across children
    got = repo.collection.find_one({"_id": admin["_id"]})["inference"]
    assert got["reuse_of"] == [teacher["_id"]] and got["duplicate_of"] == [] and got["is_anomaly"] is False
    assert got["reason_codes"] == []
    assert repo.collection.find_one({"_id": teacher["_id"]})["inference"]["reuse_of"] == []
    assert repo.mark_reuse([]) == [] and repo.check_duplicates([teacher]) == []  # idempotent

    strict = ResultRepository(mongo["nipun"]["strict"], reuse_is_anomaly=True)
    strict.insert_if_absent([teacher, admin])
    strict.check_duplicates([teacher, admin])
    strict.check_duplicates([admin])
    got = strict.collection.find_one({"_id": admin["_id"]})["inference"]
    assert got["is_anomaly"] is True and got["reason_codes"] == ["reused_within_student"]


def test_sweep_is_order_independent_and_dry_run_writes_nothing(repo, mongo):
    docs = [
        result(sha="A", minute=3),
        result(sha="A", minute=1),
        result(pcm="B", minute=2),
        result(pcm="B", minute=4),
        result(sha="lonely", minute=5),
    ]
    repo.insert_if_absent(docs)
    dry = repo.dedupe_sweep("2025-12-20", dry_run=True)
    assert dry.newly_flagged == [] and repo.collection.count_documents({"inference.reason_codes": "duplicate"}) == 0
    assert sorted(list(c.result_ids) for c in dry.clusters) == sorted(
        [[docs[1]["_id"], docs[0]["_id"]], [docs[2]["_id"], docs[3]["_id"]]]
    )
    assert sorted(dry.would_flag) == sorted([docs[0]["_id"], docs[3]["_id"]])

    other = ResultRepository(mongo["other"]["r"])
    other.insert_if_absent(list(reversed(docs)))
    real = repo.dedupe_sweep("2025-12-20")
    assert sorted(real.newly_flagged) == sorted([docs[0]["_id"], docs[3]["_id"]])
    assert other.dedupe_sweep("2025-12-20").newly_flagged == real.newly_flagged
    assert repo.dedupe_sweep("2025-12-20").newly_flagged == []
    assert repo.dedupe_sweep("2025-12-20", dry_run=True).would_flag == []  # all flagged already: 0 new flags


def test_sweep_reaches_results_stored_with_format_1_keys(repo):
    """A result stored before key format 2 holds format-1 keys (20-bit, untagged) in fp_bands; the
    sweep asks format-1 keys computed from each result's stored words too, so a copy screened
    after the upgrade is still linked to it (and a live lookup with format-2 keys meets nothing)."""
    x = synth.set_level(synth.formant_speech(np.random.default_rng(31), 15.0), 16000, -20.0)
    orig = fp.compute(x)
    copy, query = fp.fingerprint_and_query_keys(decode_bytes(encode(x, 16000, "mp3")).samples)
    old = result(minute=1, fingerprint=fp.to_text(orig), bands=fp.legacy_keys(orig))
    new = result(minute=2, fingerprint=fp.to_text(copy), bands=fp.band_keys(copy))
    repo.insert_if_absent([old, new])
    assert repo.find_matches(new, query) == []  # the live check asks format 2 only
    report = repo.dedupe_sweep("2025-12-20")
    assert report.newly_flagged == [new["_id"]]
    assert [(link.later, link.earlier, link.how) for link in report.links] == [(new["_id"], old["_id"], "fingerprint")]
