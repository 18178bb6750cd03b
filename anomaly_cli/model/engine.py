"""The screening engine facade: bytes (or a fetch error) in, a :class:`Screening` out.

Used by the worker, ``anomaly score`` and the tools. ``screen_bytes`` never raises for bad
audio: a recording that cannot be decoded is an answer (``corrupt``), as is one that could not
be fetched (``unavailable``, :func:`screen_fetch_error`).

Decisions:
- A decode stopped at the duration cap is ``status="failed"`` with error code
  ``duration_over_cap`` and reason ``too_long``: the file may well be fine audio, but the
  pipeline will not spend more than the cap on it, and it cannot be a single reading.
- A ``DecodeError`` with code ``truncated`` (e.g. an m4a cut before its index) is reason
  ``truncated``; every other decode error is ``corrupt``.
- Every fetch error, including ``too_large``, is reason ``unavailable``: the recording was not
  looked at, so nothing is claimed about its audio.
- ``anomaly_score``: the outlier model's logistic score, raised to at least 0.5 + 0.5*tanh(margin)
  when a rule fires (0.5 exactly at a threshold, towards 1 far past it).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anomaly_cli import errors
from anomaly_cli.screening import DEFAULT_MAX_DURATION_S, Reason, Screening

if TYPE_CHECKING:
    import numpy as np

    from anomaly_cli.audio.decode import DecodedAudio
    from anomaly_cli.model.outlier import OutlierModel
    from anomaly_cli.model.rules import RuleSet
    from anomaly_cli.model.thresholds import ProgrammeThresholds


@dataclass
class LoadedModel:
    """A model version ready to screen: rules, outlier model and metadata."""

    version: str
    rules: RuleSet
    outlier: OutlierModel
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: The programme thresholds written into ``rules`` (``model/thresholds.py``), recorded per result.
    thresholds: dict[str, float] = field(default_factory=dict)


def feature_names() -> tuple[str, ...]:
    """Every feature the model sees: ``audio.features`` then the model's speech-band measurements."""
    from anomaly_cli.audio.features import FEATURE_NAMES
    from anomaly_cli.model import speechband

    return tuple(FEATURE_NAMES) + speechband.NAMES


