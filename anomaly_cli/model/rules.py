"""Rules with physical meaning: measured features -> ordered reason codes.

A rule is data (code, conditions, suppressions); its thresholds live in the model artifact, not
in code: :data:`DEFAULT_RULES` is only what ``model train`` writes into a new artifact. Each
reason carries the measured value and the threshold it crossed, so an operator can read why.

Decisions:
- Reasons are reported in the order of ``screening.REASON_CODES`` (most basic first).
- A rule that fires can *suppress* rules that cannot be judged any more: a silent recording is
  not also ``low_volume``/``no_speech``/``noisy``; a quiet one is not judged for speech
  content or SNR (the floor noise dominates both); a clip too short for syllable rhythm is not
  judged ``no_speech``/``noisy``; a clipped one is not ``noisy`` (clipping distortion reads as
  noise to an SNR estimate).
- A rule with several conditions fires when ``mode`` is ``any`` and one holds, or ``all`` and
  all hold; the reason reports the first condition that holds (``any``) or the first one
  (``all``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from anomaly_cli.screening import REASON_CODES, Reason

_OPS = {
    "<": lambda v, t: v < t,
    ">": lambda v, t: v > t,
    "<=": lambda v, t: v <= t,
    ">=": lambda v, t: v >= t,
    "abs>": lambda v, t: abs(v) > t,
}


@dataclass(frozen=True)
class Condition:
    """``feature op threshold``; ``scale`` says how far past the threshold is "very" (for scores)."""

    feature: str
    op: str
    threshold: float
    scale: float = 1.0

    def holds(self, features: Mapping[str, float]) -> bool:
        v = features.get(self.feature)
        return v is not None and math.isfinite(v) and _OPS[self.op](v, self.threshold)

    def margin(self, features: Mapping[str, float]) -> float:
        """How far past the threshold the value is, in units of ``scale`` (>= 0 when it holds)."""
        v = float(features.get(self.feature, self.threshold))
        d = abs(v) - self.threshold if self.op == "abs>" else (v - self.threshold if ">" in self.op else self.threshold - v)
        return d / self.scale if self.scale else d


@dataclass(frozen=True)
class Rule:
    """One reason code and when it fires."""

    code: str
    conditions: tuple[Condition, ...]
    mode: str = "any"
    suppresses: tuple[str, ...] = ()
    doc: str = ""

    def evaluate(self, features: Mapping[str, float]) -> tuple[Reason, float] | None:
        """The reason and its margin when the rule fires, else None."""
        held = [c for c in self.conditions if c.holds(features)]
        if self.mode == "all":
            if len(held) != len(self.conditions):
                return None
            c = self.conditions[0]
            margin = min(x.margin(features) for x in self.conditions)
        else:
            if not held:
                return None
            c = held[0]
            margin = max(x.margin(features) for x in held)
        value = float(features[c.feature])
        detail = " and ".join(f"{x.feature} {_fmt(features.get(x.feature))} {x.op} {x.threshold:g}"
                              for x in (self.conditions if self.mode == "all" else [c]))
        return Reason(self.code, round(value, 6), c.threshold, detail), margin

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Rule":
        conds = tuple(Condition(**c) for c in d["conditions"])
        return cls(d["code"], conds, d.get("mode", "any"), tuple(d.get("suppresses", ())), d.get("doc", ""))


def _fmt(v: float | None) -> str:
    return "nan" if v is None else f"{v:.4g}"


@dataclass(frozen=True)
class RuleSet:
    """The ordered rules of one model version."""

    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def evaluate(self, features: Mapping[str, float]) -> list[tuple[Reason, float]]:
        """Reasons (with margins) that fire, suppressions applied, in ``REASON_CODES`` order."""
        fired: dict[str, tuple[Reason, float]] = {}
        suppressed: set[str] = set()
        for rule in sorted(self.rules, key=lambda r: REASON_CODES.index(r.code)):
            if rule.code in suppressed:
                continue
            hit = rule.evaluate(features)
            if hit is not None:
                fired[rule.code] = hit
                suppressed.update(rule.suppresses)
        return [fired[c] for c in REASON_CODES if c in fired and c not in suppressed]

    def thresholds(self) -> dict[str, list[dict[str, Any]]]:
        """``code -> [{feature, op, threshold}]`` for ``model info`` and the README."""
        return {r.code: [{"feature": c.feature, "op": c.op, "threshold": c.threshold} for c in r.conditions]
                for r in self.rules}

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rules]

    @classmethod
    def from_list(cls, items: list[Mapping[str, Any]]) -> "RuleSet":
        return cls(tuple(Rule.from_dict(d) for d in items))


_QUIET = ("low_volume", "no_speech", "noisy")

#: The rules a newly trained artifact gets. Thresholds are physical, chosen with margins around
#: the generator's label boundaries (see synth.py) and checked on espeak-ng and real speech.
DEFAULT_RULES = RuleSet((
    Rule("too_short", (Condition("duration_s", "<", 2.0, 1.0),), suppresses=("no_speech", "noisy"),
         doc="duration under 2 s: too little to be a reading"),
    Rule("too_long", (Condition("duration_s", ">", 240.0, 60.0),),
         doc="duration over 4 min: not one child reading one passage"),
    Rule("silent", (Condition("level_p95_dbfs", "<", -60.0, 10.0),), suppresses=_QUIET,
         doc="95th percentile of 32 ms frame RMS below -60 dBFS: nothing audible"),
    Rule("low_volume", (Condition("level_p95_dbfs", "<", -42.0, 6.0),), suppresses=("no_speech", "noisy"),
         doc="loudest frames below -42 dBFS: speech too quiet to assess"),
    Rule("no_speech", (Condition("speech_ratio", "<", 0.15, 0.1),),
         suppresses=("noisy",), doc="audible but no syllable-rate speech activity (noise, hum, tone, music)"),
    Rule("noisy", (Condition("snr_db", "<", 6.0, 4.0),), doc="speech-to-noise ratio under 6 dB"),
    Rule("clipped", (Condition("clip_ratio", ">", 0.002, 0.01),), suppresses=("noisy",),
         doc="more than 0.2 % of samples in runs of >= 3 at full scale"),
    Rule("dc_offset", (Condition("dc_offset", "abs>", 0.03, 0.05),), doc="mean sample value beyond +-0.03"),
))
