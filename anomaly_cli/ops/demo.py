"""The embedded demo: the whole pipeline on a laptop with no cloud.

A moto server (real HTTP, SQS + S3) on 127.0.0.1, the embedded Mongo double
(``mongomock://demo-...``), a realistic source collection (students of several schools, both
record types, other subjects such as गणित, a few rows with no audio), generated recordings
(normal readings, every anomaly kind, re-encoded copies across students) uploaded to S3; then
the real discovery (backfill) and the real worker (process pool, idle exit) run in-process, and
the result is compared with what was planted.

Decisions: recordings are 4-6 s (the < 1 minute budget on 2 cores); one school gets most of the
noisy-classroom anomalies so the per-school ranking has something to show; the demo's AWS
clients carry throwaway credentials of their own (nothing is read from or written to the
environment); a model is taken from ``MODEL_DIR`` when one loads, else a small one is trained
into a temporary folder (and the report says so).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from anomaly_cli import synth
from anomaly_cli.adapters.protocols import Database, ReadCollection, S3Client, SqsClient
from anomaly_cli.config import Settings, load_settings
from anomaly_cli.log import get_logger

if TYPE_CHECKING:
    import numpy as np

    from anomaly_cli.ops.results import InspectReport
    from anomaly_cli.worker.stats import WorkerStats

log = get_logger("demo")
TEST_DATE = "2025-12-20"
BUCKET = "nipun-audio-demo"
READING = "वाचन"
SCHOOLS = ("27251200104", "27251200211", "27251300307", "27251400412", "27251500519", "27251600626")
NOISY_SCHOOL = SCHOOLS[3]
#: Kinds planted besides normal readings: every anomaly kind of the generator (in its order), and duplicates.
ANOMALY_KINDS = tuple(label for label in synth.LABELS if label != "normal")
DUPLICATE = "duplicate"
#: Field phones upload m4a mostly; MP3 is left out only because libmpg123 prints decoder chatter on stderr.
FORMATS = ("m4a", "m4a", "wav", "ogg", "flac")

Phase = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class Planted:
    """One recording the demo put in S3, and what it is."""

    mongo_doc_id: str
    record_type: str
    subject_id: str
    url: str
    kind: str  # normal | an anomaly kind | duplicate
    fmt: str
    duplicate_of: str | None = None  # result id of the original


@dataclass
class DemoReport:
    """What the demo did and how well screening matched the plan."""

    students: int
    seed: int
    recordings: int
    model_version: str
    model_trained_here: bool
    discovery: dict[str, Any]
    worker: dict[str, Any]
    inspect: InspectReport
    per_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    false_alarms: int = 0
    normals: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    report_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``--json`` (with the false-alarm rate and the inspect summary)."""
        d = {
            k: getattr(self, k)
            for k in (
                "students",
                "seed",
                "recordings",
                "model_version",
                "model_trained_here",
                "discovery",
                "worker",
                "per_kind",
                "false_alarms",
                "normals",
                "timings_s",
                "report_path",
            )
        }
        d["false_alarm_rate"] = round(self.false_alarms / self.normals, 4) if self.normals else 0.0
        d["inspect"] = self.inspect.to_dict()
        return d


