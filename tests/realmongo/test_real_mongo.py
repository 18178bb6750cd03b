"""The repository layer against a REAL MongoDB (``ANOMALY_TEST_MONGO_URI``), skipped otherwise.

The Mongo double cannot prove what only a server decides: the planner's index choice, unique
indexes under concurrent upserts, ``$type``/``$isArray``/``$concatArrays`` semantics in the
aggregation, positional updates into nested arrays. Each test works in a throwaway database
(``anomaly_test_<random>``), dropped afterwards; nothing else on the server is touched.

Run it (any MongoDB >= 5.0; a replica set is not needed)::

    docker run -d --rm -p 27017:27017 --name anomaly-mongo mongo:7
    ANOMALY_TEST_MONGO_URI=mongodb://127.0.0.1:27017 .venv/bin/python -m pytest -q tests/realmongo

``ANOMALY_TEST_MONGO_URI=mongomock://check`` runs the same tests on the embedded double (to check
the suite itself); there the ``explain`` test is skipped, since only a server has a planner.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any, Callable, Iterator

import pytest

URI = os.environ.get("ANOMALY_TEST_MONGO_URI", "")
if not URI:
    pytest.skip(
        "real-MongoDB suite: set ANOMALY_TEST_MONGO_URI=mongodb://host:port to run it against a server "
        "(no mongod is available on this machine; see docs/bad-input.md)",
        allow_module_level=True,
    )

from bson import ObjectId  # noqa: E402 - only once the suite runs

from anomaly_cli.contract import WorkItem  # noqa: E402
from anomaly_cli.screening import Reason, Screening  # noqa: E402

UTC = dt.timezone.utc
DAY = "2025-12-20"
MIDNIGHT = dt.datetime(2025, 12, 20, tzinfo=UTC)
READING = "वाचन"
EMBEDDED = URI.startswith("mongomock://")
SOURCE_INDEXES = [
    "assessments.test_date",
    "assessments.teacher_record.subjects.subject_name",
    "assessments.admin_record.subjects.subject_name",
    "assessments.teacher_record.subjects.subject_created_at",
    "assessments.admin_record.subjects.subject_created_at",
]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from anomaly_cli.adapters import mongo

    c = mongo.connect(URI, timeout_ms=5000)
    try:
        mongo.ping(c["admin"])
    except Exception as e:  # noqa: BLE001 - a set but unreachable URI is a failure, not a skip
        pytest.fail(f"ANOMALY_TEST_MONGO_URI is set but the server does not answer: {type(e).__name__}")
    yield c


@pytest.fixture
def db(client: Any) -> Iterator[Any]:
    name = f"anomaly_test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    client.drop_database(name)


def subject(sid: str, created: dt.datetime, *, name: str = READING, url: str | None = None) -> dict[str, Any]:
    return {
        "subject_id": sid,
        "subject_name": name,
        "audio_url": url or f"s3://nipun-audio/{DAY}/{sid}.m4a",
        "subject_created_at": created,
    }


def student(n: int, created: dt.datetime, *, test_date: Any = MIDNIGHT) -> dict[str, Any]:
    return {
        "_id": ObjectId(),
        "student_id": f"STU-{n:05d}",
        "udise": "27251200104",
        "assessments": [
            {
                "test_date": test_date - dt.timedelta(days=7) if isinstance(test_date, dt.datetime) else test_date,
                "teacher_record": {"subjects": [subject(f"old-{n}", created - dt.timedelta(days=7))]},
            },
            {
                "test_date": test_date,
                "teacher_record": {
                    "subjects": [subject(f"math-{n}", created, name="गणित"), subject(f"t-{n}", created)]
                },
                "admin_record": {"subjects": [subject(f"a-{n}", created + dt.timedelta(hours=1))]},
            },
        ],
    }


def seed_source(db: Any, n: int, other_days: int = 0) -> Any:
    source = db["student_assessment_record"]
    t0 = dt.datetime(2025, 12, 20, 4, tzinfo=UTC)
    docs = [student(i, t0 + dt.timedelta(seconds=i // 3)) for i in range(n)]  # ties: 3 students a second
    docs += [
        student(n + i, t0 + dt.timedelta(days=1), test_date=MIDNIGHT + dt.timedelta(days=1)) for i in range(other_days)
    ]
    source.insert_many(docs)
    return source


def item_for(
    n: int,
    *,
    subject_id: str | None = None,
    doc_id: str | None = None,
    url: str | None = None,
    created: dt.datetime | None = None,
    record_type: str = "teacher",
) -> WorkItem:
    created = created or dt.datetime(2025, 12, 20, 5, n % 60, tzinfo=UTC)
    return WorkItem(
        source_collection="student_assessment_record",
        mongo_doc_id=doc_id or str(ObjectId()),
        test_date=DAY,
        record_type=record_type,
        subject_id=subject_id or f"t-{n}",
        subject_name=READING,
        audio_s3_url=url or f"s3://nipun-audio/{DAY}/t-{n}.m4a",
        source_updated_at=created,
        subject_created_at=created,
        student_id=f"STU-{n:05d}",
        udise=None,
        trace_id=str(uuid.uuid4()),
        discovered_at=created,
    )


def screening(**audio: Any) -> Screening:
    return Screening(
        status="ok",
        is_anomaly=True,
        anomaly_score=0.8,
        reasons=(Reason("low_volume", -50.0, -45.0),),
        model_version="v-test",
        features={"rms_dbfs": -50.0},
        audio=dict(audio),
        threshold=0.5,
    )


def _plan_stages(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if "stage" in plan:
            yield plan["stage"]
        for v in plan.values():
            yield from _plan_stages(v)
    elif isinstance(plan, list):
        for v in plan:
            yield from _plan_stages(v)


def _first_stage_plan(explained: dict[str, Any]) -> Any:
    """The winning plan of the cursor stage: classic engine (``stages[0].$cursor``) or SBE (top level)."""
    if "stages" in explained:
        first = explained["stages"][0]
        return first["$cursor"]["queryPlanner"]["winningPlan"]
    return explained["queryPlanner"]["winningPlan"]


# ----- discovery ------------------------------------------------------------------------------------
@pytest.mark.skipif(EMBEDDED, reason="explain() needs a real server's query planner")
def test_discovery_first_stage_is_an_index_scan(db: Any) -> None:
    from anomaly_cli.discovery.pipeline import build_pipeline

    source = seed_source(db, 300, other_days=300)
    for field in SOURCE_INDEXES:
        source.create_index(field)
    pipeline = build_pipeline(DAY, UTC, READING)
    explained = db.command(
        "explain", {"aggregate": source.name, "pipeline": pipeline, "cursor": {}}, verbosity="queryPlanner"
    )
    stages = list(_plan_stages(_first_stage_plan(explained)))
    assert "IXSCAN" in stages, stages
    assert "COLLSCAN" not in stages, stages


def test_backfill_pages_ties_and_cap_on_a_real_server(db: Any, make_settings: Callable) -> None:
    """The whole aggregation (``$type``, ``$isArray``, ``$concatArrays``, regex ``$in``) and the
    service's paging on the server: 100 + 100 + 50 under a cap of 250, no row twice, ties kept."""
    import boto3
    from moto import mock_aws

    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.contract import parse_message
    from anomaly_cli.discovery.service import build_service
    from tests.conftest import drain_queue

    seed_source(db, 200, other_days=20)  # 400 reading rows on the day, 1 maths row each
    with mock_aws():
        sqs = boto3.client("sqs", region_name="ap-south-1")
        url = sqs.create_queue(QueueName="rm")["QueueUrl"]
        settings = make_settings(
            sqs_queue_url=url,
            test_date=DAY,
            mongo_uri="mongomock://unused",
            discovery_batch_size=100,
            max_records=250,
            mongo_read_preference="primary",
        )
        report = build_service(settings, db, SqsQueue(sqs, url)).run("backfill")
        items = [parse_message(m["Body"]) for m in drain_queue(sqs, url, max_rounds=100)]
        rest = make_settings(
            sqs_queue_url=url,
            test_date=DAY,
            mongo_uri="mongomock://unused",
            discovery_batch_size=100,
            max_records=150,
            mongo_read_preference="primary",
        )
        second = build_service(rest, db, SqsQueue(sqs, url)).run("incremental")  # from the watermark
        items += [parse_message(m["Body"]) for m in drain_queue(sqs, url, max_rounds=100)]
    assert report.fetched == 250 and report.enqueued == 250 and report.pages == 3
    assert second.enqueued == 150
    keys = [(i.mongo_doc_id, i.record_type, i.subject_id) for i in items]
    assert len(keys) == len(set(keys)) == 400
    assert all(i.subject_name == READING and not i.subject_id.startswith(("math", "old")) for i in items)
    state = db["anomaly_pipeline_state"].find_one({"_id": f"audio_anomaly:enqueue:student_assessment_record:{DAY}"})
    assert state["test_date"] == DAY and state["stats"]["enqueued"] == 400 and state["status"] == "completed"


