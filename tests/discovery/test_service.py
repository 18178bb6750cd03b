"""Discovery runs on the Mongo double and moto SQS: pages, cap, ties, modes, skips, failures."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any, Callable

import pytest

from anomaly_cli.contract import MESSAGE_FIELDS, parse_message, result_id
from anomaly_cli.discovery.state import watermark_key

from .conftest import DAY, READING, UTC, FakeClock, assessment, at, bodies, student_doc, subject

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
COLL = "student_assessment_record"


def keys(msgs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(m["mongo_doc_id"], m["record_type"], m["subject_id"]) for m in msgs]


def page_limits(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [
        r.fields["rows"]
        for r in caplog.records
        if getattr(r, "event", "") == "discovery_page_fetch_completed" and r.fields["rows"]
    ]


def events(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [getattr(r, "event", "") for r in caplog.records]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="anomaly")
    logging.getLogger("anomaly").propagate = True


def test_batch_100_cap_250_fetches_100_100_50_and_stops(
    seed_bulk: Callable,
    make_service: Callable,
    sqs_client: Any,
    queue_url: str,
    mongo: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed_bulk(200)  # 400 reading rows
    report = make_service(discovery_batch_size=100, max_records=250).run("backfill")
    assert page_limits(caplog) == [100, 100, 50]
    assert (report.pages, report.fetched, report.enqueued, report.status) == (3, 250, 250, "completed")
    # counted on the queue, and 250 distinct rows (result ids) in the enqueue log
    # (draining 400 messages from in-process moto costs seconds: its receive scans the whole queue)
    assert queue_depth(sqs_client, queue_url) == 250
    log = mongo["nipun"]["anomaly_enqueue_log"]
    assert log.count_documents({}) == 250
    # the watermark is the 250th row in order: the next incremental run starts right after it
    report2 = make_service(discovery_batch_size=100, max_records=1000).run("incremental")
    assert report2.enqueued == 150 and queue_depth(sqs_client, queue_url) == 400 and log.count_documents({}) == 400


def queue_depth(sqs_client: Any, url: str) -> int:
    attrs = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_message_contract_field_by_field(source: Any, make_service: Callable, sqs_client: Any, queue_url: str) -> None:
    doc = student_doc(
        assessment(teacher=[subject(sid="sub-8f2a", url=" s3://nipun-audio/r.m4a ", created=at(5, 41, 7))])
    )
    source.insert_one(doc)
    make_service().run("backfill")
    (msg,) = bodies(sqs_client, queue_url)
    assert list(msg) == list(MESSAGE_FIELDS)
    assert msg["source_collection"] == COLL and msg["mongo_doc_id"] == str(doc["_id"]) and msg["test_date"] == DAY
    assert msg["record_type"] == "teacher" and msg["subject_id"] == "sub-8f2a" and msg["subject_name"] == READING
    assert msg["audio_s3_url"] == "s3://nipun-audio/r.m4a"
    assert msg["source_updated_at"] == msg["subject_created_at"] == "2025-12-20T05:41:07.000+00:00"
    assert msg["student_id"] == doc["student_id"] and msg["udise"] == doc["udise"]
    assert len(msg["trace_id"]) == 36 and dt.datetime.fromisoformat(msg["discovered_at"]).utcoffset() == dt.timedelta(0)
    item = parse_message(json.dumps(msg))
    assert item.result_id == result_id(COLL, str(doc["_id"]), DAY, "teacher", "sub-8f2a", "s3://nipun-audio/r.m4a")


def test_ties_across_pages_and_one_document_with_many_rows(
    source: Any, make_service: Callable, sqs_client: Any, queue_url: str
) -> None:
    # GIVEN 7 students stamped at the very same second, one of them with 5 reading rows in one
    # record and one with the same subject id in both records, and numeric subject ids
    t = at(6)
    docs = [student_doc(assessment(teacher=[subject(created=t)])) for _ in range(5)]
    docs.append(student_doc(assessment(teacher=[subject(sid=i, created=t) for i in (10, 9, 2, 11, 1)])))
    docs.append(
        student_doc(assessment(teacher=[subject(sid="both", created=t)], admin=[subject(sid="both", created=t)]))
    )
    source.insert_many(docs)
    expected = sorted(
        (str(d["_id"]), rt, str(s["subject_id"]))
        for d in docs
        for rt, rec in (("teacher", "teacher_record"), ("admin", "admin_record"))
        for s in d["assessments"][0].get(rec, {}).get("subjects", [])
    )
    assert len(expected) == 12
    # WHEN discovered in pages of 3 with a run stopped every page and resumed incrementally
    seen: list[tuple[str, str, str]] = []
    for _ in range(10):
        make_service(discovery_batch_size=3, max_records=3).run("incremental")
        seen += keys(bodies(sqs_client, queue_url))
    # THEN every row exactly once, in the key order
    assert seen == expected


def test_rows_equal_on_the_whole_key_stay_in_one_page(
    source: Any, make_service: Callable, sqs_client: Any, queue_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    t = at(6)
    dup = subject(sid="dup", created=t)
    source.insert_one(
        student_doc(
            assessment(
                teacher=[
                    subject(sid="a", created=t),
                    dict(dup),
                    dict(dup, audio_url="s3://b/other.m4a"),
                    subject(sid="z", created=t),
                ]
            )
        )
    )
    make_service(discovery_batch_size=2).run("backfill")
    assert page_limits(caplog) == [3, 1]  # a, dup, dup (the page grows rather than split the tie), z
    assert [m["subject_id"] for m in bodies(sqs_client, queue_url)] == ["a", "dup", "dup", "z"]


def test_a_page_where_every_row_is_skipped_advances_and_continues(
    seed_bulk: Callable, make_service: Callable, mongo: Any, sqs_client: Any, queue_url: str
) -> None:
    docs = seed_bulk(10)  # 20 rows; the first 5 teacher rows are the first 5 in order
    results = mongo["nipun"]["anomaly_detection_results"]
    for d in docs[:5]:
        s = d["assessments"][0]["teacher_record"]["subjects"][0]
        results.insert_one(
            {
                "_id": result_id(COLL, str(d["_id"]), DAY, "teacher", s["subject_id"], s["audio_url"]),
                "source": {
                    "mongo_doc_id": str(d["_id"]),
                    "test_date": dt.datetime(2025, 12, 20, tzinfo=UTC),
                    "record_type": "teacher",
                    "subject_id": s["subject_id"],
                },
            }
        )
    report = make_service(discovery_batch_size=5).run("backfill")
    assert (report.skipped_existing, report.enqueued, report.pages) == (5, 15, 4)
    wm = watermark_key(mongo["nipun"]["anomaly_pipeline_state"].find_one())
    assert wm is not None and wm[2] == "admin"  # moved to the very last row


def test_existing_results_skipped_by_id_and_by_natural_key(
    source: Any, make_service: Callable, mongo: Any, sqs_client: Any, queue_url: str
) -> None:
    d = student_doc(
        assessment(
            teacher=[
                subject(sid="by-id", created=at(5)),
                subject(sid="by-key", created=at(6)),
                subject(sid="new", created=at(7)),
            ]
        )
    )
    source.insert_one(d)
    results = mongo["nipun"]["anomaly_detection_results"]
    row = d["assessments"][0]["teacher_record"]["subjects"][0]
    results.insert_one({"_id": result_id(COLL, str(d["_id"]), DAY, "teacher", "by-id", row["audio_url"]), "source": {}})
    # an old deployment's result: another _id recipe, found by its natural key
    results.insert_one(
        {
            "_id": "legacy-123",
            "source": {
                "mongo_doc_id": str(d["_id"]),
                "test_date": dt.datetime(2025, 12, 20, tzinfo=UTC),
                "record_type": "teacher",
                "subject_id": "by-key",
            },
        }
    )
    report = make_service().run("backfill")
    assert report.skipped_existing == 2
    assert [m["subject_id"] for m in bodies(sqs_client, queue_url)] == ["new"]


def test_invalid_rows_counted_by_reason_in_report_and_state(source: Any, make_service: Callable, mongo: Any) -> None:
    source.insert_one(
        student_doc(
            assessment(
                teacher=[
                    subject(sid="ok", created=at(5)),
                    subject(sid="e", url="", created=at(5, 1)),
                    subject(sid="s", created="2025-12-20 05:00"),
                    {"subject_name": READING, "audio_url": "s3://b/k", "subject_created_at": at(6)},
                ]
            )
        )
    )
    report = make_service().run("backfill")
    expected = {"empty_audio_url": 1, "subject_created_at_not_date": 1, "missing_subject_id": 1}
    assert report.enqueued == 1 and dict(report.skipped_invalid) == expected
    doc = mongo["nipun"]["anomaly_pipeline_state"].find_one()
    assert doc["stats"]["skipped_invalid"] == expected == doc["last_run"]["stats"]["skipped_invalid"]


class FlakySqs:
    """A client wrapper: the real (moto) client, with chosen entries failing per call."""

    def __init__(self, client: Any, fail: Callable[[int, dict], dict | None]):
        self._client = client
        self._fail = fail
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls += 1
        ok, failed = [], []
        for e in Entries:
            f = self._fail(self.calls, e)
            (failed if f else ok).append(f or e)
        resp = self._client.send_message_batch(QueueUrl=QueueUrl, Entries=ok) if ok else {"Successful": []}
        return {"Successful": resp.get("Successful", []), "Failed": list(resp.get("Failed", [])) + failed}


def test_partial_failure_stops_watermark_before_unsent_row_and_rerun_sends_it(
    seed_bulk: Callable,
    make_service: Callable,
    sqs_client: Any,
    queue_url: str,
    mongo: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    docs = seed_bulk(15)  # 30 rows: 15 teacher rows, then 15 admin rows; pages of 10
    doomed = docs[13]["assessments"][0]["teacher_record"]["subjects"][0]["subject_id"]  # the 14th row, on page 2
    bad_body: dict[str, Any] = {}

    def fail(call: int, entry: dict) -> dict | None:
        body = json.loads(entry["MessageBody"])
        if body["subject_id"] == doomed:  # a permanent sender fault on every attempt
            bad_body.update(body)
            return {"Id": entry["Id"], "Code": "InvalidParameterValue", "Message": "x", "SenderFault": True}
        if call == 1 and entry["Id"] == "0":  # a transient one: retried and sent
            return {"Id": entry["Id"], "Code": "InternalError", "Message": "x", "SenderFault": False}
        return None

    client = FlakySqs(sqs_client, fail)
    report = make_service(client=client, discovery_batch_size=10).run("backfill")
    assert report.partial and report.failed == 1 and report.status == "failed" and report.enqueued == 19
    assert dict(report.failure_codes) == {"InvalidParameterValue": 1}
    assert "enqueue_batch_failed" in events(caplog)
    first = bodies(sqs_client, queue_url)
    assert len(first) == 19 and (bad_body["mongo_doc_id"], bad_body["record_type"], bad_body["subject_id"]) not in keys(
        first
    )
    wm = watermark_key(mongo["nipun"]["anomaly_pipeline_state"].find_one())
    assert wm == (
        dt.datetime.fromisoformat(first[12]["source_updated_at"]),
        first[12]["mongo_doc_id"],
        first[12]["record_type"],
        first[12]["subject_id"],
    )  # the row just before the unsent one
    # WHEN re-run: the unsent row and what follows it are sent, nothing before it again
    report2 = make_service(discovery_batch_size=10).run("incremental")
    again = bodies(sqs_client, queue_url)
    assert report2.failed == 0 and keys(again)[0] == (
        bad_body["mongo_doc_id"],
        bad_body["record_type"],
        bad_body["subject_id"],
    )
    assert len(again) == 30 - 13 and not set(keys(again)) & set(keys(first[:13]))


def test_moto_per_entry_failure_for_invalid_delay(seed_bulk: Callable, make_service: Callable, sqs_client: Any) -> None:
    seed_bulk(2)

    class DelayTooLong(FlakySqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
            entries = [dict(e, DelaySeconds=901) if e["Id"] == "1" else e for e in Entries]
            return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=entries)

    report = make_service(client=DelayTooLong(sqs_client, lambda c, e: None)).run("backfill")
    assert (report.enqueued, report.failed) == (3, 1)


def test_fifo_group_and_deduplication_ids(
    seed_bulk: Callable, make_service: Callable, make_queue: Callable, sqs_client: Any
) -> None:
    docs = seed_bulk(3)
    url = make_queue(fifo=True)
    make_service(url=url).run("backfill")
    from tests.conftest import drain_queue

    msgs = drain_queue(sqs_client, url)
    assert len(msgs) == 6
    for m in msgs:
        body = json.loads(m["Body"])
        assert m["Attributes"]["MessageGroupId"] == body["mongo_doc_id"]
        assert m["Attributes"]["MessageDeduplicationId"] == parse_message(m["Body"]).result_id
    url2 = make_queue(fifo=True)
    make_service(url=url2, sqs_fifo_group_id="fleet").run("backfill")
    assert {m["Attributes"]["MessageGroupId"] for m in drain_queue(sqs_client, url2)} == {"fleet"}
    assert {str(d["_id"]) for d in docs} == {json.loads(m["Body"])["mongo_doc_id"] for m in msgs}


class CrashAfter(FlakySqs):
    """Crashes the process (a BaseException no handler catches) on the n-th SendMessageBatch."""

    class Kill(BaseException):
        pass

    def __init__(self, client: Any, n: int):
        super().__init__(client, lambda c, e: None)
        self.n = n

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls += 1
        if self.calls == self.n:
            raise self.Kill()
        return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)


def test_resume_after_a_crash_mid_run(
    seed_bulk: Callable, make_service: Callable, sqs_client: Any, queue_url: str, mongo: Any, clock: FakeClock
) -> None:
    seed_bulk(20)  # 40 rows, pages of 10 -> one chunk per page; crash while sending page 3
    clock.now = dt.datetime.now(UTC)
    with pytest.raises(CrashAfter.Kill):
        make_service(client=CrashAfter(sqs_client, 3), discovery_batch_size=10, clock=clock, holder="crashed").run(
            "backfill"
        )
    sent = bodies(sqs_client, queue_url)
    assert len(sent) == 20
    state = mongo["nipun"]["anomaly_pipeline_state"].find_one()
    assert state["status"] == "running" and state["lease"]["holder"] == "crashed" and state["stats"]["enqueued"] == 20
    # a new run is refused while the crashed run's lease is live, and allowed once it expired
    from anomaly_cli.errors import LeaseHeld

    with pytest.raises(LeaseHeld):
        make_service(discovery_batch_size=10, clock=clock).run("incremental")
    clock.advance(301)
    report = make_service(discovery_batch_size=10, clock=clock).run("incremental")
    rest = bodies(sqs_client, queue_url)
    assert report.enqueued == 20 and len(set(keys(sent + rest))) == 40


def test_capped_backfill_after_a_later_watermark_does_not_regress(
    seed_bulk: Callable, make_service: Callable, mongo: Any, sqs_client: Any, queue_url: str
) -> None:
    seed_bulk(20)
    make_service(discovery_batch_size=10).run("backfill")
    state = mongo["nipun"]["anomaly_pipeline_state"]
    full = watermark_key(state.find_one())
    bodies(sqs_client, queue_url)
    report = make_service(discovery_batch_size=10, max_records=10).run("backfill")
    assert report.enqueued == 10
    assert watermark_key(state.find_one()) == full
    assert report.watermark is not None and report.watermark["last_processed_timestamp"] == full[0]
    assert state.find_one()["stats"]["enqueued"] == 50  # cumulative over both runs


def test_incremental_sleeps_when_nothing_is_new_and_picks_up_new_rows(
    source: Any, make_service: Callable, sqs_client: Any, queue_url: str
) -> None:
    source.insert_one(student_doc(assessment(teacher=[subject(sid="first", created=at(5))])))
    stop = threading.Event()
    waits: list[float] = []

    class Flag:
        def is_set(self) -> bool:
            return stop.is_set()

        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            if len(waits) == 1:  # while "sleeping", a late row arrives
                source.insert_one(student_doc(assessment(admin=[subject(sid="late", created=at(7))])))
                return False
            stop.set()
            return True

    report = make_service(poll_interval_seconds=7.5, stop=Flag()).run("incremental")
    assert waits == [7.5, 7.5] and report.enqueued == 2 and report.status == "interrupted"
    assert [m["subject_id"] for m in bodies(sqs_client, queue_url)] == ["first", "late"]


def test_stop_flag_finishes_the_current_page_and_saves_state(
    seed_bulk: Callable, make_service: Callable, mongo: Any, sqs_client: Any, queue_url: str
) -> None:
    seed_bulk(10)
    stop = threading.Event()

    class StopDuringSend(FlakySqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
            stop.set()  # the signal arrives while page 1 is being sent: work is in flight
            return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)

    report = make_service(client=StopDuringSend(sqs_client, lambda c, e: None), discovery_batch_size=5, stop=stop).run(
        "backfill"
    )
    assert (report.pages, report.enqueued, report.status, report.stopped) == (1, 5, "interrupted", True)
    doc = mongo["nipun"]["anomaly_pipeline_state"].find_one()
    assert doc["status"] == "interrupted" and doc["lease"] is None and watermark_key(doc) is not None
    assert len(bodies(sqs_client, queue_url)) == 5


def test_sweep_enqueues_late_rows_behind_the_watermark_without_moving_it(
    seed_bulk: Callable,
    source: Any,
    make_service: Callable,
    mongo: Any,
    sqs_client: Any,
    queue_url: str,
    clock: FakeClock,
) -> None:
    seed_bulk(5)
    clock.now = dt.datetime.now(UTC)
    make_service(clock=clock).run("backfill")
    bodies(sqs_client, queue_url)
    state = mongo["nipun"]["anomaly_pipeline_state"]
    wm = watermark_key(state.find_one())
    # a phone syncs late: its row is stamped before the watermark
    source.insert_one(student_doc(assessment(teacher=[subject(sid="late-sync", created=at(1))])))
    assert make_service(clock=clock).run("incremental").enqueued == 0  # incremental cannot see it
    report = make_service(clock=clock).run("sweep")
    assert report.enqueued == 1 and report.skipped_recent == 10
    assert [m["subject_id"] for m in bodies(sqs_client, queue_url)] == ["late-sync"]
    assert watermark_key(state.find_one()) == wm
    # later, with no results written, rows not enqueued recently are sent again
    clock.advance(3601)
    assert make_service(clock=clock).run("sweep").enqueued == 11


def test_dry_run_changes_nothing_and_reports_first_rows(
    seed_bulk: Callable, make_service: Callable, mongo: Any, sqs_client: Any, queue_url: str
) -> None:
    seed_bulk(8)
    report = make_service(discovery_batch_size=5).run("backfill", dry_run=True)
    assert report.would_enqueue == 16 and report.enqueued == 0 and len(report.sample) == 10
    assert [s["source_updated_at"] for s in report.sample] == sorted(s["source_updated_at"] for s in report.sample)
    assert bodies(sqs_client, queue_url) == []
    assert mongo["nipun"]["anomaly_pipeline_state"].count_documents({}) == 0
    assert mongo["nipun"]["anomaly_enqueue_log"].count_documents({}) == 0


def test_dry_run_points_at_the_time_zone_trap(source: Any, make_service: Callable) -> None:
    # local midnight in India: 2025-12-20 00:00 IST is 2025-12-19 18:30 UTC
    source.insert_one(
        student_doc(assessment(dt.datetime(2025, 12, 19, 18, 30, tzinfo=UTC), teacher=[subject(created=at(5))]))
    )
    report = make_service().run("backfill", dry_run=True)
    assert report.fetched == 0 and report.nearby_documents == 1
    assert make_service(test_date_timezone="Asia/Kolkata").run("backfill", dry_run=True).would_enqueue == 1


def test_all_discovery_events_are_logged(
    seed_bulk: Callable, make_service: Callable, caplog: pytest.LogCaptureFixture
) -> None:
    seed_bulk(3)
    make_service().run("backfill")
    got = set(events(caplog))
    assert {
        "state_run_started",
        "watermark_missing",
        "discovery_run_started",
        "discovery_run_once_started",
        "discovery_page_fetch_started",
        "discovery_page_fetch_completed",
        "discovery_page_fetched",
        "discovery_candidates_resolved",
        "enqueue_chunk_started",
        "enqueue_chunk_completed",
        "watermark_advanced",
        "state_run_finished",
    } <= got
    caplog.clear()
    make_service().run("incremental")
    assert "watermark_loaded" in events(caplog)


def test_an_incremental_run_whose_lease_was_taken_while_sleeping_stops(
    source: Any, make_service: Callable, clock: FakeClock, mongo: Any
) -> None:
    from anomaly_cli.errors import LeaseHeld

    source.insert_one(student_doc(assessment(teacher=[subject(created=at(5))])))

    class SleepPastLease:
        def __init__(self) -> None:
            self.calls = 0

        def is_set(self) -> bool:
            return False

        def wait(self, timeout: float | None = None) -> bool:
            self.calls += 1
            clock.advance(400)  # longer than the 300 s lease
            if self.calls == 2:  # meanwhile another runner takes the expired lease
                make_service(clock=clock, holder="other").state.acquire(DAY, "other", mode="incremental")
            return False

    with pytest.raises(LeaseHeld):
        make_service(clock=clock, stop=SleepPastLease(), holder="me").run("incremental")
    doc = mongo["nipun"]["anomaly_pipeline_state"].find_one()
    assert doc["lease"]["holder"] == "other" and doc["stats"]["enqueued"] == 1


@pytest.mark.parametrize(
    "pref,expected", [(None, "SecondaryPreferred"), ("primary", "Primary"), ("nearest", "Nearest")]
)
def test_source_read_preference_is_configurable_and_no_source_index_is_created(
    seed_bulk: Callable, make_service: Callable, source: Any, pref: str | None, expected: str
) -> None:
    seed_bulk(2)
    service = make_service(**({"mongo_read_preference": pref} if pref else {}))
    assert type(service.source.read_preference).__name__ == expected
    service.run("backfill")
    assert list(source.index_information()) == ["_id_"]
