"""Rules with physical meaning: measured features -> ordered reason codes.

A rule is data (code, conditions, suppressions); its thresholds live in the model artifact, not
in code: :data:`DEFAULT_RULES` is only what ``model train`` writes into a new artifact. Each
reason carries the measured value and the threshold it crossed, so an operator can read why.

Decisions:
- Reasons are reported in the order of ``screening.REASON_CODES`` (most basic first).
- A rule that fires can *suppress* rules that cannot be judged any more: a silent recording is
  not also ``low_volume``/``no_speech``/``noisy``; a quiet one is not judged for SNR (the
  recorder's floor noise dominates it); a clip too short for syllable rhythm is not judged
  ``no_speech``/``noisy``; a clipped one is not ``noisy`` (clipping distortion reads as noise to
  an SNR estimate).
- A quiet (``low_volume``) recording *is* still judged for speech content: activity and rhythm are
  relative to the recording's own floor, so they survive a low level (quiet speech at -55..-45
  dBFS keeps speech_ratio >= 0.24 and band rhythm >= 15 dB), while quiet noise has neither (brown
  noise after AMR-NB, which strips its rumble, leaves ~-55 dBFS with ratio 0 and rhythm < 3.2 dB).
  Such a file gets both reasons, ``low_volume`` first: the fixed order puts the level (a plain
  measurement) before the content judgement, and either way the recording must be redone.
- A rule fires when any of its condition groups holds in full (an OR of ANDs); the reason
  reports the first condition of that group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

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
        d = (
            abs(v) - self.threshold
            if self.op == "abs>"
            else (v - self.threshold if ">" in self.op else self.threshold - v)
        )
        return d / self.scale if self.scale else d


@dataclass(frozen=True)
class Rule:
    """One reason code and when it fires: any of the groups ``when``, each a conjunction."""

    code: str
    when: tuple[tuple[Condition, ...], ...]
    suppresses: tuple[str, ...] = ()
    doc: str = ""

    def evaluate(self, features: Mapping[str, float]) -> tuple[Reason, float] | None:
        """The reason and its margin when the rule fires, else None.

        The reason reports the first condition of the first group that holds (its measured value
        and threshold); ``detail`` spells out the whole group.
        """
        for group in self.when:
            if all(c.holds(features) for c in group):
                c = group[0]
                margin = min(x.margin(features) for x in group)
                detail = " and ".join(
                    f"{x.feature} {_fmt(features.get(x.feature))} {x.op} {x.threshold:g}" for x in group
                )
                return Reason(self.code, round(float(features[c.feature]), 6), c.threshold, detail), margin
        return None

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(c for g in self.when for c in g)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Rule:
        when = tuple(tuple(Condition(**c) for c in g) for g in d["when"])
        return cls(d["code"], when, tuple(d.get("suppresses", ())), d.get("doc", ""))


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

    def thresholds(self) -> dict[str, list[list[dict[str, Any]]]]:
        """``code -> [[{feature, op, threshold}, ...] per group]`` for ``model info`` and the README."""
        return {
            r.code: [[{"feature": c.feature, "op": c.op, "threshold": c.threshold} for c in g] for g in r.when]
            for r in self.rules
        }

    def features(self) -> set[str]:
        """Every feature some rule reads."""
        return {c.feature for r in self.rules for c in r.conditions}

    def to_list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.rules]

    @classmethod
    def from_list(cls, items: list[Mapping[str, Any]]) -> RuleSet:
        return cls(tuple(Rule.from_dict(d) for d in items))


_QUIET = ("low_volume", "no_speech", "noisy")


def _r(
    code: str, *groups: list[tuple[str, str, float, float]], suppresses: tuple[str, ...] = (), doc: str = ""
) -> Rule:
    return Rule(code, tuple(tuple(Condition(*c) for c in g) for g in groups), suppresses, doc)


#: The rules a newly trained artifact gets. Thresholds are physical and sit in the gaps between
#: the generator's label boundaries (synth/anomalies.py); they are checked on espeak-ng and real speech
#: (MODEL_CARD.md). Scales say how far past a threshold counts as "clearly" (anomaly_score).
DEFAULT_RULES = RuleSet(
    (
        _r(
            "too_short",
            [("duration_s", "<", 2.0, 1.0)],
            suppresses=("no_speech", "noisy"),
            doc="shorter than 2 s: too little to be a reading (and too little to judge speech content)",
        ),
        _r(
            "too_long",
            [("duration_s", ">", 240.0, 60.0)],
            doc="longer than 4 minutes: not one child reading one passage",
        ),
        _r(
            "silent",
            [("level_p95_dbfs", "<", -60.0, 10.0), ("level_p99_dbfs", "<", -56.0, 10.0)],
            suppresses=_QUIET,
            doc="95th percentile of 25 ms frame level below -60 dBFS and the loudest 1 % below -56: nothing audible",
        ),
        # does not hide no_speech: speech activity and rhythm are relative measures and hold at low levels
        _r(
            "low_volume",
            [("level_p95_dbfs", "<", -42.0, 6.0), ("level_p99_dbfs", "<", -38.0, 6.0)],
            suppresses=("noisy",),
            doc="95th percentile of frame level below -42 dBFS and the loudest 1 % below -38: too quiet to assess "
            "(quiet but usable children sit at -38..-30; a child who reads a few words and stops keeps "
            "the loudest 1 %)",
        ),
        _r(
            "no_speech",
            # no voice and no syllable rhythm even hidden in the speech band: steady noise, hum, tones
            [("voiced_speech_s", "<", 0.1, 0.1), ("band_rhythm_db", "<", 3.2, 1.5)],
            # no voice and a regular beat (spectral flux repeats at 0.2-1 s lags): music, repeated chimes
            [("voiced_speech_s", "<", 0.1, 0.1), ("flux_periodicity", ">", 0.45, 0.2)],
            # no voice, a steady timbre (the centroid barely moves: chords, drums) and onsets: music at any level
            [
                ("voiced_speech_s", "<", 0.1, 0.1),
                ("centroid_hz_std", "<", 250.0, 100.0),
                ("flux_periodicity", ">", 0.25, 0.2),
            ],
            # ...or with note onsets at syllable rate far stronger than speech whose voicing noise hides
            # keeps (<= ~9 dB): a tune over a steady accompaniment
            [
                ("voiced_speech_s", "<", 0.1, 0.1),
                ("centroid_hz_std", "<", 250.0, 100.0),
                ("band_rhythm_db", ">", 12.0, 3.0),
            ],
            # no voice in a clean, clearly audible sound (beeps, chimes, drums): speech buried in noise,
            # whose voicing the noise hides, never sits this far above its floor
            [("voiced_speech_s", "<", 0.1, 0.1), ("band_snr_db", ">", 18.0, 6.0)],
            # no voice and a speech-band level that moves no more than white noise's own 25 ms jitter
            # (p90-p10 ~1.8 dB): steady noise, whatever a codec does to its modulation spectrum (AAC gives
            # white noise a 2-8 Hz "rhythm" of 3-8 dB); speech buried in such noise at >= -5 dB spreads >= 2.3
            [("voiced_speech_s", "<", 0.1, 0.1), ("dominance_db", "<", 2.1, 0.5)],
            # one steady tone holds its frequency bin through the sounding frames (test tone, whistle)
            [("voiced_speech_s", "<", 0.1, 0.1), ("stationary_tone_ratio", ">", 0.8, 0.2)],
            # a perfectly steady level in the speech band: continuous tones vary by < 1 dB
            [("voiced_speech_s", "<", 0.1, 0.1), ("band_snr_db", "<", 1.0, 0.5)],
            # a tune over a beat whose vibrato passes for a little gliding voice: a regular beat (readers stay
            # <= 0.37, and those that come near read fluently, voiced >= 30 % of the time), held notes, and
            # voicing under 10 % of the time
            [
                ("flux_periodicity", ">", 0.38, 0.2),
                ("voiced_speech_ratio", "<", 0.1, 0.05),
                ("steady_pitch_s", ">", 0.3, 0.5),
            ],
            # held notes outweigh speech-like voicing: melodies, ringtones, chimes over any beat
            [("steady_pitch_s", ">", 1.0, 1.0), ("voiced_speech_ratio", "<", 0.02, 0.01)],
            # since v4: a tune, whatever its beat and vibrato: the pitch of its voiced frames sits on one 12-tone
            # grid (notes share a tuning), which speech, gliding through every fraction of a semitone, never
            # does (readers and buried readers <= ~0.44 on the dev split; tunes, chimes, ringtones >= ~0.53)
            [("pitch_grid", ">", 0.5, 0.2)],
            suppresses=("noisy",),
            doc="audible, but no voice: noise, hum, tones, music, notification sounds (speech-like voicing < 0.1 s)",
        ),
        _r(
            "noisy",
            # since v3: the dominant voice by level spread (dominance_db) + harmonics-to-noise ratio of its
            # loudest frames (voice_hnr_db), voice_clarity_db. A reader among 4-6 other voices at -5..0 dB may
            # still spread 15-21 dB in level, but other voices fill its loudest frames: HNR <= ~10 dB, sum <=
            # ~27.5. One voice over quiet babble (>= 10 dB) sums >= ~28.6 on the dev split, even where its level
            # spread is under 15 (which v2 called noisy). A voice that is weakly periodic on its own (hoarse,
            # radio, codec) can sum under 28 too, so past v2's level test the sum counts only when the pitch
            # of the loudest frames hops between talkers (voice_pitch_jumps > 0.15; one voice <= ~0.12)
            # since v4, both only when the loudest frames rise < 14 dB over the median frame (loud_over_median_db):
            # a reader over quiet babble rises >= ~13.6 dB over it (v3 called 6 of 80 such dev readers noisy, at
            # 14.9-19.7 dB), a buried one <= ~12.7
            [
                ("voice_clarity_db", "<", 28.0, 4.0),
                ("dominance_db", "<", 15.0, 4.0),
                ("loud_over_median_db", "<", 14.0, 3.0),
            ],
            [
                ("voice_clarity_db", "<", 28.0, 4.0),
                ("voice_pitch_jumps", ">", 0.15, 0.1),
                ("loud_over_median_db", "<", 14.0, 3.0),
            ],
            # since v4: what is behind the reader, read at the median frame. Babble dips between words, so the
            # 10th percentiles behind dominance_db and band_snr_db read a buried reader as 17-24 dB clear; its
            # median fills the reader's pauses, and a reader at <= 0 dB among 4-6 voices rises <= ~11 dB over it,
            # with other voices in its loudest frames: level and HNR sum to <= ~20.4 dB (median_clarity_db). A voice
            # alone at its loudest that reads without pauses (the formant voice, its median frame its own speech)
            # sums >= ~24.6 dB with babble at +10..+20 dB
            [("loud_over_median_db", "<", 12.0, 3.0), ("median_clarity_db", "<", 22.5, 4.0)],
            doc="the loudest voice's level spread over what is behind it (1 s windows) and its harmonics-to-"
            "noise ratio sum to less than 28 dB, and either the level spread is under 15 dB or the pitch of the "
            "loudest frames hops between talkers, while its loudest frames rise less than 14 dB over the median "
            "frame; or they rise less than 12 dB over it and less than 22.5 dB with its HNR added: speech buried "
            "in babble or broadband noise at <= ~0 dB SNR",
        ),
        _r(
            "clipped",
            [("clip_hard_ratio", ">", 0.002, 0.01)],
            # after lossy re-encoding the flat tops ring below full scale: a plateau spike counts only in a
            # hot recording (loud frames within 10 dB of full scale), where clipping is physically likely
            [("clip_plateau_ratio", ">", 0.005, 0.01), ("level_p95_dbfs", ">", -10.0, 3.0)],
            # ...or smeared so far that no plateau is left (AAC rings over the cut tops): the loud 25 ms
            # frames sit within 6 dB of full scale and the peak reaches it. Speech peaks stand >= ~8 dB
            # above a frame's RMS (a vowel's glottal pulses), so such frames had their peaks cut;
            # usable readings sit at -12 dBFS or below (a phone's level control), clipped ones at -5..-1
            [("level_p95_dbfs", ">", -6.0, 3.0), ("peak_dbfs", ">", -0.5, 1.0)],
            suppresses=("noisy",),
            doc="more than 0.2 % of samples in runs at full scale, or 0.5 % on plateaus at the peak of a hot "
            "recording, or loud frames within 6 dB of full scale with the peak at it",
        ),
        _r("dc_offset", [("dc_offset", "abs>", 0.03, 0.05)], doc="mean sample value beyond +-0.03 of full scale"),
    )
)
