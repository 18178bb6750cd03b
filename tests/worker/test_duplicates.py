"""Duplicates within a test date, through the worker: exact copies and re-encoded copies are
flagged once, on the later recording; different children are not."""

from __future__ import annotations

from anomaly_cli.worker.shutdown import AnyOf, MaxMessages
from tests.worker.conftest import make_item


def test_exact_and_reencoded_copies_are_flagged_once_on_the_later_recording(rig, recordings):
    srv = rig.server
    exact_early = make_item(srv.put("/e1.wav", recordings["child2.wav"]), n=1, student_id="A")
    exact_late = make_item(srv.put("/e2.wav", recordings["child2.wav"]), n=5, student_id="B")
    orig = make_item(srv.put("/o.wav", recordings["child0.wav"]), n=2, student_id="C")
    reenc = make_item(srv.put("/o.m4a", recordings["child0.m4a"]), n=6, student_id="D")
    other1 = make_item(srv.put("/x1.wav", recordings["child1.wav"]), n=3, student_id="E")
    other3 = make_item(srv.put("/x3.wav", recordings["child3.wav"]), n=4, student_id="F")
    # the later recordings arrive first: they gain the flag when the earlier ones are screened
    for it in (exact_late, reenc, other1):
        rig.send(it)
    rig.run(policy=AnyOf((MaxMessages(3),)))
    for it in (exact_early, orig, other3):
        rig.send(it)
    report = rig.run(policy=AnyOf((MaxMessages(3),)))

    def codes(it):
        return rig.results.find_one({"_id": it.result_id})["inference"]

    assert codes(exact_late)["reason_codes"].count("duplicate") == 1
    assert codes(exact_late)["duplicate_of"] == [exact_early.result_id]
    assert codes(reenc)["reason_codes"].count("duplicate") == 1
    assert codes(reenc)["duplicate_of"] == [orig.result_id]
    for it in (exact_early, orig, other1, other3):
        assert "duplicate" not in codes(it)["reason_codes"], it.audio_s3_url
    assert report.stats["duplicates_flagged"] == 2
