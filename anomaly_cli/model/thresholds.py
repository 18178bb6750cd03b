"""Programme thresholds: the floors a programme may set without retraining.

The model's rules carry physical thresholds (``rules.DEFAULT_RULES``); five of them depend on
the programme rather than on physics, and are settings (``config.Settings``, environment names
below): how short and how long a reading may be, how quiet is silent and too quiet, and how far
the reader must rise above what is behind them. :meth:`ProgrammeThresholds.apply` writes them
into a model's rules when it is loaded, so every screening process, ``anomaly score`` and the
evaluation judge with the same values, and every result records them (``inference.thresholds``):
a change of them is visible per result.

Decisions:
- The level floors move both conditions of their rule: the 95th percentile at the floor and the
  loudest 1 % at the floor + 4 dB (a reading that is mostly pauses keeps its loud frames). The
  noise margin moves ``noisy``'s test: model v2's ``dominance_db`` at the margin, model v3's
  ``voice_clarity_db`` (level spread + harmonics-to-noise ratio) at the margin + 13 dB, model v4's
  ``loud_over_median_db`` and ``median_clarity_db`` conditions by the margin's change from its default
  (the artifact is written at the defaults: 14, 12 and 22.5 dB at the default 15).
- Defaults are the shipped models' values; the settings are validated (ordered, finite) when loaded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anomaly_cli.config import Settings
    from anomaly_cli.model.rules import Condition, RuleSet

P99_ABOVE_P95_DB = 4.0
#: Model v3's ``noisy`` test (``voice_clarity_db``, level spread + harmonics-to-noise ratio) sits this far
#: above the noise margin (v2's test, ``dominance_db``, sits at it): 15 + 13 = 28 dB by default.
CLARITY_ABOVE_MARGIN_DB = 13.0
#: Model v4's ``noisy`` conditions on the loudest frames over the median frame (``loud_over_median_db``, 14 and
#: 12 dB in the artifact; ``median_clarity_db``, with the voice's HNR added, 22.5 dB) are written at the
#: default margin (15); a margin of M moves them by M - 15.
SHIFTED_BY_MARGIN = frozenset({("noisy", "loud_over_median_db"), ("noisy", "median_clarity_db")})


@dataclass(frozen=True)
class ProgrammeThresholds:
    """The programme-tunable floors (field -> setting: see ``SETTING_OF``)."""

    min_duration_s: float = 2.0
    max_duration_s: float = 240.0
    silent_dbfs: float = -60.0
    low_volume_dbfs: float = -42.0
    noise_margin_db: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ProgrammeThresholds:
        return cls(**{f: float(getattr(settings, s)) for f, s in SETTING_OF.items()})

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    def problems(self) -> list[tuple[str, str]]:
        """``(setting, why)`` for values that cannot be right (empty: all usable)."""
        out = [(SETTING_OF[k], "must be a finite number") for k, v in self.to_dict().items() if not math.isfinite(v)]
        if out:
            return out
        if self.min_duration_s < 0:
            out.append((SETTING_OF["min_duration_s"], "must be >= 0"))
        if self.max_duration_s <= self.min_duration_s:
            out.append((SETTING_OF["max_duration_s"], "must be greater than the minimum duration"))
        if self.low_volume_dbfs <= self.silent_dbfs:
            out.append((SETTING_OF["low_volume_dbfs"], "must be above the silent floor"))
        if self.low_volume_dbfs > 0 or self.silent_dbfs > 0:
            out.append((SETTING_OF["low_volume_dbfs"], "levels are dBFS: <= 0"))
        if self.noise_margin_db < 0:
            out.append((SETTING_OF["noise_margin_db"], "must be >= 0"))
        return out

    def apply(self, rules: RuleSet) -> RuleSet:
        """``rules`` with these thresholds written into the conditions they govern."""
        from anomaly_cli.model.rules import Rule, RuleSet

        targets: Mapping[tuple[str, str], float] = {
            ("too_short", "duration_s"): self.min_duration_s,
            ("too_long", "duration_s"): self.max_duration_s,
            ("silent", "level_p95_dbfs"): self.silent_dbfs,
            ("silent", "level_p99_dbfs"): self.silent_dbfs + P99_ABOVE_P95_DB,
            ("low_volume", "level_p95_dbfs"): self.low_volume_dbfs,
            ("low_volume", "level_p99_dbfs"): self.low_volume_dbfs + P99_ABOVE_P95_DB,
            ("noisy", "dominance_db"): self.noise_margin_db,
            ("noisy", "voice_clarity_db"): self.noise_margin_db + CLARITY_ABOVE_MARGIN_DB,
        }
        shift = self.noise_margin_db - ProgrammeThresholds.noise_margin_db

        def moved(code: str, c: Condition) -> Condition:
            if (code, c.feature) in targets:
                return dataclasses.replace(c, threshold=targets[(code, c.feature)])
            if (code, c.feature) in SHIFTED_BY_MARGIN:
                return dataclasses.replace(c, threshold=c.threshold + shift)
            return c

        out = []
        for r in rules.rules:
            when = tuple(tuple(moved(r.code, c) for c in g) for g in r.when)
            out.append(Rule(r.code, when, r.suppresses, r.doc))
        return RuleSet(tuple(out))


#: Field -> ``Settings`` attribute (its environment name is the upper-case form).
SETTING_OF = {
    "min_duration_s": "min_duration_seconds",
    "max_duration_s": "max_reading_seconds",
    "silent_dbfs": "silent_dbfs",
    "low_volume_dbfs": "low_volume_dbfs",
    "noise_margin_db": "noise_margin_db",
}
