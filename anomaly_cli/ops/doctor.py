"""``anomaly doctor``: a checklist of what a deployment needs, with a concrete fix for each problem.

It only reads: it never creates an index, a queue or a policy (it prints the commands). A check
is ``ok``, ``warn`` (works, but fragile or slow) or ``fail`` (something will break); any
``fail`` makes the command exit non-zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from anomaly_cli.adapters.protocols import Database, ReadCollection, S3Client, SqsClient
from anomaly_cli.config import Settings
from anomaly_cli.errors import AnomalyError
from anomaly_cli.redact import redact_uri, redact_url

OK, WARN, FAIL = "ok", "warn", "fail"
#: Screening one recording (decode + features + model) after its download, with room for a full batch.
SCREEN_MARGIN_SECONDS = 30
MIN_MAX_RECEIVE_COUNT = 5
#: SQS keeps a message's original enqueue time in the DLQ: a DLQ must retain longer than its source.
RECOMMENDED_DLQ_RETENTION_SECONDS = 14 * 24 * 3600
SAMPLE_RESULTS = 5

#: The spec's recommended source indexes (doctor prints them; discovery never creates them).
SOURCE_INDEXES: tuple[tuple[str, ...], ...] = (
    ("assessments.test_date",),
    ("assessments.teacher_record.subjects.subject_name",),
    ("assessments.admin_record.subjects.subject_name",),
    ("assessments.teacher_record.subjects.subject_created_at",),
    ("assessments.admin_record.subjects.subject_created_at",),
)
RESULT_INDEXES: tuple[tuple[str, ...], ...] = (
    ("source.mongo_doc_id", "source.test_date", "source.record_type", "source.subject_id"),
    ("source.test_date", "processing.processed_at"),
    ("source.test_date", "inference.is_anomaly"),
)


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    area: str
    name: str
    status: str
    detail: str
    fix: str = ""


def create_index_command(collection: str, fields: Iterable[str]) -> str:
    """The mongosh command that creates an ascending index on ``fields``."""
    spec = ", ".join(f'"{f}": 1' for f in fields)
    return f"db.{collection}.createIndex({{{spec}}})"


def _index_keys(collection: ReadCollection) -> list[tuple[str, ...]]:
    return [tuple(k for k, _ in info["key"]) for info in collection.index_information().values()]


def _covered(wanted: tuple[str, ...], existing: list[tuple[str, ...]]) -> bool:
    # an index serves a query on its prefix: (a, b) covers wanted (a,) and (a, b)
    return any(keys[: len(wanted)] == wanted for keys in existing)


def check_settings(s: Settings) -> list[Check]:
    """Settings that break or slow the fleet whatever the infrastructure."""
    out = []
    if not s.audio_url_allowlist:
        out.append(
            Check(
                "settings",
                "audio URL allowlist",
                FAIL,
                "AUDIO_URL_ALLOWLIST is empty: the worker refuses to start",
                "set AUDIO_URL_ALLOWLIST=s3://<your-audio-bucket>[,https://<cdn-host>]",
            )
        )
    else:
        out.append(Check("settings", "audio URL allowlist", OK, ", ".join(s.audio_url_allowlist)))
    if not s.sqs_queue_url:
        out.append(
            Check(
                "settings", "queue URL", FAIL, "SQS_QUEUE_URL is not set", "set SQS_QUEUE_URL to the work queue's URL"
            )
        )
    if s.is_fifo and s.sqs_fifo_group_id:
        out.append(
            Check(
                "settings",
                "FIFO message group",
                WARN,
                f"SQS_FIFO_GROUP_ID={s.sqs_fifo_group_id!r} puts every message in one group: SQS serves a group to one "
                "consumer at a time, so the whole fleet screens one batch at a time",
                "unset SQS_FIFO_GROUP_ID (each source document becomes its own group)",
            )
        )
    needed = s.fetch_deadline_seconds + s.flush_seconds + SCREEN_MARGIN_SECONDS
    if s.visibility_timeout_seconds < needed:
        out.append(
            Check(
                "settings",
                "worker visibility timeout",
                FAIL,
                f"SQS_VISIBILITY_TIMEOUT={s.visibility_timeout_seconds}s < download deadline "
                f"{s.fetch_deadline_seconds:.0f}s "
                f"+ batch flush {s.flush_seconds:.0f}s + screening {SCREEN_MARGIN_SECONDS}s: messages reappear while "
                "being worked on and are screened twice",
                f"set SQS_VISIBILITY_TIMEOUT >= {int(needed) + 1}",
            )
        )
    return out


def check_mongo(s: Settings, db: Database) -> list[Check]:
    """Reachability, collections, source / result indexes and the result id recipe."""
    from anomaly_cli.adapters.mongo import ping

    try:
        ping(db)
    except AnomalyError as e:
        return [
            Check(
                "mongo",
                "reachable",
                FAIL,
                f"{redact_uri(s.mongo_uri)}: {e}",
                "check MONGO_URI, the network path / security group and the credentials",
            )
        ]
    out = [Check("mongo", "reachable", OK, f"{redact_uri(s.mongo_uri)} db {s.mongo_db_name}")]
    names = set(db.list_collection_names())
    src = s.mongo_source_collection
    if src not in names:
        from anomaly_cli.adapters.mongo import EMBEDDED_ALONE_HINT, embedded_alone

        alone = embedded_alone(s.mongo_uri)
        out.append(
            Check(
                "mongo",
                "source collection",
                FAIL,
                f"{s.mongo_db_name}.{src} does not exist" + (" (the embedded double starts empty)" if alone else ""),
                EMBEDDED_ALONE_HINT
                if alone
                else "set MONGO_SOURCE_COLLECTION / MONGO_DB_NAME to where the assessment records live",
            )
        )
    else:
        existing = _index_keys(db[src])
        missing = [f for f in SOURCE_INDEXES if not _covered(f, existing)]
        if missing:
            out.append(
                Check(
                    "mongo",
                    "source indexes",
                    WARN,
                    f"{len(missing)} recommended index(es) missing on {src}: discovery scans the collection",
                    "run (doctor never creates them itself):\n"
                    + "\n".join(create_index_command(src, f) for f in missing),
                )
            )
        else:
            out.append(Check("mongo", "source indexes", OK, "all recommended indexes present"))
    res = s.mongo_result_collection
    if res in names:
        existing = _index_keys(db[res])
        missing = [f for f in RESULT_INDEXES if not _covered(f, existing)]
        if missing:
            out.append(
                Check(
                    "mongo",
                    "result indexes",
                    WARN,
                    f"{len(missing)} of the spec's result indexes missing on {res} (the worker creates them at start)",
                    "\n".join(create_index_command(res, f) for f in missing),
                )
            )
        else:
            out.append(Check("mongo", "result indexes", OK, "the spec's three indexes are present"))
        out.append(check_result_ids(db[res]))
    else:
        out.append(Check("mongo", "result collection", OK, f"{res} does not exist yet (the worker creates it)"))
    return out


def check_result_ids(collection: ReadCollection) -> Check:
    """Recompute the ``_id`` of a few recent results; warn when they were made another way."""
    from anomaly_cli.results.document import work_item_of

    docs = list(collection.find({}, {"source": 1}).sort([("processing.processed_at", -1)]).limit(SAMPLE_RESULTS))
    if not docs:
        return Check("mongo", "result id recipe", OK, "no results yet")
    other = []
    for d in docs:
        try:
            same = work_item_of(d).result_id == d["_id"]
        except (TypeError, ValueError, KeyError):
            same = False
        if not same:
            other.append(str(d["_id"]))
    if other:
        return Check(
            "mongo",
            "result id recipe",
            WARN,
            f"{len(other)} of {len(docs)} sampled results have an _id that is not "
            "SHA-256(source_collection|mongo_doc_id|"
            f"test_date|record_type|subject_id|audio_url), e.g. {other[0]}: they were made by another recipe",
            "nothing breaks: existing results are also recognised by their natural key (mongo_doc_id, test_date, "
            "record_type, subject_id), so they are not screened twice; keep the natural-key index",
        )
    return Check("mongo", "result id recipe", OK, f"{len(docs)} sampled result ids recompute")


def check_queue(s: Settings, sqs_client: SqsClient) -> list[Check]:
    """The queue exists; visibility, redrive policy, maxReceiveCount, DLQ retention and backlog."""
    from anomaly_cli.adapters.sqs import SqsQueue, queue_url_from_arn

    if not s.sqs_queue_url:
        return []
    q = SqsQueue(sqs_client, s.sqs_queue_url, retries=1)
    try:
        attrs = q.attributes()
    except AnomalyError as e:
        return [
            Check(
                "sqs",
                "queue",
                FAIL,
                f"{s.sqs_queue_url}: {e}",
                "check SQS_QUEUE_URL, AWS_REGION and sqs:GetQueueAttributes",
            )
        ]
    out = [Check("sqs", "queue", OK, f"{s.sqs_queue_url} ({attrs.get('ApproximateNumberOfMessages', '?')} visible)")]
    vis = int(attrs.get("VisibilityTimeout", 30))
    needed = s.fetch_deadline_seconds + s.flush_seconds + SCREEN_MARGIN_SECONDS
    if vis < needed:
        # `anomaly work` asks for SQS_VISIBILITY_TIMEOUT on every receive, so a short queue default
        # only bites consumers that do not (old scripts, a worker with a short setting).
        worker_ok = s.visibility_timeout_seconds >= needed
        out.append(
            Check(
                "sqs",
                "visibility timeout",
                WARN if worker_ok else FAIL,
                f"queue VisibilityTimeout {vis}s is shorter than the download deadline {s.fetch_deadline_seconds:.0f}s "
                f"(retries included) + batch {s.flush_seconds:.0f}s + screening {SCREEN_MARGIN_SECONDS}s"
                + (
                    "; anomaly work overrides it with SQS_VISIBILITY_TIMEOUT, other consumers do not"
                    if worker_ok
                    else ""
                ),
                f"aws sqs set-queue-attributes --queue-url {s.sqs_queue_url} "
                f"--attributes VisibilityTimeout={max(int(needed) + 1, s.visibility_timeout_seconds)}",
            )
        )
    else:
        out.append(Check("sqs", "visibility timeout", OK, f"{vis}s >= {needed:.0f}s needed"))
    policy_raw = attrs.get("RedrivePolicy")
    if not policy_raw:
        out.append(
            Check(
                "sqs",
                "redrive policy",
                FAIL,
                "no RedrivePolicy: a message that always fails loops forever",
                'create a DLQ and set RedrivePolicy={"deadLetterTargetArn":"<dlq arn>","maxReceiveCount":"5"}',
            )
        )
        return out
    policy = json.loads(policy_raw)
    mrc = int(policy.get("maxReceiveCount", 0))
    if mrc < MIN_MAX_RECEIVE_COUNT:
        out.append(
            Check(
                "sqs",
                "maxReceiveCount",
                FAIL,
                f"maxReceiveCount {mrc} < {MIN_MAX_RECEIVE_COUNT}: a slow download or a redeploy sends good "
                "recordings to the DLQ",
                f"set maxReceiveCount to {MIN_MAX_RECEIVE_COUNT} or more in the RedrivePolicy",
            )
        )
    else:
        out.append(Check("sqs", "maxReceiveCount", OK, str(mrc)))
    try:
        dlq = SqsQueue(sqs_client, queue_url_from_arn(sqs_client, policy.get("deadLetterTargetArn", "")), retries=1)
        dattrs = dlq.attributes()
    except AnomalyError as e:
        out.append(
            Check(
                "sqs",
                "dead-letter queue",
                FAIL,
                f"the RedrivePolicy target is unusable: {e}",
                "create the DLQ the policy names",
            )
        )
        return out
    ret, dret = int(attrs.get("MessageRetentionPeriod", 345600)), int(dattrs.get("MessageRetentionPeriod", 345600))
    backlog = int(dattrs.get("ApproximateNumberOfMessages", 0))
    if dret <= ret or dret < RECOMMENDED_DLQ_RETENTION_SECONDS:
        out.append(
            Check(
                "sqs",
                "DLQ retention",
                WARN,
                f"DLQ keeps messages {dret // 3600} h (queue: {ret // 3600} h); a message's age counts from its first "
                "enqueue, so failures can expire before anyone replays them",
                f"aws sqs set-queue-attributes --queue-url {dlq.url} "
                f"--attributes MessageRetentionPeriod={RECOMMENDED_DLQ_RETENTION_SECONDS}",
            )
        )
    else:
        out.append(Check("sqs", "DLQ retention", OK, f"{dret // 86400} days"))
    out.append(
        Check(
            "sqs",
            "DLQ backlog",
            WARN if backlog else OK,
            f"{backlog} message(s) in the DLQ",
            "anomaly replay-dlq --dry-run, then anomaly replay-dlq" if backlog else "",
        )
    )
    return out


def check_sample_audio(s: Settings, s3_client: S3Client, db: Database | None, sample_url: str | None) -> Check:
    """Read access to one recording (HEAD on S3; the allowlist for https)."""
    from anomaly_cli.adapters.urls import ensure_allowlist, parse_audio_url

    url = sample_url
    if not url and db is not None:
        try:
            doc = db[s.mongo_result_collection].find_one(
                {}, {"source.audio_s3_url": 1}, sort=[("processing.processed_at", -1)]
            )
            url = ((doc or {}).get("source") or {}).get("audio_s3_url")
        except Exception:  # noqa: BLE001 - the Mongo check already reported why
            url = None
    if not url:
        return Check(
            "audio",
            "sample recording",
            WARN,
            "no recording to try (no results yet)",
            "pass --sample-url s3://bucket/key",
        )
    try:
        target = parse_audio_url(url)
        if s.audio_url_allowlist:
            ensure_allowlist(s).check(target)  # raises UrlNotAllowed
        if target.kind == "s3":
            assert target.bucket is not None and target.key is not None  # parse_audio_url sets both for "s3"
            head = s3_client.head_object(Bucket=target.bucket, Key=target.key)
            return Check(
                "audio", "sample recording", OK, f"{redact_url(url)} readable ({head.get('ContentLength')} bytes)"
            )
        return Check("audio", "sample recording", OK, f"{redact_url(url)}: https host allowed (not fetched)")
    except AnomalyError as e:
        return Check(
            "audio",
            "sample recording",
            FAIL,
            f"{redact_url(url)}: {e.code}",
            "add its bucket / host to AUDIO_URL_ALLOWLIST" if e.code == "url_not_allowed" else "fix the URL",
        )
    except Exception as e:  # noqa: BLE001 - botocore errors: report the code, not a traceback
        code = str(getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__))
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            return Check(
                "audio",
                "sample recording",
                FAIL,
                f"{redact_url(url)}: {code}",
                "the object does not exist: check the bucket / key (or pass another --sample-url)",
            )
        return Check(
            "audio",
            "sample recording",
            FAIL,
            f"{redact_url(url)}: {code}",
            "grant the worker's role s3:GetObject on the audio bucket (and kms:Decrypt if it is SSE-KMS)",
        )


def check_model(s: Settings) -> Check:
    """The configured model version loads (the worker refuses to start otherwise)."""
    from anomaly_cli.model.engine import load_model
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    try:
        m = load_model(s.model_dir, s.model_version or None, ProgrammeThresholds.from_settings(s))
    except AnomalyError as e:
        return Check("model", "model loads", FAIL, str(e), "anomaly model train, or set MODEL_DIR / MODEL_VERSION")
    return Check("model", "model loads", OK, f"version {m.version} from {m.path}")


def plan_stages(explain: Any) -> list[tuple[str, str | None]]:
    """(stage, index name) of every stage of every winning plan in an ``explain`` answer.

    Walks the document rather than trusting one shape: an aggregation's explain carries its
    plan under ``stages[0].$cursor.queryPlanner`` or directly under ``queryPlanner`` (when the
    pipeline folds into a find), and the slot-based engine (explain version 2) nests it in
    ``winningPlan.queryPlan``.
    """
    found: list[tuple[str, str | None]] = []

    def walk(node: Any, in_plan: bool) -> None:
        if isinstance(node, Mapping):
            if in_plan and isinstance(node.get("stage"), str):
                found.append((node["stage"], node.get("indexName")))
            for k, v in node.items():
                if k in ("rejectedPlans", "slotBasedPlan"):
                    continue
                walk(v, in_plan or k == "winningPlan")
        elif isinstance(node, list):
            for v in node:
                walk(v, in_plan)

    walk(explain, False)
    return found


def check_discovery_plan(s: Settings, db: Database, test_date: str | None = None) -> Check:
    """How the server runs discovery's first ``$match`` (``explain``, queryPlanner verbosity:
    it plans the query and reads no document). An index scan is what the spec's indexes give;
    a collection scan reads every assessment record of every date for each page of a run."""
    import datetime as dt

    from anomaly_cli.discovery.pipeline import first_match

    day = test_date or s.test_date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    src = s.mongo_source_collection
    cmd = {"aggregate": src, "pipeline": [{"$match": first_match(day, s.tz, s.subject_name)}], "cursor": {}}
    try:
        explain = db.command("explain", cmd, verbosity="queryPlanner")
    except Exception as e:  # noqa: BLE001 - any refusal is reported, not raised: doctor only reads
        return Check(
            "mongo",
            "discovery plan",
            WARN,
            f"the server did not explain discovery's aggregation on {src} ({type(e).__name__}: {str(e)[:120]})",
            "the embedded double has no query planner; run doctor --explain against the real server",
        )
    stages = plan_stages(explain)
    names = {st for st, _ in stages}
    indexes = sorted({ix for _, ix in stages if ix})
    if "COLLSCAN" in names or not indexes:
        missing = ", ".join(".".join(f) for f in SOURCE_INDEXES)
        return Check(
            "mongo",
            "discovery plan",
            WARN,
            f"discovery's first $match on {src} is a collection scan (plan: {' > '.join(sorted(names)) or '?'})",
            "create the spec's source indexes ("
            + missing
            + "):\n"
            + "\n".join(create_index_command(src, f) for f in SOURCE_INDEXES),
        )
    return Check(
        "mongo",
        "discovery plan",
        OK,
        f"discovery's first $match on {src} is served by index(es) {', '.join(indexes)} ({' > '.join(sorted(names))})",
    )


def run_checks(
    s: Settings,
    *,
    db: Callable[[], Any] | None,
    sqs_client: Callable[[], SqsClient] | None,
    s3_client: Callable[[], S3Client] | None,
    sample_url: str | None = None,
    model: bool = True,
    explain: bool = False,
) -> list[Check]:
    """Every check; clients come as factories so a broken one is reported, not raised."""
    checks = check_settings(s)
    database = None
    if db is not None:
        try:
            database = db()
            checks += check_mongo(s, database)
            if explain:
                checks.append(check_discovery_plan(s, database))
        except AnomalyError as e:
            checks.append(Check("mongo", "reachable", FAIL, str(e), e.hint or "check MONGO_URI"))
            database = None
    if sqs_client is not None:
        checks += check_queue(s, sqs_client())
    if s3_client is not None:
        checks.append(check_sample_audio(s, s3_client(), database, sample_url))
    if model:
        checks.append(check_model(s))
    return checks


def to_dicts(checks: list[Check]) -> list[dict[str, Any]]:
    """The checks as plain dicts for ``--json``."""
    return [asdict(c) for c in checks]
