"""One settings object, loaded once by one loader.

Precedence, lowest first: defaults < ``.env`` file < environment < command-line flags.
Environment names are the ones of ``docs/contract.md`` (``MONGO_URI``, ``TEST_DATE`` ...)
plus a few this tool adds (``AUDIO_URL_ALLOWLIST``, timeouts, caps). Every field records where
its value came from, for ``anomaly config show``. Secrets are never printed: fields declared
``secret=True`` are masked by :meth:`Settings.redacted` (see :mod:`anomaly_cli.redact`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from anomaly_cli.errors import ConfigError
from anomaly_cli.redact import mask_secret
from anomaly_cli.screening import DEFAULT_MAX_DURATION_S
from anomaly_cli.sqs_quotas import MAX_LONG_POLL_SECONDS, MAX_VISIBILITY_TIMEOUT_SECONDS

MODES = ("backfill", "incremental", "sweep")
READ_PREFERENCES = ("primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("auto", "json", "console")
#: Every float setting is a duration or a fraction; beyond this (~31 years) timedelta and waits overflow.
MAX_FLOAT_SETTING = 1e9


def _spec(env: str, help: str, *, secret: bool = False, **kw: Any) -> Any:
    return field(metadata={"env": env, "help": help, "secret": secret}, **kw)


@dataclass(frozen=True)
class Settings:
    """Every effective setting. Build it with :func:`load_settings`, never by hand in code."""

    # --- MongoDB ---
    mongo_uri: str = _spec(
        "MONGO_URI",
        "MongoDB URI; `mongomock://` selects the embedded in-process double",
        secret=True,
        default="mongodb://localhost:27017",
    )
    mongo_db_name: str = _spec("MONGO_DB_NAME", "database holding source, state and results", default="nipun")
    mongo_source_collection: str = _spec(
        "MONGO_SOURCE_COLLECTION", "source collection of assessment records", default="student_assessment_record"
    )
    mongo_state_collection: str = _spec(
        "MONGO_STATE_COLLECTION", "discovery state / watermark collection", default="anomaly_pipeline_state"
    )
    mongo_result_collection: str = _spec(
        "MONGO_RESULT_COLLECTION", "screening results collection", default="anomaly_detection_results"
    )
    mongo_read_preference: str = _spec(
        "MONGO_READ_PREFERENCE", "read preference for discovery reads of the source", default="secondaryPreferred"
    )
    mongo_timeout_ms: int = _spec("MONGO_TIMEOUT_MS", "server selection / socket timeout in ms", default=10000)
    # --- AWS / SQS ---
    sqs_queue_url: str = _spec("SQS_QUEUE_URL", "the work queue (standard or .fifo)", default="")
    sqs_dlq_url: str = _spec("SQS_DLQ_URL", "dead-letter queue; default: the queue's RedrivePolicy target", default="")
    aws_region: str = _spec("AWS_REGION", "AWS region", default="ap-south-1")
    aws_endpoint_url: str = _spec("AWS_ENDPOINT_URL", "endpoint override for SQS and S3 (moto, localstack)", default="")
    sqs_fifo_group_id: str = _spec(
        "SQS_FIFO_GROUP_ID",
        "FIFO message group; default: the row's mongo_doc_id (one group serialises the whole fleet)",
        default="",
    )
    # --- discovery ---
    pipeline_name: str = _spec("PIPELINE_NAME", "pipeline name in the state document", default="audio_anomaly")
    test_date: str = _spec("TEST_DATE", "test date YYYY-MM-DD", default="")
    test_date_timezone: str = _spec(
        "TEST_DATE_TIMEZONE",
        "time zone whose calendar day a date-typed assessments.test_date belongs to",
        default="UTC",
    )
    subject_name: str = _spec(
        "SUBJECT_NAME", "subject whose rows are screened (compared after NFC + trim)", default="वाचन"
    )
    discovery_batch_size: int = _spec("DISCOVERY_BATCH_SIZE", "rows fetched per discovery page", default=100)
    max_records: int | None = _spec(
        "MAX_RECORDS", "cap on matching rows fetched in one discovery run (empty: no cap)", default=None
    )
    poll_interval_seconds: float = _spec(
        "POLL_INTERVAL_SECONDS", "incremental: sleep when nothing is new", default=30.0
    )
    mongo_to_sqs_mode: str = _spec(
        "MONGO_TO_SQS_MODE", "discovery mode: backfill, incremental or sweep", default="backfill"
    )
    discovery_lease_seconds: float = _spec(
        "DISCOVERY_LEASE_SECONDS", "lease on a test date's watermark; renewed every page", default=300.0
    )
    discovery_send_patience_seconds: float = _spec(
        "DISCOVERY_SEND_PATIENCE_SECONDS",
        "discovery: how long to keep resending while SQS throttles or fails (5xx) before the run fails",
        default=900.0,
    )
    discovery_send_concurrency: int = _spec(
        "DISCOVERY_SEND_CONCURRENCY", "discovery: SendMessageBatch calls of one page in flight at once", default=4
    )
    discovery_heartbeat_seconds: float = _spec(
        "DISCOVERY_HEARTBEAT_SECONDS",
        "incremental: log discovery_heartbeat and store progress for state show this often (empty polls are DEBUG)",
        default=300.0,
    )
    sweep_recent_seconds: float = _spec(
        "SWEEP_RECENT_SECONDS", "sweep: skip rows enqueued less than this long ago", default=3600.0
    )
    mongo_enqueue_log_collection: str = _spec(
        "MONGO_ENQUEUE_LOG_COLLECTION",
        "when each row was last enqueued (TTL 7 days); sweep skips recent ones",
        default="anomaly_enqueue_log",
    )
    # --- worker ---
    batch_size: int = _spec("BATCH_SIZE", "worker: items buffered before a batch is dispatched", default=10)
    max_concurrency: int = _spec(
        "MAX_CONCURRENCY",
        "worker: downloads in flight (screening runs beside them in CPU_WORKERS processes)",
        default=8,
    )
    cpu_workers: int = _spec("CPU_WORKERS", "worker: processes for decode + features (0 = number of cores)", default=0)
    flush_seconds: float = _spec("FLUSH_SECONDS", "worker: dispatch a partial batch after this long", default=2.0)
    sqs_wait_seconds: int = _spec("SQS_WAIT_SECONDS", "worker: long-poll wait (0-20)", default=20)
    visibility_timeout_seconds: int = _spec(
        "SQS_VISIBILITY_TIMEOUT", "worker: visibility asked for received messages", default=300
    )
    enable_source_backlink_update: bool = _spec(
        "ENABLE_SOURCE_BACKLINK_UPDATE", "worker: write the anomaly backlink into the source row", default=False
    )
    reuse_within_student_is_anomaly: bool = _spec(
        "REUSE_WITHIN_STUDENT_IS_ANOMALY",
        "worker, results dedupe: one recording on several rows of one student is an anomaly "
        "(reason reused_within_student); default: informational (inference.reuse_of only)",
        default=False,
    )
    access_denied_limit: int = _spec(
        "ACCESS_DENIED_LIMIT", "worker: consecutive access-denied answers that stop the worker", default=20
    )
    worker_adhoc_only: bool = _spec(
        "WORKER_ADHOC_ONLY",
        "worker: screens push-urls (adhoc) items only, so an empty or missing source collection is expected",
        default=False,
    )
    source_gone_window: int = _spec(
        "SOURCE_GONE_WINDOW", "worker: sourced deliveries judged together by the source-gone breaker", default=200
    )
    source_gone_threshold: float = _spec(
        "SOURCE_GONE_THRESHOLD",
        "worker: share of source_gone in a full window that stops the worker (wrong database?)",
        default=0.95,
    )
    throughput_log_seconds: float = _spec(
        "THROUGHPUT_LOG_SECONDS", "worker: period of the throughput event", default=30.0
    )
    metrics_port: int | None = _spec(
        "METRICS_PORT", "worker: serve Prometheus metrics on this port (empty: no metrics server)", default=None
    )
    metrics_address: str = _spec(
        "METRICS_ADDRESS", "worker: address the metrics server binds (0.0.0.0: every interface)", default="0.0.0.0"
    )
    # --- fetching audio ---
    audio_url_allowlist: tuple[str, ...] = _spec(
        "AUDIO_URL_ALLOWLIST", "comma list of allowed S3 buckets (s3://bucket) and https hosts", default=()
    )
    fetch_connect_timeout_seconds: float = _spec(
        "FETCH_CONNECT_TIMEOUT_SECONDS", "connect timeout per download attempt", default=5.0
    )
    fetch_read_timeout_seconds: float = _spec(
        "FETCH_READ_TIMEOUT_SECONDS", "read (between bytes) timeout per attempt", default=20.0
    )
    fetch_deadline_seconds: float = _spec(
        "FETCH_DEADLINE_SECONDS", "overall deadline per download, retries included", default=60.0
    )
    fetch_retries: int = _spec("FETCH_RETRIES", "attempts for transient download errors", default=3)
    max_audio_bytes: int = _spec("MAX_AUDIO_BYTES", "byte cap enforced while streaming", default=50 * 1024 * 1024)
    max_duration_seconds: float = _spec(
        "MAX_DURATION_SECONDS",
        "decode stops here: longer is failed duration_over_cap, reason too_long (keep it above MAX_READING_SECONDS)",
        default=DEFAULT_MAX_DURATION_S,
    )
    # --- model ---
    model_dir: str = _spec(
        "MODEL_DIR", "folder of model versions (empty: the model shipped in the package)", default=""
    )
    model_version: str = _spec("MODEL_VERSION", "model version to load (default: newest)", default="")
    # --- programme thresholds (model/thresholds.py; applied to the model's rules, no retraining) ---
    min_duration_seconds: float = _spec(
        "MIN_DURATION_SECONDS", "screening: a recording shorter than this is too_short", default=2.0
    )
    max_reading_seconds: float = _spec(
        "MAX_READING_SECONDS", "screening: a recording longer than this is too_long (one reading)", default=240.0
    )
    silent_dbfs: float = _spec(
        "SILENT_DBFS",
        "screening: 95th percentile frame level under this (loudest 1 % under it + 4) is silent",
        default=-60.0,
    )
    low_volume_dbfs: float = _spec(
        "LOW_VOLUME_DBFS",
        "screening: 95th percentile frame level under this (loudest 1 % under it + 4) is low_volume",
        default=-42.0,
    )
    noise_margin_db: float = _spec(
        "NOISE_MARGIN_DB",
        "screening: the loudest voice must rise this far above what is behind it, else noisy",
        default=15.0,
    )
    # --- output ---
    log_level: str = _spec("LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", default="INFO")
    log_format: str = _spec(
        "LOG_FORMAT",
        "stderr events: auto (human lines on a terminal, JSON otherwise), json or console",
        default="auto",
    )

    # where each value came from: field name -> "default" | ".env" | "env" | "flag"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    # ----- derived -----
    @property
    def is_fifo(self) -> bool:
        return self.sqs_queue_url.endswith(".fifo")

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.test_date_timezone)

    def require(self, *names: str) -> None:
        """Raise :class:`ConfigError` naming the first of ``names`` that is empty."""
        for name in names:
            value = getattr(self, name)
            if value in ("", None, ()):
                env = env_name(name)
                raise ConfigError(f"{env} is not set", field=env, hint=f"set {env} in the environment or .env")

    def redacted(self) -> dict[str, Any]:
        """All settings as plain values with secrets masked (for ``config show`` and logs)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            if f.metadata["secret"]:
                value = mask_secret(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


def env_name(field_name: str) -> str:
    """The environment variable of a settings field."""
    return str(_FIELDS[field_name].metadata["env"])


def setting_fields() -> list[dataclasses.Field[Any]]:
    """The settings fields in declaration order (for docs, ``config show``)."""
    return [f for f in fields(Settings) if f.name != "sources"]


_FIELDS = {f.name: f for f in fields(Settings)}
_HINTS = typing.get_type_hints(Settings)


# --- parsing ---------------------------------------------------------------------------------
def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {raw!r}")


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


#: How a text value (environment, ``.env``, a string flag) becomes each field type.
_PARSERS: dict[type, Callable[[str], Any]] = {
    bool: _parse_bool,
    int: int,
    float: float,
    tuple: _parse_list,
    str: str,
}


def _field_type(name: str) -> tuple[type, bool]:
    """The type a field holds and whether it may be ``None`` (``int | None`` -> ``(int, True)``)."""
    hint = _HINTS[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return typing.get_origin(inner) or inner, True
    return typing.get_origin(hint) or hint, False


def _convert(name: str, raw: Any) -> Any:
    if raw is None:
        return None
    typ, optional = _field_type(name)
    if isinstance(raw, str):
        raw_s = raw.strip()
        if optional and not raw_s:
            return None
        return _PARSERS[typ](raw_s)
    if typ is tuple and isinstance(raw, (list, tuple)):
        return tuple(str(p).strip() for p in raw if str(p).strip())
    if typ is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw


def validate_test_date(value: str, *, field_name: str = "TEST_DATE") -> str:
    """Return ``value`` if it is exactly a real ``YYYY-MM-DD`` date, else raise :class:`ConfigError`.

    Only typed values reach queries: anything else (``{"$gt": ""}``, ``2025-13-01``, the ISO week
    form ``2025-W51-6``) is refused. The one definition is :func:`anomaly_cli.contract.is_test_date`.
    """
    from anomaly_cli.contract import is_test_date

    if not is_test_date(value):
        raise ConfigError(f"{field_name} must be a real date YYYY-MM-DD, got {value!r}", field=field_name)
    return value


def _validate(s: Settings) -> None:
    def bad(name: str, problem: str) -> ConfigError:
        return ConfigError(f"{env_name(name)}: {problem}", field=env_name(name))

    if s.test_date:
        validate_test_date(s.test_date)
    if s.mongo_to_sqs_mode not in MODES:
        raise bad("mongo_to_sqs_mode", f"must be one of {', '.join(MODES)}, got {s.mongo_to_sqs_mode!r}")
    if s.mongo_read_preference not in READ_PREFERENCES:
        raise bad("mongo_read_preference", f"must be one of {', '.join(READ_PREFERENCES)}")
    if s.log_level.upper() not in LOG_LEVELS:
        raise bad("log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    if s.log_format not in LOG_FORMATS:
        raise bad("log_format", f"must be one of {', '.join(LOG_FORMATS)}, got {s.log_format!r}")
    try:
        zoneinfo.ZoneInfo(s.test_date_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise bad("test_date_timezone", f"unknown time zone {s.test_date_timezone!r}") from e
    positive = [
        "discovery_batch_size",
        "discovery_send_concurrency",
        "batch_size",
        "max_concurrency",
        "fetch_retries",
        "max_audio_bytes",
        "access_denied_limit",
        "source_gone_window",
    ]
    for name in positive:
        if getattr(s, name) < 1:
            raise bad(name, f"must be >= 1, got {getattr(s, name)}")
    if s.metrics_port is not None and not 0 <= s.metrics_port <= 65535:
        raise bad("metrics_port", f"must be a TCP port 0-65535 (0: any free port), got {s.metrics_port}")
    if s.max_records is not None and s.max_records < 1:
        raise bad("max_records", f"must be >= 1 when set, got {s.max_records}")
    for f in setting_fields():  # NaN compares false with everything, so it passes every range check below
        value = getattr(s, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f.name, f"must be a finite number, got {value!r}")
        if isinstance(value, float) and abs(value) > MAX_FLOAT_SETTING:  # timedelta / Event.wait overflow
            raise bad(f.name, f"must be at most {MAX_FLOAT_SETTING:.0f}, got {value!r}")
    if not 0 < s.source_gone_threshold <= 1:
        raise bad("source_gone_threshold", f"must be a fraction in (0, 1], got {s.source_gone_threshold}")
    for name in (
        "poll_interval_seconds",
        "flush_seconds",
        "fetch_connect_timeout_seconds",
        "fetch_read_timeout_seconds",
        "fetch_deadline_seconds",
        "max_duration_seconds",
        "discovery_lease_seconds",
        "discovery_heartbeat_seconds",
        "throughput_log_seconds",
    ):
        if getattr(s, name) <= 0:
            raise bad(name, f"must be > 0, got {getattr(s, name)}")
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    for name, why in ProgrammeThresholds.from_settings(s).problems():
        raise bad(name, why)
    if s.cpu_workers < 0:
        raise bad("cpu_workers", "must be >= 0")
    if s.discovery_send_patience_seconds < 0:
        raise bad("discovery_send_patience_seconds", "must be >= 0 (0: fail at the first SQS outage)")
    if not 0 <= s.sqs_wait_seconds <= MAX_LONG_POLL_SECONDS:
        raise bad("sqs_wait_seconds", f"must be between 0 and {MAX_LONG_POLL_SECONDS} (the SQS long-poll maximum)")
    if not 0 <= s.visibility_timeout_seconds <= MAX_VISIBILITY_TIMEOUT_SECONDS:
        raise bad(
            "visibility_timeout_seconds",
            f"must be between 0 and {MAX_VISIBILITY_TIMEOUT_SECONDS} (12 h, the SQS maximum)",
        )
    if s.discovery_batch_size > 10000:
        raise bad("discovery_batch_size", "must be <= 10000")
    if not s.subject_name.strip():
        raise bad("subject_name", "must not be empty")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file: ``KEY=VALUE`` lines, ``#`` comments, optional quotes, ``export``."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        if "=" not in line:
            raise ConfigError(f"{path}:{lineno}: expected KEY=VALUE", field=str(path))
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | Path | None = ".env",
) -> Settings:
    """Build the frozen :class:`Settings`: defaults < ``.env`` < environment < ``flags``.

    ``flags`` maps field names to values; ``None`` values mean "flag not given". ``environ``
    defaults to ``os.environ``; ``ANOMALY_ENV_FILE`` overrides the ``.env`` path.
    """
    environ = os.environ if environ is None else environ
    env_path = environ.get("ANOMALY_ENV_FILE") or env_file
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if env_path:
        dotenv = read_env_file(Path(env_path))
        layers.append((".env", {n: dotenv[env_name(n)] for n in _FIELDS if n != "sources" and env_name(n) in dotenv}))
    layers.append(("env", {n: environ[env_name(n)] for n in _FIELDS if n != "sources" and env_name(n) in environ}))
    layers.append(("flag", {k: v for k, v in (flags or {}).items() if v is not None}))

    values: dict[str, Any] = {}
    sources: dict[str, str] = {n: "default" for n in _FIELDS if n != "sources"}
    for source, layer in layers:
        for name, raw in layer.items():
            if name not in _FIELDS or name == "sources":
                raise ConfigError(f"unknown setting {name!r}", field=name)
            try:
                values[name] = _convert(name, raw)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{env_name(name)}: invalid value {raw!r} ({e})", field=env_name(name)) from e
            sources[name] = source
    if "log_level" in values:
        values["log_level"] = str(values["log_level"]).upper()
    if "log_format" in values:
        values["log_format"] = str(values["log_format"]).lower()
    settings = Settings(**values, sources=sources)
    _validate(settings)
    return settings


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    """A copy of ``settings`` with ``changes`` applied as flags (validated again)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return settings
    values = {f.name: getattr(settings, f.name) for f in setting_fields()}
    sources = dict(settings.sources)
    for k, v in changes.items():
        values[k] = _convert(k, v) if isinstance(v, str) else v
        sources[k] = "flag"
    new = Settings(**values, sources=sources)
    _validate(new)
    return new