def compute_features(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The feature dict of decoded audio (names: :func:`feature_names`)."""
    from anomaly_cli.audio.features import extract
    from anomaly_cli.model import speechband

    feats = {k: float(v) for k, v in extract(samples, sample_rate).items()}
    feats.update(speechband.measure(samples, sample_rate))
    return feats


def load_model(
    model_dir: str | Path | None, version: str | None = None, thresholds: ProgrammeThresholds | None = None
) -> LoadedModel:
    """Load ``version`` (newest when None) from ``model_dir``; :class:`errors.ModelError` if unusable.

    ``thresholds`` (default: the documented defaults, as the settings have them) are written into
    the rules: callers pass ``ProgrammeThresholds.from_settings(settings)``.
    """
    from anomaly_cli.model import artifacts
    from anomaly_cli.model.rules import RuleSet
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    path = artifacts.resolve(model_dir, version)
    outlier, meta = artifacts.load(path, feature_names())
    try:
        rules = RuleSet.from_list(meta["rules"])
    except (KeyError, TypeError, ValueError) as e:
        raise errors.ModelError(f"{path}: metadata.json has no valid 'rules': {e}") from e
    t = thresholds or ProgrammeThresholds()
    return LoadedModel(
        version=str(meta.get("version") or path.name),
        rules=t.apply(rules),
        outlier=outlier,
        metadata=meta,
        path=path,
        thresholds=t.to_dict(),
    )


def screen_fetch_error(exc: errors.FetchError, model_version: str) -> Screening:
    """The terminal answer for a recording that could not be fetched (all codes: ``unavailable``)."""
    return Screening.failed(
        code=errors.error_code(exc), message=str(exc), stage="fetch", reason="unavailable", model_version=model_version
    )


def screen_bytes(data: bytes, model: LoadedModel, *, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> Screening:
    """Decode and screen one recording's bytes. Never raises for bad audio."""
    from anomaly_cli.audio.decode import decode_bytes

    t0 = time.perf_counter()
    facts = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        decoded = decode_bytes(data, max_duration_s=max_duration_s)
    except errors.DecodeError as e:
        ms = {"decode": _ms(t0)}
        reason = "truncated" if e.code == "truncated" else "corrupt"
        return Screening.failed(
            code=e.code,
            message=str(e),
            stage="decode",
            reason=reason,
            model_version=model.version,
            audio=facts,
            timings_ms=ms,
        )
    decode_ms = _ms(t0)
    if decoded.capped:
        audio = {**_audio_facts(decoded, data, fingerprint=False), **facts}
        s = Screening.failed(
            code="duration_over_cap",
            message=f"recording longer than the {max_duration_s:g} s cap",
            stage="decode",
            reason="too_long",
            model_version=model.version,
            audio=audio,
            timings_ms={"decode": decode_ms},
        )
        return s
    result = screen_decoded(decoded, model, raw=data)
    result.timings_ms["decode"] = decode_ms
    return result


def screen_decoded(decoded: DecodedAudio, model: LoadedModel, *, raw: bytes) -> Screening:
    """Screen audio that is already decoded (``raw`` are the file's bytes, for hashes and size)."""
    t0 = time.perf_counter()
    feats = compute_features(decoded.samples, decoded.sample_rate)
    audio = _audio_facts(decoded, raw, fingerprint=True)
    features_ms = _ms(t0)
    t1 = time.perf_counter()
    fired = model.rules.evaluate(feats)
    reasons = [r for r, _ in fired]
    if decoded.truncated:
        reasons.insert(
            0,
            Reason(
                "truncated",
                round(decoded.duration_s, 3),
                None if decoded.declared_duration_s is None else round(decoded.declared_duration_s, 3),
                "decoded duration (s) shorter than the container declares",
            ),
        )
    raw_score, p_outlier = model.outlier.score(feats)
    if not reasons and raw_score > model.outlier.threshold:
        reasons.append(
            Reason(
                "outlier",
                round(raw_score, 6),
                round(model.outlier.threshold, 6),
                "unusual feature combination for the model (isolation forest score)",
            )
        )
    score = p_outlier
    for _, margin in fired:
        score = max(score, 0.5 + 0.5 * math.tanh(max(margin, 0.0)))
    if decoded.truncated:
        score = max(score, 0.75)
    return Screening(
        status="ok",
        is_anomaly=bool(reasons),
        anomaly_score=round(min(1.0, max(0.0, score)), 6),
        reasons=tuple(reasons),
        model_version=model.version,
        features=feats,
        audio=audio,
        threshold=round(model.outlier.threshold, 6),
        timings_ms={"features": features_ms, "inference": _ms(t1)},
        thresholds=dict(model.thresholds),
    )


def _audio_facts(decoded: DecodedAudio, raw: bytes, *, fingerprint: bool) -> dict[str, Any]:
    from anomaly_cli.audio import fingerprint as fpmod

    facts: dict[str, Any] = {
        "format": decoded.format,
        "codec": decoded.codec,
        "sample_rate": decoded.source_rate,
        "channels": decoded.channels,
        "duration_s": round(decoded.duration_s, 3),
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "truncated": bool(decoded.truncated),
        "pcm_sha256": fpmod.pcm_sha256(decoded.samples),
    }
    if fingerprint:
        fp, query = fpmod.fingerprint_and_query_keys(decoded.samples, decoded.sample_rate)
        facts["fingerprint"] = fpmod.to_text(fp)
        facts["fp_bands"] = list(fpmod.band_keys(fp))
        # looked up with, never stored (results/document.py keeps only AUDIO_FIELDS)
        facts["fp_query"] = query
    return facts


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 3)


# --- worker processes --------------------------------------------------------------------------
_PROCESS_MODEL: LoadedModel | None = None


def init_process(model_dir: str, version: str | None, thresholds: dict[str, float] | None = None) -> None:
    """``ProcessPoolExecutor`` initializer: load the model once per worker process."""
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    global _PROCESS_MODEL
    _PROCESS_MODEL = load_model(model_dir, version, ProgrammeThresholds(**thresholds) if thresholds else None)


def screen_over_budget(data: bytes, cpu_seconds: float) -> Screening:
    """The terminal result of an item stopped for using up its CPU budget in a screening process."""
    model = _PROCESS_MODEL
    return Screening.failed(
        code="cpu_budget_exceeded",
        message=f"screening used more than its {cpu_seconds:g} s CPU budget and was stopped",
        stage="decode",
        reason="corrupt",
        model_version=model.version if model else "",
        audio={"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()},
        timings_ms={},
    )


def screen_stopped(code: str, message: str, model_version: str, nbytes: int) -> Screening:
    """The terminal result of an item whose screening process the worker stopped: killed at its
    wall-clock budget (``wall_budget_exceeded``), or killed by the kernel at its CPU backstop
    (``cpu_budget_exceeded``). The bytes are gone with the process: only their length is known."""
    return Screening.failed(
        code=code,
        message=message,
        stage="decode",
        reason="corrupt",
        model_version=model_version,
        audio={"bytes": nbytes},
    )


def screen_in_process(data: bytes, max_duration_s: float = DEFAULT_MAX_DURATION_S) -> Screening:
    """Screen ``data`` with the model :func:`init_process` loaded in this process."""
    if _PROCESS_MODEL is None:
        raise errors.ModelError("init_process was not called in this worker process")
    return screen_bytes(data, _PROCESS_MODEL, max_duration_s=max_duration_s)
