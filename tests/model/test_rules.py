"""Rules: data in, ordered reasons with value and threshold out."""

from __future__ import annotations

from anomaly_cli.model.rules import Condition, Rule, RuleSet

RULES = RuleSet(
    (
        Rule("noisy", ((Condition("snr_db", "<", 6.0, 4.0),),)),
        Rule("silent", ((Condition("level", "<", -60.0, 10.0),),), suppresses=("low_volume", "noisy")),
        Rule("low_volume", ((Condition("level", "<", -42.0, 6.0),),)),
        Rule("dc_offset", ((Condition("dc", "abs>", 0.03),),)),
        Rule(
            "no_speech",
            (
                (Condition("speech", "<", 0.2), Condition("tonal", ">", 0.5)),
                (Condition("speech", "<", 0.05), Condition("level", ">", -30.0)),
            ),
        ),
    )
)


def test_reasons_come_in_reason_code_order_with_value_and_threshold():
    reasons = [r for r, _ in RULES.evaluate({"snr_db": 2.0, "level": -50.0, "dc": -0.1, "speech": 0.5, "tonal": 0.0})]
    assert [r.code for r in reasons] == ["low_volume", "noisy", "dc_offset"]
    low = reasons[0]
    assert (low.value, low.threshold) == (-50.0, -42.0)
    assert "level -50 < -42" in low.detail
    assert reasons[2].value == -0.1  # abs> reports the signed measurement


def test_suppression_and_condition_groups():
    codes = [r.code for r, _ in RULES.evaluate({"snr_db": 2.0, "level": -80.0, "dc": 0.0, "speech": 0.1, "tonal": 0.9})]
    assert codes == ["silent", "no_speech"]
    codes = [
        r.code for r, _ in RULES.evaluate({"snr_db": 20.0, "level": -20.0, "dc": 0.0, "speech": 0.1, "tonal": 0.1})
    ]
    assert codes == []  # a group needs all its conditions
    ((reason, _),) = RULES.evaluate({"snr_db": 20.0, "level": -20.0, "dc": 0.0, "speech": 0.01, "tonal": 0.1})
    assert reason.code == "no_speech" and (reason.value, reason.threshold) == (0.01, 0.05)  # second group
    assert reason.detail == "speech 0.01 < 0.05 and level -20 > -30"


def test_missing_or_nonfinite_features_never_fire_and_margins_grow():
    assert RULES.evaluate({"snr_db": float("nan")}) == []
    ((_, m1),) = RULES.evaluate({"level": -43.0, "snr_db": 20, "dc": 0})
    ((_, m2),) = RULES.evaluate({"level": -55.0, "snr_db": 20, "dc": 0})
    assert 0 < m1 < m2


def test_round_trip_through_plain_data():
    again = RuleSet.from_list(RULES.to_list())
    assert again == RULES
    assert again.thresholds()["low_volume"] == [[{"feature": "level", "op": "<", "threshold": -42.0}]]
    assert again.features() == {"snr_db", "level", "dc", "speech", "tonal"}


def test_shipped_rules_judge_speech_content_of_a_quiet_recording_but_not_its_snr():
    from anomaly_cli.model.rules import DEFAULT_RULES

    quiet_noise = {
        "duration_s": 20.0,
        "level_p95_dbfs": -55.4,
        "level_p99_dbfs": -53.0,
        "voiced_speech_s": 0.0,
        "band_rhythm_db": 2.98,
        "band_snr_db": 3.6,
        "flux_periodicity": 0.07,
    }
    assert [r.code for r, _ in DEFAULT_RULES.evaluate(quiet_noise)] == ["low_volume", "no_speech"]
    quiet_speech = {
        "duration_s": 20.0,
        "level_p95_dbfs": -51.4,
        "level_p99_dbfs": -48.0,
        "voiced_speech_s": 2.5,
        "band_rhythm_db": 15.8,
        "band_snr_db": 8.0,
        "dominance_db": 8.0,
        "flux_periodicity": 0.1,
    }  # little dominance: not judged `noisy` when quiet
    assert [r.code for r, _ in DEFAULT_RULES.evaluate(quiet_speech)] == ["low_volume"]


def test_shipped_rules_a_slow_reader_with_little_voicing_is_speech_and_a_sparse_reading_is_not_quiet():
    """One isolated syllable every 2 s: little voicing in all, no fluent rhythm, mostly pauses."""
    from anomaly_cli.model.rules import DEFAULT_RULES

    slow = {
        "duration_s": 30.0,
        "level_p95_dbfs": -47.0,  # 95 % of the frames are pauses...
        "level_p99_dbfs": -20.0,  # ...but the syllables are loud
        "voiced_speech_s": 1.2,
        "speech_ratio": 0.02,  # the old rhythm-weighted measure: "no speech"
        "band_rhythm_db": 14.0,
        "band_snr_db": 30.0,
        "dominance_db": 45.0,
        "flux_periodicity": 0.05,
        "centroid_hz_std": 600.0,
    }
    assert DEFAULT_RULES.evaluate(slow) == []


def test_shipped_rules_clipped_comes_before_content_judgements():
    from anomaly_cli.model.rules import DEFAULT_RULES

    clipped_music = {
        "duration_s": 20.0,
        "level_p95_dbfs": -8.0,
        "level_p99_dbfs": -3.0,
        "clip_hard_ratio": 0.03,
        "voiced_speech_s": 0.0,
        "band_rhythm_db": 2.0,
    }
    assert [r.code for r, _ in DEFAULT_RULES.evaluate(clipped_music)] == ["clipped", "no_speech"]
