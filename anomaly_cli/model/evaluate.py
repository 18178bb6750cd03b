"""Evaluation: per-class recall, false alarms on normals, reason accuracy, confusion table.

Definitions (decisions):
- recall of class C: share of C recordings whose reasons *include* C (flagged for the right
  reason, not merely flagged);
- false-alarm rate: share of ``normal`` recordings flagged for any reason;
- reason accuracy: share of flagged anomalous recordings whose *first* reason is their label, or
  is ``low_volume`` with the label reported after it. The model reports the level before the
  content (``screening.REASON_CODES``), so a recording that a codec or a distant microphone made
  quiet *and* that holds no speech is ``low_volume, no_speech`` by design; ``low_volume`` is a
  plain level measurement of the delivered file (the same one that defines the generator's
  ``low_volume`` label), not a guess, so it is a right first reason when the label follows it.
  Such items are counted apart (``level_first``) so the strict figure stays visible;
- confusion: label -> first reason (``none`` when not flagged) -> count;
- per style: false alarms on the normals of each ``variant`` of the manifest (reading styles:
  letter, syllable, word, fluent, stops_early, teacher_prompt ...), so no style hides in the
  overall rate; the bar holds for each style as for the whole (``false_alarm:<style>``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly_cli.model.engine import LoadedModel, screen_bytes

#: Reasons that may come before the label and still count as a right first reason: plain level
#: measurements the fixed reason order puts ahead of content judgements (see the module docstring).
LEVEL_FIRST = frozenset({"low_volume"})

#: The issue's quality bar: minimum recall per class, maximum false-alarm rate, min reason accuracy.
QUALITY_BAR: dict[str, Any] = {
    "recall": {
        "silent": 0.98,
        "no_speech": 0.98,
        "too_short": 0.98,
        "clipped": 0.98,
        "low_volume": 0.98,
        "corrupt": 0.98,
        "truncated": 0.98,
        "noisy": 0.90,
    },
    "false_alarm_max": 0.02,
    "reason_accuracy_min": 0.95,
}


@dataclass
class Report:
    """Counts gathered over one evaluation set."""

    model_version: str
    total: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    flagged_anomalies: int = 0
    first_right: int = 0
    level_first: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)
    #: normals per variant (reading style) -> [count, flagged]
    styles: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, label: str, codes: list[str], variant: str = "") -> None:
        self.total[label] = self.total.get(label, 0) + 1
        if label == "normal" and variant:
            row_s = self.styles.setdefault(variant, [0, 0])
            row_s[0] += 1
            row_s[1] += int(bool(codes))
        first = codes[0] if codes else "none"
        row = self.confusion.setdefault(label, {})
        row[first] = row.get(first, 0) + 1
        if label == "normal":
            if codes:
                self.hits["normal"] = self.hits.get("normal", 0) + 1
                self.misses.append({"file": name, "label": label, "reasons": codes})
            return
        if label in codes:
            self.hits[label] = self.hits.get(label, 0) + 1
        else:
            self.misses.append({"file": name, "label": label, "reasons": codes})
        if codes:
            self.flagged_anomalies += 1
            level_first = first in LEVEL_FIRST and first != label and label in codes
            self.level_first += int(level_first)
            self.first_right += int(first == label or level_first)

    @property
    def recall(self) -> dict[str, float]:
        return {k: self.hits.get(k, 0) / v for k, v in sorted(self.total.items()) if k != "normal"}

    @property
    def false_alarm_rate(self) -> float | None:
        n = self.total.get("normal", 0)
        return self.hits.get("normal", 0) / n if n else None

    @property
    def style_false_alarms(self) -> dict[str, float]:
        """False-alarm rate of the normals of each variant (reading style)."""
        return {k: v[1] / v[0] for k, v in sorted(self.styles.items()) if v[0]}

    @property
    def reason_accuracy(self) -> float | None:
        return self.first_right / self.flagged_anomalies if self.flagged_anomalies else None

    def meets_bar(self) -> dict[str, bool]:
        """Per criterion of :data:`QUALITY_BAR` present in this set: met or not."""
        out = {f"recall:{k}": self.recall[k] >= v for k, v in QUALITY_BAR["recall"].items() if k in self.recall}
        if self.false_alarm_rate is not None:
            out["false_alarm"] = self.false_alarm_rate <= QUALITY_BAR["false_alarm_max"]
        for k, v in self.style_false_alarms.items():
            out[f"false_alarm:{k}"] = v <= QUALITY_BAR["false_alarm_max"]
        if self.reason_accuracy is not None:
            out["reason_accuracy"] = self.reason_accuracy >= QUALITY_BAR["reason_accuracy_min"]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "counts": dict(sorted(self.total.items())),
            "recall": self.recall,
            "false_alarm_rate": self.false_alarm_rate,
            "style_false_alarms": self.style_false_alarms,
            "style_counts": {k: v[0] for k, v in sorted(self.styles.items())},
            "reason_accuracy": self.reason_accuracy,
            "level_first": self.level_first,
            "confusion": self.confusion,
            "quality_bar": self.meets_bar(),
            "misses": self.misses[:50],
        }


def evaluate_items(
    items: Iterable[tuple[str, str, bytes] | tuple[str, str, bytes, str]],
    model: LoadedModel,
    *,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Screen ``(name, label, bytes[, variant])`` items and tally the report."""
    rep = Report(model.version)
    for i, item in enumerate(items):
        name, label, data = item[0], item[1], item[2]
        s = screen_bytes(data, model)
        rep.add(name, label, s.reason_codes, item[3] if len(item) > 3 else "")
        if progress:
            progress(i + 1)
    return rep


def evaluate_dir(data_dir: str | Path, model: LoadedModel, *, progress: Callable[[int], None] | None = None) -> Report:
    """Evaluate a labelled folder (``manifest.csv`` with ``file,label``; copies are skipped)."""
    from anomaly_cli.model.train import manifest_rows

    root = Path(data_dir)
    rows = [r for r in manifest_rows(root) if not r.get("duplicate_of")]

    def items() -> Iterable[tuple[str, str, bytes, str]]:
        for r in rows:
            p = root / r["file"]
            yield r["file"], r["label"], p.read_bytes() if p.is_file() else b"", r.get("variant") or ""

    return evaluate_items(items(), model, progress=progress)


def evaluate_synthetic(
    n: int,
    seed: int,
    model: LoadedModel,
    *,
    source: str = "formant",
    kinds: Iterable[str] | None = None,
    formats: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Generate a held-out set (``seed`` should differ from training) and evaluate it."""
    from anomaly_cli import synth

    with tempfile.TemporaryDirectory(prefix="anomaly-eval-") as tmp:
        synth.make_dataset(tmp, n, seed, source=source, kinds=kinds, formats=formats or synth.DEFAULT_FORMATS)
        return evaluate_dir(tmp, model, progress=progress)
