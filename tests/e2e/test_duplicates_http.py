"""Duplicate uploads through the real ``discover`` and worker over HTTP (moto server): an exact copy
of a silent recording, a trimmed MP3 copy, a 12 s cut of a longer recording behind 2 s of silence
(Vorbis) are flagged on the later row whatever their screening outcome; the teacher and admin rows
of one student sharing a recording is re-use (informational); ``results inspect`` and ``results
dedupe`` count the same clusters afterwards."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from anomaly_cli import synth
from anomaly_cli.audio.formats import encode
from tests.e2e.test_pipeline_http import UTC, add_students, cli, run_worker
from tests.faults.crashkit import CountingScreen


def _speech(seed: int, seconds: float) -> tuple[np.ndarray, int]:
    clip = synth.make_clip("normal", np.random.default_rng(seed), variant="plain", duration_s=seconds)
    return clip.samples, clip.sr


def test_copies_of_any_outcome_trims_cuts_and_reuse_through_discover_and_work(stack, monkeypatch, loaded_model):
    t0 = dt.datetime(2025, 12, 20, 4, tzinfo=UTC)
    a, sr = _speech(301, 8.0)
    b, _ = _speech(302, 12.0)
    c, _ = _speech(303, 30.0)
    silent = synth.make_item("silent", np.random.default_rng(5)).data
    own = encode(a, sr, "wav")
    planted = {
        0: own,  # student 0, teacher row
        1: own,  # student 0, admin row: the same recording (re-use within one student)
        2: silent,  # student 1
        4: silent,  # student 2: byte copy of a silent recording
        6: encode(b, sr, "wav"),  # student 3
        8: encode(b[int(0.5 * sr) :], sr, "mp3"),  # student 4: 0.5 s trimmed, MP3
        10: encode(c, sr, "wav"),  # student 5
        12: encode(np.concatenate([np.zeros(2 * sr, np.float32), c[9 * sr : 21 * sr]]), sr, "ogg"),  # student 6
    }
    add_students(stack, 0, 8, t0, planted=planted)  # 16 rows
    r = cli(stack, monkeypatch, "discover", "--mode", "backfill", "--batch-size", "5", "--json")
    assert r.exit_code == 0, r.output and json.loads(r.stdout)["enqueued"] == 16
    rep = run_worker(stack, loaded_model, CountingScreen(loaded_model), 16)
    assert rep.error is None

    results = stack.db["anomaly_detection_results"]
    by_sub = {d["source"]["subject_id"]: d for d in results.find({})}
    assert len(by_sub) == 16

    def inf(sub: str) -> dict:
        return by_sub[sub]["inference"]

    expect = {"sub-2-t": "sub-1-t", "sub-4-t": "sub-3-t", "sub-6-t": "sub-5-t"}
    for later, earlier in expect.items():
        assert inf(later)["duplicate_of"] == [by_sub[earlier]["_id"]], (later, inf(later))
        assert inf(later)["reason_codes"].count("duplicate") == 1
    flagged = {s for s in by_sub if inf(s)["duplicate_of"]}
    assert flagged == set(expect), flagged  # nothing else: different children's readings never link
    assert (
        inf("sub-0-a")["reuse_of"] == [by_sub["sub-0-t"]["_id"]] and "duplicate" not in inf("sub-0-a")["reason_codes"]
    )
    assert not any(inf(s)["reuse_of"] for s in by_sub if s != "sub-0-a")

    s = json.loads(cli(stack, monkeypatch, "results", "inspect", "2025-12-20", "--json").stdout)
    assert s["duplicates"] == {"clusters": 3, "recordings": 6, "copies": 3}
    assert s["reuse"] == {"clusters": 1, "recordings": 2, "copies": 1}
    d = json.loads(cli(stack, monkeypatch, "results", "dedupe", "2025-12-20", "--dry-run", "--json").stdout)
    assert len(d["clusters"]) == 3 and d["would_flag"] == [] and len(d["reuse_clusters"]) == 1
    assert sorted(c["result_ids"] for c in d["clusters"]) == sorted(
        [by_sub[e]["_id"], by_sub[later]["_id"]] for later, e in expect.items()
    )
