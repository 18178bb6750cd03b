"""The enqueue log: one insert per page, a re-sent row's mark moved to the new time."""

from __future__ import annotations

import datetime as dt

from anomaly_cli.contract import normalize_subject_row
from anomaly_cli.discovery.enqueue_log import EnqueueLog
from tests.discovery.conftest import assessment, student_doc, subject


def rows(n: int, start: int = 0):
    out = []
    for i in range(start, start + n):
        doc = student_doc(
            assessment(teacher=[subject(sid=f"s{i}", created=dt.datetime(2025, 12, 20, 5, tzinfo=dt.timezone.utc))])
        )
        row = normalize_subject_row(
            mongo_doc_id=doc["_id"],
            record_type="teacher",
            raw=doc["assessments"][0]["teacher_record"]["subjects"][0],
            student=doc,
            now=dt.datetime(2025, 12, 20, 6, tzinfo=dt.timezone.utc),
        )
        out.append((f"rid-{i}", row))
    return out


def test_new_rows_are_one_insert_and_a_resent_row_gets_the_new_time(mongo):
    log = EnqueueLog(mongo["nipun"]["anomaly_enqueue_log"])
    t1 = dt.datetime(2025, 12, 20, 6, tzinfo=dt.timezone.utc)
    t2 = t1 + dt.timedelta(hours=2)
    log.record("2025-12-20", rows(5), t1)
    log.record("2025-12-20", rows(3, start=3), t2)  # rid-3 and rid-4 sent again, rid-5 new
    marks = {d["_id"]: d["enqueued_at"] for d in mongo["nipun"]["anomaly_enqueue_log"].find({})}
    assert len(marks) == 6
    assert {k for k, v in marks.items() if v == t2} == {"rid-3", "rid-4", "rid-5"}
    assert log.logged([f"rid-{i}" for i in range(7)], since=t1 + dt.timedelta(hours=1)) == {"rid-3", "rid-4", "rid-5"}
