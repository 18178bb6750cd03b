"""What the screening engine returns for one recording, shared by the engine, the worker,
``anomaly score`` and the operator tools.

A :class:`Screening` is always an *answer*: a recording that could not be fetched or decoded
is a screening with ``status == "failed"``, an ``error`` and a ``corrupt`` / ``unavailable``
reason, never an exception.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Decoding stops here (``MAX_DURATION_SECONDS``'s default): 5 minutes, above the screening's
#: ``MAX_READING_SECONDS`` (240 s, ``too_long``) so every recording the screening can judge is
#: decoded whole. Cost grows with the duration decoded: at 600 s a 337 KB Opus file of noise cost
#: 2.6 s of CPU, over the issue-12 bound of 2 s for any input of <= 5 MB; at 300 s it is about half
#: (bench/bench_decode_cost.py, BENCHMARKS.md). Longer is ``duration_over_cap``, reason ``too_long``.
#: Here, a light module, so that config, the engine and the decoder share one value.
DEFAULT_MAX_DURATION_S = 300.0

#: Every reason code, in the order they are reported when several apply (most basic first): plain
#: measurements of the delivered file (length, level, clipping) before content judgements (no_speech, noisy).
REASON_CODES = (
    "unavailable",
    "corrupt",
    "truncated",
    "too_short",
    "too_long",
    "silent",
    "low_volume",
    "clipped",
    "no_speech",
    "noisy",
    "dc_offset",
    "duplicate",
    "outlier",
)


@dataclass(frozen=True)
class Reason:
    """Why a recording is flagged: the measured ``value`` crossed ``threshold``."""

    code: str
    value: float | None = None
    threshold: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Screening:
    """The outcome of screening one recording."""

    status: str  # "ok" | "failed"
    is_anomaly: bool
    anomaly_score: float  # in [0, 1]
    reasons: tuple[Reason, ...]
    model_version: str
    features: dict[str, float] = field(default_factory=dict)
    # format, sample_rate, channels, duration_s, bytes, sha256, pcm_sha256, fingerprint, fp_bands ...
    audio: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    error: dict[str, str] | None = None  # {"code", "message", "stage"} when status == "failed"
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: programme thresholds the rules used (``model/thresholds.py``); empty when not screened
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @classmethod
    def failed(
        cls,
        *,
        code: str,
        message: str,
        stage: str,
        reason: str,
        model_version: str,
        audio: dict[str, Any] | None = None,
        timings_ms: dict[str, float] | None = None,
    ) -> "Screening":
        """A terminal answer for a recording that could not be fetched (``unavailable``) or
        decoded (``corrupt``)."""
        if reason not in REASON_CODES:
            raise ValueError(f"unknown reason code {reason!r}")
        return cls(
            status="failed",
            is_anomaly=True,
            anomaly_score=1.0,
            reasons=(Reason(reason, None, None, f"{code}: {message}"[:300]),),
            model_version=model_version,
            audio=dict(audio or {}),
            error={"code": code, "message": message[:500], "stage": stage},
            timings_ms=dict(timings_ms or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["reasons"] = [r.to_dict() for r in self.reasons]
        return d