def test_non_array_shapes_are_never_enqueued_on_a_real_server(db: Any) -> None:
    from anomaly_cli.discovery.pipeline import build_pipeline

    created = dt.datetime(2025, 12, 20, 5, tzinfo=UTC)
    db["src"].insert_many(
        [
            {
                "_id": 1,
                "assessments": {"test_date": MIDNIGHT, "teacher_record": {"subjects": [subject("x1", created)]}},
            },
            {
                "_id": 2,
                "assessments": [{"test_date": MIDNIGHT, "teacher_record": {"subjects": subject("x2", created)}}],
            },
            {"_id": 3, "assessments": [{"test_date": MIDNIGHT, "teacher_record": {"subjects": None}}]},
            {"_id": 4, "assessments": [{"test_date": DAY, "teacher_record": {"subjects": [subject("ok", created)]}}]},
        ]
    )
    rows = list(db["src"].aggregate(build_pipeline(DAY, UTC, READING)))
    assert [(r["_id"], r["row"]["subject_id"]) for r in rows] == [(4, "ok")]


# ----- state lease ----------------------------------------------------------------------------------
def test_state_lease_and_watermark_are_conditional(db: Any) -> None:
    from pymongo.errors import DuplicateKeyError

    from anomaly_cli.discovery.state import StateRepository
    from anomaly_cli.errors import LeaseHeld

    now = [dt.datetime(2025, 12, 20, 6, tzinfo=UTC)]
    repo = StateRepository(
        db["anomaly_pipeline_state"],
        pipeline_name="audio_anomaly",
        source_collection="student_assessment_record",
        clock=lambda: now[0],
        lease_seconds=60,
    )
    repo.ensure_indexes()
    repo.acquire(DAY, "run-a", mode="backfill")
    with pytest.raises(LeaseHeld):
        repo.acquire(DAY, "run-b", mode="backfill")
    repo.renew(DAY, "run-a")
    t1 = (dt.datetime(2025, 12, 20, 5, tzinfo=UTC), "doc-1", "teacher", "s1")
    assert repo.advance_watermark(DAY, "run-a", t1)
    assert not repo.advance_watermark(DAY, "run-a", (t1[0], "doc-0", "teacher", "s1"))  # never backwards
    now[0] += dt.timedelta(seconds=61)  # run-a crashed: its lease expires
    repo.acquire(DAY, "run-b", mode="incremental")
    with pytest.raises(LeaseHeld):
        repo.renew(DAY, "run-a")
    assert not repo.advance_watermark(DAY, "run-a", (t1[0], "doc-9", "teacher", "s1"))  # the old holder is out
    doc = repo.get(DAY)
    assert doc["lease"]["holder"] == "run-b" and doc["watermark"]["last_processed_doc_id"] == "doc-1"
    assert doc["_id"] == f"audio_anomaly:enqueue:student_assessment_record:{DAY}" and doc["test_date"] == DAY
    assert db["anomaly_pipeline_state"].count_documents({"test_date": DAY}) == 1
    with pytest.raises(DuplicateKeyError):  # the spec's unique index holds on the server
        db["anomaly_pipeline_state"].insert_one(
            {k: doc[k] for k in ("pipeline_name", "stage", "source_collection", "test_date")} | {"_id": "another"}
        )