# --- the plan -----------------------------------------------------------------------------------
def plan_kinds(n_recordings: int, rng: np.random.Generator) -> list[str]:
    """~15 % anomalies with every kind at least twice (too_long once: it is 4 minutes of audio)."""
    kinds: list[str] = []
    for k in ANOMALY_KINDS:
        kinds += [k] * (1 if k == "too_long" else max(2, round(n_recordings * 0.015)))
    dups = max(2, n_recordings // 60)
    kinds += [DUPLICATE] * dups
    kinds += ["normal"] * max(0, n_recordings - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _recording(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, int, str]:
    """(samples, rate, format) of one planted recording (file damage applied later)."""
    dur = float(rng.uniform(4.0, 5.0))
    if kind == "too_long":
        base = synth.make_clip("normal", rng, variant="plain", duration_s=5.0)
        import numpy as np

        return np.tile(base.samples, 52), base.sr, "ogg"  # 260 s: a reading left running
    label = "normal" if kind in ("truncated", "corrupt", DUPLICATE) else kind
    variant = "plain" if kind == "truncated" else None
    if label == "normal" and variant is None:
        variant = str(rng.choice(["plain", "plain", "quiet", "classroom", "hesitation", "bumps", "mic"]))
    clip = synth.make_clip(label, rng, variant=variant, duration_s=None if kind == "too_short" else dur)
    fmt = "wav" if kind in ("dc_offset", "truncated") else str(rng.choice(FORMATS))
    return clip.samples, clip.sr, fmt


def _encode(kind: str, samples: np.ndarray, sr: int, fmt: str, rng: np.random.Generator) -> bytes:
    from anomaly_cli.audio.formats import encode

    if kind == "corrupt":
        return synth.make_item("corrupt", rng).data
    data = encode(samples, sr, fmt)
    if kind == "truncated":
        data = data[: int(len(data) * rng.uniform(0.3, 0.6))]
    return data


def _generate_one(task: tuple[str, int, int, int | None]) -> tuple[bytes, str]:
    """(file bytes, format) of slot ``n``; each slot has its own seed, so slots generate in any order."""
    import numpy as np

    kind, seed, n, original = task
    rng = np.random.default_rng([seed, n])
    if kind == DUPLICATE:
        assert original is not None  # a duplicate names its original's slot
        # regenerate the original's samples from its own seed, then re-encode in another format
        samples, sr, orig_fmt = _recording("normal", np.random.default_rng([seed, original]))
        fmt = "m4a" if orig_fmt == "ogg" else "ogg"
        return _encode("normal", samples, sr, fmt, rng), fmt
    samples, sr, fmt = _recording(kind, rng)
    return _encode(kind, samples, sr, fmt, rng), fmt


def _generate_all(tasks: list[tuple[str, int, int, int | None]], on_phase: Phase | None) -> Iterator[tuple[bytes, str]]:
    """Generate every slot in one process per core (generation is pure CPU), in slot order."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = max(1, min(os.cpu_count() or 1, 8))
    # forkserver like the worker's pool: the moto server's threads are running in this process
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        for n, out in enumerate(pool.map(_generate_one, tasks, chunksize=4), 1):
            if on_phase and n % 10 == 0:
                on_phase("generate", n, len(tasks))
            yield out


def build_world(
    students: int, seed: int, *, source_collection: str, clock_start: dt.datetime, on_phase: Phase | None = None
) -> tuple[list[dict[str, Any]], list[Planted], dict[str, bytes]]:
    """Source documents, the planted recordings and their bytes (keyed by S3 key)."""
    import numpy as np
    from bson import ObjectId

    from anomaly_cli.contract import result_id

    rng = np.random.default_rng(seed)
    docs: list[dict[str, Any]] = []
    slots: list[tuple[dict[str, Any], str, dict[str, Any]]] = []  # (doc, record_type, row)
    t = clock_start
    for i in range(students):
        oid = ObjectId(int(seed % 2**16).to_bytes(2, "big") + int(i).to_bytes(10, "big"))
        school = SCHOOLS[int(rng.integers(len(SCHOOLS)))]
        doc: dict[str, Any] = {
            "_id": oid,
            "student_id": f"STU-{school[-5:]}-{i:05d}",
            "udise": school,
            "grade": int(rng.integers(2, 6)),
            "assessments": [],
        }
        subjects: dict[str, list[dict[str, Any]]] = {"teacher_record": [], "admin_record": []}
        for rt, path, p in (("teacher", "teacher_record", 1.0), ("admin", "admin_record", 0.35)):
            if rng.random() >= p:
                continue
            t += dt.timedelta(seconds=int(rng.integers(5, 90)))
            row = {
                "subject_id": f"sub-{i:05d}-{rt[0]}",
                "subject_name": READING,
                "subject_created_at": t,
                "level": str(rng.choice(["letter", "word", "paragraph", "story"])),
            }
            if rng.random() < 0.01:
                row["audio_url"] = ""  # an upload that never happened: skipped as invalid, never enqueued
            else:
                slots.append((doc, rt, row))
            subjects[path].append(row)
        subjects["teacher_record"].append(
            {
                "subject_id": f"math-{i:05d}",
                "subject_name": "गणित",
                "subject_created_at": t,
                "score": int(rng.integers(0, 11)),
            }
        )
        doc["assessments"].append(
            {
                "test_date": dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc),
                "teacher_record": {"subjects": subjects["teacher_record"]},
                "admin_record": {"subjects": subjects["admin_record"]},
            }
        )
        if rng.random() < 0.2:  # last month's assessment: not this test date, never discovered
            doc["assessments"].insert(
                0,
                {
                    "test_date": "2025-11-20",
                    "teacher_record": {
                        "subjects": [
                            {
                                "subject_id": f"old-{i:05d}",
                                "subject_name": READING,
                                "audio_url": f"s3://{BUCKET}/2025-11-20/{i}.wav",
                                "subject_created_at": t - dt.timedelta(days=30),
                            }
                        ]
                    },
                },
            )
        docs.append(doc)

    kinds = plan_kinds(len(slots), rng)
    tasks: list[tuple[str, int, int, int | None]] = []
    for n, kind in enumerate(kinds[: len(slots)]):
        earlier_normals = [j for j in range(n) if kinds[j] == "normal"] if kind == DUPLICATE else []
        if kind == DUPLICATE and not earlier_normals:
            kinds[n] = kind = "normal"
        original = earlier_normals[int(rng.integers(len(earlier_normals)))] if kind == DUPLICATE else None
        tasks.append((kind, seed, n, original))
    planted: list[Planted] = []
    blobs: dict[str, bytes] = {}
    rids: dict[int, str] = {}
    for n, (data, fmt) in enumerate(_generate_all(tasks, on_phase)):
        doc, rt, row = slots[n]
        kind, _, _, original = tasks[n]
        if kind == "noisy" and rng.random() < 0.7:
            doc["udise"] = NOISY_SCHOOL  # noisy classrooms cluster in one school (the ranking shows it)
        key = f"{TEST_DATE}/{doc['udise']}/{doc['student_id']}/{row['subject_id']}.{fmt}"
        url = f"s3://{BUCKET}/{key}"
        row["audio_url"] = url
        blobs[key] = data
        rids[n] = result_id(source_collection, str(doc["_id"]), TEST_DATE, rt, str(row["subject_id"]), url)
        planted.append(
            Planted(
                str(doc["_id"]),
                rt,
                str(row["subject_id"]),
                url,
                kind,
                fmt,
                rids[original] if original is not None else None,
            )
        )
    # a duplicate's original is an earlier slot, i.e. an earlier recording: the copy is the *later* one
    # (it gets the flag)
    if on_phase:
        on_phase("generate", len(slots), len(slots))
    return docs, planted, blobs


# --- running it ---------------------------------------------------------------------------------
def _model(settings: Settings, workdir: Path, on_phase: Phase | None) -> tuple[str, str, bool]:
    """(model_dir, version, trained here)."""
    from anomaly_cli.errors import ModelError
    from anomaly_cli.model.engine import load_model
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    try:
        m = load_model(settings.model_dir, settings.model_version or None, ProgrammeThresholds.from_settings(settings))
        return settings.model_dir, m.version, False
    except ModelError as e:
        log.warning("demo_model_missing", reason=str(e)[:200])
    from anomaly_cli.model.train import train

    out = workdir / "models" / "demo-quick"
    train(
        out,
        synthetic=20,
        seed=1,
        version="demo-quick",  # the minimum: rules carry the demo, the outlier model is a bonus
        progress=(lambda i, n: on_phase("train model", i, n)) if on_phase else None,
    )
    return str(out.parent), "demo-quick", True


def run_demo(
    students: int = 200,
    seed: int = 7,
    *,
    base: Settings | None = None,
    on_phase: Phase | None = None,
    workdir: str | Path | None = None,
    report_path: str | Path | None = None,
    report_lang: str = "en",
) -> DemoReport:
    """Run the whole demo; returns its report. Starts and stops its own moto server.

    With ``report_path`` it ends by writing the ``results report`` page of its world there (the
    Mongo double vanishes with the demo, so the page is the one thing that stays).
    """
    import logging
    import warnings

    from anomaly_cli.extras import require_demo

    require_demo("anomaly demo")
    from moto.server import ThreadedMotoServer

    # The moto server logs every HTTP request through werkzeug, and the Mongo double warns that
    # server-side options are no-ops: neither is news to someone watching the demo.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*no-op in mongomock", category=UserWarning)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="anomaly-demo-") if workdir is None else None
    wd = Path(workdir or tmp.name)  # type: ignore[union-attr]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        base = base or load_settings(env_file=None, environ={})
        mongo_uri = f"mongomock://demo-{uuid.uuid4().hex[:8]}"  # a fresh embedded database per run
        settings = _settings(base, endpoint, mongo_uri)
        sqs, s3 = _clients(settings)
        queue_url = _make_queues(sqs)
        model_dir, version, trained = _model(settings, wd, on_phase)
        settings = _settings(
            base, endpoint, mongo_uri, sqs_queue_url=queue_url, model_dir=model_dir, model_version=version
        )
        timings["setup"] = time.perf_counter() - t0

        t = time.perf_counter()
        from anomaly_cli.adapters.mongo import connect

        db = connect(settings.mongo_uri)[settings.mongo_db_name]
        docs, planted, blobs = build_world(
            students,
            seed,
            source_collection=settings.mongo_source_collection,
            clock_start=dt.datetime(2025, 12, 20, 4, 30, tzinfo=dt.timezone.utc),
            on_phase=on_phase,
        )
        db[settings.mongo_source_collection].insert_many(docs)
        timings["generate"] = time.perf_counter() - t

        t = time.perf_counter()
        upload(s3, blobs, on_phase)
        timings["upload"] = time.perf_counter() - t

        t = time.perf_counter()
        discovery = _discover(settings, db, sqs, len(planted), on_phase)
        timings["discover"] = time.perf_counter() - t

        t = time.perf_counter()
        worker = _work(settings, db, sqs, s3, version, len(planted), on_phase)
        timings["screen"] = time.perf_counter() - t

        from anomaly_cli.ops.results import Filters, inspect

        results = db[settings.mongo_result_collection]
        summary = inspect(results, Filters(TEST_DATE), limit=5, min_school_count=10)
        report = DemoReport(
            students=students,
            seed=seed,
            recordings=len(planted),
            model_version=version,
            model_trained_here=trained,
            discovery=discovery,
            worker=worker,
            inspect=summary,
        )
        _score(report, planted, results, settings.mongo_source_collection)
        if report_path is not None:
            t = time.perf_counter()
            report.report_path = _write_report(settings, db, Path(report_path), report_lang)
            timings["report"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t0
        report.timings_s = {k: round(v, 2) for k, v in timings.items()}
        return report
    finally:
        server.stop()
        if tmp is not None:
            tmp.cleanup()


def _write_report(settings: Settings, db: Database, path: Path, lang: str) -> str:
    """The HTML report of the demo's test date (``anomaly results report`` on its world)."""
    from anomaly_cli.ops.report import build_report
    from anomaly_cli.report.page import write

    path.parent.mkdir(parents=True, exist_ok=True)
    write(build_report(settings, db, TEST_DATE), path, lang)
    return str(path)


def _settings(base: Settings, endpoint: str, mongo_uri: str, **extra: Any) -> Settings:
    """The demo's settings: the user's, with everything that points at infrastructure replaced."""
    from anomaly_cli.config import with_overrides

    values = dict(
        mongo_uri=mongo_uri,
        aws_endpoint_url=endpoint,
        test_date=TEST_DATE,
        audio_url_allowlist=(f"s3://{BUCKET}",),
        sqs_wait_seconds=1,
        flush_seconds=0.3,
        batch_size=10,
        max_concurrency=8,
        visibility_timeout_seconds=120,
        discovery_batch_size=100,
        sqs_fifo_group_id="",
        throughput_log_seconds=3600.0,
        mongo_read_preference="primary",
    )
    values.update({k: v for k, v in extra.items() if v is not None})
    return with_overrides(base, **values)


def _clients(settings: Settings) -> tuple[SqsClient, S3Client]:
    import boto3

    from anomaly_cli.adapters.aws import boto_config

    # Throwaway credentials for the local moto server only; the environment is left alone.
    session = boto3.session.Session(
        aws_access_key_id="demo", aws_secret_access_key="demo-secret", region_name=settings.aws_region
    )
    sqs = session.client("sqs", endpoint_url=settings.aws_endpoint_url, config=boto_config(settings))
    s3 = session.client("s3", endpoint_url=settings.aws_endpoint_url, config=boto_config(settings))
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": settings.aws_region})
    return sqs, s3


def _make_queues(sqs: SqsClient) -> str:
    dlq = sqs.create_queue(QueueName="anomaly-demo-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs.create_queue(
        QueueName="anomaly-demo",
        Attributes={
            "VisibilityTimeout": "120",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]


def upload(s3: S3Client, blobs: dict[str, bytes], on_phase: Phase | None) -> None:
    done = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in pool.map(lambda kv: s3.put_object(Bucket=BUCKET, Key=kv[0], Body=kv[1]), blobs.items()):
            done += 1
            if on_phase and done % 10 == 0:
                on_phase("upload to S3", done, len(blobs))
    if on_phase:
        on_phase("upload to S3", len(blobs), len(blobs))


def _discover(
    settings: Settings, db: Database, sqs: SqsClient, expected: int, on_phase: Phase | None
) -> dict[str, Any]:
    from anomaly_cli.adapters.sqs import SqsQueue
    from anomaly_cli.discovery.service import build_service

    service = build_service(
        settings,
        db,
        SqsQueue(sqs, settings.sqs_queue_url),
        on_page=(lambda snap: on_phase("discover", snap["enqueued"], expected)) if on_phase else None,
    )
    report = service.run("backfill")
    return {
        k: v
        for k, v in report.to_dict().items()
        if k in ("status", "pages", "fetched", "enqueued", "skipped_invalid", "skipped_existing", "failed")
    }


def _work(
    settings: Settings, db: Database, sqs: SqsClient, s3: S3Client, version: str, expected: int, on_phase: Phase | None
) -> dict[str, Any]:
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.shutdown import AnyOf, IdleShutdown, MaxMessages

    def tick(stats: WorkerStats) -> None:
        snap = stats.snapshot()
        if on_phase:
            on_phase("screen", snap["succeeded"] + snap["failed_terminal"], expected)

    worker = build_worker(
        settings,
        sqs_client=sqs,
        s3_client=s3,
        db=db,
        model_version=version,
        policy=AnyOf((IdleShutdown(3.0), MaxMessages(expected))),
        on_tick=tick,
        worker_id="demo-worker",
    )
    report = worker.run()
    if report.error is not None:
        raise report.error
    keys = (
        "received",
        "succeeded",
        "anomalies",
        "failed_terminal",
        "transient",
        "duplicates_flagged",
        "items_per_s",
        "latency_p50_ms",
        "latency_p95_ms",
    )
    return {k: report.stats.get(k) for k in keys}


def _score(report: DemoReport, planted: list[Planted], results: ReadCollection, source_collection: str) -> None:
    """Per-kind recall (flagged at all, and with the planted kind as a reason) and false alarms."""
    from anomaly_cli.contract import result_id

    ids = {
        result_id(source_collection, p.mongo_doc_id, TEST_DATE, p.record_type, p.subject_id, p.url): p for p in planted
    }
    docs = {
        d["_id"]: d
        for d in results.find(
            {"_id": {"$in": list(ids)}}, {"processing.status": 1, "processing.error.code": 1, "inference": 1}
        )
    }
    per: dict[str, dict[str, Any]] = {}
    for rid, p in ids.items():
        row = per.setdefault(p.kind, {"planted": 0, "screened": 0, "flagged": 0, "right_reason": 0})
        row["planted"] += 1
        d = docs.get(rid)
        if d is None:
            continue
        row["screened"] += 1
        inf = d.get("inference") or {}
        failed = (d.get("processing") or {}).get("status") == "failed"
        codes = set(inf.get("reason_codes") or []) | {((d.get("processing") or {}).get("error") or {}).get("code")}
        flagged = bool(inf.get("is_anomaly")) or failed
        if p.kind == "normal":
            report.normals += 1
            report.false_alarms += flagged
            row["flagged"] += flagged
            continue
        if p.kind == DUPLICATE:
            flagged = bool(inf.get("duplicate_of"))
            right = p.duplicate_of in (inf.get("duplicate_of") or [])
        else:
            right = p.kind in codes
        row["flagged"] += flagged
        row["right_reason"] += right
    for kind, row in per.items():
        n = row["planted"] or 1
        row["recall"] = None if kind == "normal" else round(row["flagged"] / n, 3)
        row["recall_right_reason"] = None if kind == "normal" else round(row["right_reason"] / n, 3)
    report.per_kind = dict(sorted(per.items(), key=lambda kv: (kv[0] != "normal", kv[0])))
