"""Items with a source row: the re-check before screening, and the optional backlink."""

from __future__ import annotations

import datetime as dt

from bson import ObjectId

from anomaly_cli.worker.shutdown import AnyOf, MaxMessages
from tests.worker.conftest import make_item

T0 = dt.datetime(2025, 12, 20, 5, 0, tzinfo=dt.timezone.utc)


def row(subject_id: str, url: str, minute: int = 0) -> dict:
    return {
        "subject_id": subject_id,
        "subject_name": "वाचन",
        "audio_url": url,
        "subject_created_at": T0 + dt.timedelta(minutes=minute),
    }


def seed(rig, urls: dict[str, str]) -> ObjectId:
    _id = ObjectId()
    rig.db["student_assessment_record"].insert_one(
        {
            "_id": _id,
            "student_id": "STU-1",
            "udise": "2725",
            "assessments": [
                {
                    "test_date": dt.datetime(2025, 12, 19, tzinfo=dt.timezone.utc),
                    "teacher_record": {"subjects": [row("old", "s3://x/old.wav")]},
                },
                {
                    "test_date": dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc),
                    "teacher_record": {
                        "subjects": [{"subject_id": "math", "subject_name": "गणित"}]
                        + [row(sid, url, i) for i, (sid, url) in enumerate(urls.items())]
                    },
                    "admin_record": {"subjects": []},
                },
            ],
        }
    )
    return _id


def teacher_item(doc_id: ObjectId, subject_id: str, url: str, n: int = 0):
    return make_item(
        url, n=n, record_type="teacher", mongo_doc_id=str(doc_id), subject_id=subject_id, student_id="STU-1"
    )


def test_source_gone_or_changed_is_acked_without_a_result(rig, recordings, events):
    url = rig.server.put("/a.wav", recordings["child1.wav"])
    doc_id = seed(rig, {"s-live": url, "s-moved": url + "?v=2"})
    live, changed = teacher_item(doc_id, "s-live", url, 1), teacher_item(doc_id, "s-moved", url, 2)
    deleted = teacher_item(ObjectId(), "s-gone", url, 3)
    for it in (live, changed, deleted):
        rig.send(it)

    report = rig.run(policy=AnyOf((MaxMessages(3),)))

    assert report.stats["skipped_source_gone"] == 2 and report.stats["succeeded"] == 1
    assert [d["_id"] for d in rig.results.find()] == [live.result_id]
    assert rig.screen.total == 1
    assert rig.counts() == {"visible": 0, "in_flight": 0}
    assert sorted(e["reason"] for e in events.named("item_skipped")) == ["source_gone", "source_gone"]


def test_backlink_lands_in_the_right_nested_row(rig, recordings):
    urls = {f"s{i}": rig.server.put(f"/c{i}.wav", recordings[f"child{i}.wav"]) for i in range(3)}
    doc_id = seed(rig, urls)
    items = [teacher_item(doc_id, sid, url, i) for i, (sid, url) in enumerate(urls.items())]
    for it in items:
        rig.send(it)

    rig.run(settings=rig.settings(enable_source_backlink_update=True), policy=AnyOf((MaxMessages(3),)))

    src = rig.db["student_assessment_record"].find_one({"_id": doc_id})
    subjects = src["assessments"][1]["teacher_record"]["subjects"]
    assert "anomaly" not in subjects[0]  # the maths row
    for it, sub in zip(items, subjects[1:]):
        assert sub["subject_id"] == it.subject_id
        assert sub["anomaly"]["result_id"] == it.result_id
        assert set(sub["anomaly"]) == {"result_id", "is_anomaly", "reasons", "model_version", "checked_at"}
    assert "anomaly" not in src["assessments"][0]["teacher_record"]["subjects"][0]


def test_backlink_re_resolves_a_row_that_moved(rig, recordings, mongo):
    from anomaly_cli.worker.backlink import Backlinker

    url = rig.server.put("/a.wav", recordings["child1.wav"])
    doc_id = seed(rig, {"s0": url, "s1": url + "1"})
    coll = rig.db["student_assessment_record"]
    item = teacher_item(doc_id, "s1", url + "1")

    class MovesOnce:
        """Between the first read and the write, a new row is inserted in front (the row moves)."""

        def __init__(self) -> None:
            self.reads = 0

        def find_one(self, *a, **k):
            doc = coll.find_one(*a, **k)
            self.reads += 1
            if self.reads == 1:
                coll.update_one(
                    {"_id": doc_id},
                    {
                        "$push": {
                            "assessments.1.teacher_record.subjects": {
                                "$each": [{"subject_id": "new", "subject_name": "वाचन"}],
                                "$position": 0,
                            }
                        }
                    },
                )
            return doc

        def update_one(self, *a, **k):
            return coll.update_one(*a, **k)

    moving = MovesOnce()
    landed = Backlinker(moving, dt.timezone.utc).write(
        item, {"_id": item.result_id, "inference": {"is_anomaly": False}, "processing": {"model_version": "v1"}}
    )
    subjects = coll.find_one({"_id": doc_id})["assessments"][1]["teacher_record"]["subjects"]
    assert landed and moving.reads == 2
    assert [s.get("anomaly", {}).get("result_id") for s in subjects] == [None, None, None, item.result_id]