# ----- results: bulk writes, lookups, duplicates ----------------------------------------------------
def test_result_bulk_writes_first_write_wins_and_lookups(db: Any) -> None:
    from anomaly_cli.results import document as D
    from anomaly_cli.results.lookup import existing_results
    from anomaly_cli.results.repository import ResultRepository

    repo = ResultRepository(db["anomaly_detection_results"])
    repo.ensure_indexes()
    keys = {tuple(k for k, _ in v["key"]) for v in db["anomaly_detection_results"].index_information().values()}
    for spec in [
        ("source.mongo_doc_id", "source.test_date", "source.record_type", "source.subject_id"),
        ("source.test_date", "processing.processed_at"),
        ("source.test_date", "inference.is_anomaly"),
    ]:
        assert spec in keys
    items = [item_for(n) for n in range(25)]
    first = [D.build_result(i, screening(sha256=f"h{n}"), worker_id="w1", attempt=1) for n, i in enumerate(items)]
    rep = repo.insert_if_absent(first)
    assert len(rep.inserted) == 25 and not rep.existed
    again = [D.build_result(i, screening(sha256="other"), worker_id="w2", attempt=2) for i in items[:10]]
    rep2 = repo.insert_if_absent(again + [D.build_result(item_for(99), screening(), worker_id="w2", attempt=1)])
    assert len(rep2.existed) == 10 and len(rep2.inserted) == 1
    kept = db["anomaly_detection_results"].find_one({"_id": items[0].result_id})
    assert kept["processing"]["worker_id"] == "w1" and kept["audio"]["sha256"] == "h0"  # the first write won
    repo.replace([D.build_result(items[0], screening(sha256="new"), worker_id="w3", attempt=1)])
    redone = db["anomaly_detection_results"].find_one({"_id": items[0].result_id})
    assert redone["processing"]["screen_count"] == 2 and redone["audio"]["sha256"] == "new"
    # the operators' validation query: source.test_date is a date at midnight UTC
    assert db["anomaly_detection_results"].count_documents({"source.test_date": dt.datetime(2025, 12, 20)}) == 26
    # lookups by _id and by natural key (a legacy result with another _id recipe)
    legacy = item_for(500, subject_id="legacy-1")
    db["anomaly_detection_results"].insert_one(
        {
            "_id": "legacy-recipe-id",
            "source": {
                "mongo_doc_id": legacy.mongo_doc_id,
                "test_date": MIDNIGHT,
                "record_type": "teacher",
                "subject_id": "legacy-1",
            },
        }
    )
    fresh = item_for(501)
    found = existing_results(
        db["anomaly_detection_results"], [(i.result_id, i.natural_key) for i in (items[3], legacy, fresh)]
    )
    assert found == {items[3].result_id, legacy.result_id}


def test_duplicate_lookup_flags_the_later_recording_once(db: Any) -> None:
    from anomaly_cli.results import document as D
    from anomaly_cli.results.repository import ResultRepository

    repo = ResultRepository(db["anomaly_detection_results"])
    repo.ensure_indexes()
    early = item_for(1, created=dt.datetime(2025, 12, 20, 5, 0, tzinfo=UTC))
    late = item_for(2, created=dt.datetime(2025, 12, 20, 6, 0, tzinfo=UTC))
    other = item_for(3, created=dt.datetime(2025, 12, 20, 7, 0, tzinfo=UTC))
    same = dict(sha256="a" * 64, pcm_sha256="b" * 64, fp_bands=["k1", "k2"], duration_s=12.0)
    docs = [
        D.build_result(early, screening(**same), worker_id="w", attempt=1),
        D.build_result(late, screening(**same), worker_id="w", attempt=1),
        D.build_result(
            other,
            screening(sha256="c" * 64, pcm_sha256="d" * 64, fp_bands=["k9"], duration_s=12.0),
            worker_id="w",
            attempt=1,
        ),
    ]
    for d in docs:  # the later one screened first: it gains the flag when the earlier one lands
        d["processing"]["status"] = "ok"
        d["inference"]["reason_codes"] = []
        d["inference"]["reasons"] = []
    repo.insert_if_absent([docs[1]])
    assert repo.check_duplicates([docs[1]]) == []
    repo.insert_if_absent([docs[0], docs[2]])
    flagged = repo.check_duplicates([docs[0], docs[2]])
    assert flagged == [late.result_id]
    assert repo.check_duplicates([docs[0]]) == []  # idempotent: flagged once
    got = {d["_id"]: d for d in db["anomaly_detection_results"].find({})}
    assert got[late.result_id]["inference"]["reason_codes"] == ["duplicate"]
    assert got[late.result_id]["inference"]["duplicate_of"] == [early.result_id]
    assert "duplicate" not in got[early.result_id]["inference"]["reason_codes"]
    assert "duplicate" not in got[other.result_id]["inference"]["reason_codes"]


# ----- backlink and source re-check -------------------------------------------------------------------
def test_backlink_lands_in_the_right_nested_row_and_recheck_sees_rows(db: Any) -> None:
    from anomaly_cli.discovery.source import existing_source_rows
    from anomaly_cli.results import document as D
    from anomaly_cli.worker.backlink import Backlinker

    source = seed_source(db, 3)
    doc = source.find_one({"student_id": "STU-00001"})
    created = doc["assessments"][1]["teacher_record"]["subjects"][1]["subject_created_at"]
    item = item_for(1, subject_id="t-1", doc_id=str(doc["_id"]), url=f"s3://nipun-audio/{DAY}/t-1.m4a", created=created)
    gone = item_for(1, subject_id="t-1", doc_id=str(doc["_id"]), url="s3://nipun-audio/changed.m4a", created=created)
    present = existing_source_rows(source, [item, gone], subject_name=READING)
    assert present == {item.result_id: True, gone.result_id: False}

    result = D.build_result(item, screening(), worker_id="w", attempt=1)
    assert Backlinker(source, UTC).write(item, result)
    after = source.find_one({"_id": doc["_id"]})
    rows = after["assessments"][1]["teacher_record"]["subjects"]
    assert rows[1]["anomaly"]["result_id"] == item.result_id and rows[1]["anomaly"]["reasons"] == ["low_volume"]
    assert "anomaly" not in rows[0]  # the maths row of the same list
    assert all("anomaly" not in r for r in after["assessments"][0]["teacher_record"]["subjects"])  # other date
    assert all("anomaly" not in r for r in after["assessments"][1]["admin_record"]["subjects"])
    others = [d for d in source.find({"_id": {"$ne": doc["_id"]}})]
    assert all("anomaly" not in r for d in others for a in d["assessments"] for r in a["teacher_record"]["subjects"])


def test_claims_let_one_worker_of_two_screen_an_item(db: Any) -> None:
    from anomaly_cli.worker.claims import Claims

    a = Claims(db["claims"], "worker-a", 60)
    b = Claims(db["claims"], "worker-b", 60)
    a.ensure_indexes()
    ids = [f"r{n}" for n in range(10)]
    got_a = a.claim(ids[:6])
    got_b = b.claim(ids)
    assert got_a == set(ids[:6]) and got_b == set(ids[6:])
    a.release(sorted(got_a))
    assert b.claim(ids[:6]) == set(ids[:6])


# ----- the report's reads ---------------------------------------------------------------------------
class _RecordedCursor:
    def __init__(self, cursor: Any, call: dict[str, Any]) -> None:
        self._cursor, self._call = cursor, call

    def sort(self, keys: Any, *args: Any) -> _RecordedCursor:
        self._call["sort"] = keys
        self._cursor = self._cursor.sort(keys, *args)
        return self

    def limit(self, n: int) -> _RecordedCursor:
        self._cursor = self._cursor.limit(n)
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class _RecordedCollection:
    """The collection the report reads, every ``find`` it sends recorded (``aggregate`` is refused)."""

    def __init__(self, coll: Any, calls: list[dict[str, Any]]) -> None:
        self._coll, self._calls, self.name = coll, calls, coll.name

    def find(self, filter: Any = None, projection: Any = None, **kwargs: Any) -> _RecordedCursor:
        call = {"filter": filter, "projection": projection}
        self._calls.append(call)
        return _RecordedCursor(self._coll.find(filter, projection, **kwargs), call)

    def aggregate(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the report reads with find(); an aggregate here needs its own explain check")


@pytest.mark.skipif(EMBEDDED, reason="explain() needs a real server's query planner")
def test_every_read_of_the_report_is_an_index_scan(db: Any, make_settings: Callable) -> None:
    """No full scan per chart on a real server: each query ``build_report`` sends (the fold of the
    date, the previous date and its fold, the duplicate and re-use clusters, their members by
    ``_id``) is answered by an index scan, none by a collection scan."""
    from bson import SON

    from anomaly_cli.ops.report import build_report
    from anomaly_cli.results import document as D
    from anomaly_cli.results.repository import ResultRepository

    coll = db["anomaly_detection_results"]
    ResultRepository(coll).ensure_indexes()
    docs = [D.build_result(item_for(n), screening(sha256=f"h{n}"), worker_id="w", attempt=1) for n in range(40)]
    docs[5]["inference"].update(reason_codes=["duplicate"], duplicate_of=[docs[1]["_id"]])
    docs[6]["inference"].update(reuse_of=[docs[2]["_id"]])
    for d in docs[30:]:  # the previous test date, a month earlier
        d["source"]["test_date"] = MIDNIGHT - dt.timedelta(days=30)
    coll.insert_many(docs)
    settings = make_settings(mongo_uri=URI, mongo_db_name=db.name)
    calls: list[dict[str, Any]] = []

    class _Db:
        def __getitem__(self, name: str) -> Any:
            return _RecordedCollection(db[name], calls) if name == coll.name else db[name]

    data = build_report(settings, _Db(), DAY, with_coverage=False)
    assert data.overall.total == 30 and data.previous is not None and data.clusters and data.reuse
    assert len(calls) >= 6, calls  # fold, previous date, its fold, two cluster kinds, members by _id
    for call in calls:
        cmd: dict[str, Any] = {"find": coll.name, "filter": call["filter"]}
        if call["projection"]:
            cmd["projection"] = call["projection"]
        if call.get("sort"):
            cmd["sort"] = SON(list(call["sort"]))
        explained = db.command("explain", cmd, verbosity="queryPlanner")
        stages = list(_plan_stages(explained["queryPlanner"]["winningPlan"]))
        assert "COLLSCAN" not in stages, (call, stages)
        assert {"IXSCAN", "IDHACK", "EXPRESS_IXSCAN"} & set(stages), (call, stages)
