"""Rules: data in, ordered reasons with value and threshold out."""

from __future__ import annotations

from anomaly_cli.model.rules import DEFAULT_RULES, Condition, Rule, RuleSet

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


def _codes(f: dict[str, float]) -> list[str]:
    """The reason codes the shipped rules give features ``f``, in order."""
    return [r.code for r, _ in DEFAULT_RULES.evaluate(f)]


def test_shipped_rules_judge_speech_content_of_a_quiet_recording_but_not_its_snr():
    quiet_noise = {
        "duration_s": 20.0,
        "level_p95_dbfs": -55.4,
        "level_p99_dbfs": -53.0,
        "voiced_speech_s": 0.0,
        "band_rhythm_db": 2.98,
        "band_snr_db": 3.6,
        "flux_periodicity": 0.07,
    }
    assert _codes(quiet_noise) == ["low_volume", "no_speech"]
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
    assert _codes(quiet_speech) == ["low_volume"]


def test_shipped_rules_a_slow_reader_with_little_voicing_is_speech_and_a_sparse_reading_is_not_quiet():
    """One isolated syllable every 2 s: little voicing in all, no fluent rhythm, mostly pauses."""
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
    assert _codes(slow) == []


def test_shipped_rules_clipped_comes_before_content_judgements():
    clipped_music = {
        "duration_s": 20.0,
        "level_p95_dbfs": -8.0,
        "level_p99_dbfs": -3.0,
        "clip_hard_ratio": 0.03,
        "voiced_speech_s": 0.0,
        "band_rhythm_db": 2.0,
    }
    assert _codes(clipped_music) == ["clipped", "no_speech"]


def _reading(**over: float) -> dict[str, float]:
    """Features of a usable 30 s reading (values as measured on the real-voice dev split)."""
    base = {
        "duration_s": 30.0,
        "level_p95_dbfs": -20.0,
        "level_p99_dbfs": -17.0,
        "peak_dbfs": -6.0,
        "voiced_speech_s": 6.0,
        "voiced_speech_ratio": 0.2,
        "steady_pitch_s": 0.0,
        "band_rhythm_db": 18.0,
        "band_snr_db": 25.0,
        "dominance_db": 22.0,
        "voice_hnr_db": 12.0,
        "voice_pitch_jumps": 0.03,
        "flux_periodicity": 0.06,
        "centroid_hz_std": 400.0,
        "loud_over_median_db": 20.0,
        "pitch_grid": 0.08,
    }
    base.update(over)
    base["voice_clarity_db"] = base["dominance_db"] + base["voice_hnr_db"]
    base["median_clarity_db"] = base["loud_over_median_db"] + base["voice_hnr_db"]
    return base


def test_shipped_rules_a_reader_among_other_voices_is_noisy_one_over_quiet_babble_is_not():
    # buried among 4-6 voices at ~0 dB: the level still spreads 18 dB, but other voices fill the loud frames
    # (little periodicity, the pitch hopping between talkers)
    assert _codes(_reading(dominance_db=18.4, voice_hnr_db=4.3, voice_pitch_jumps=0.26, loud_over_median_db=10.0)) == [
        "noisy"
    ]
    # a weakly periodic voice of its own (hoarse, radio) over quiet babble: its pitch does not hop
    assert _codes(_reading(dominance_db=17.3, voice_hnr_db=4.7, voice_pitch_jumps=0.04)) == []
    # under 15 dB of level spread, as v2, when the sum agrees
    assert _codes(_reading(dominance_db=12.0, voice_hnr_db=5.0, loud_over_median_db=13.0)) == ["noisy"]
    # over babble at >= 10 dB: the same level spread, and the loudest frames are clearly one voice
    assert _codes(_reading(dominance_db=18.1, voice_hnr_db=12.4)) == []
    # ...even where the level spread is under 15 dB (v2 called this reader noisy)
    assert _codes(_reading(dominance_db=14.6, voice_hnr_db=14.0)) == []
    # a slow reader's clean but weakly periodic voice (codec, hoarse): the level spread carries it
    assert _codes(_reading(dominance_db=36.5, voice_hnr_db=5.1, voiced_speech_s=1.2, voiced_speech_ratio=0.04)) == []


def test_shipped_rules_white_noise_through_aac_is_no_speech_though_the_codec_gives_it_rhythm():
    aac_white = _reading(
        voiced_speech_s=0.0,
        voiced_speech_ratio=0.0,
        dominance_db=1.86,
        voice_hnr_db=0.0,
        band_rhythm_db=8.5,
        band_snr_db=1.79,
        flux_periodicity=0.03,
        centroid_hz_std=268.0,
    )
    assert _codes(aac_white) == ["no_speech"]
    # speech buried in white noise at -5 dB spreads more than the noise's own jitter: noisy, not no_speech
    assert _codes({**aac_white, "dominance_db": 2.4, "voice_clarity_db": 2.4, "loud_over_median_db": 4.0}) == ["noisy"]


def test_shipped_rules_clipping_smeared_by_aac_is_seen_from_the_level_of_the_loud_frames():
    smeared = _reading(level_p95_dbfs=-4.6, level_p99_dbfs=-3.2, peak_dbfs=0.7, clip_hard_ratio=0.0003)
    assert _codes(smeared) == ["clipped"]
    assert _codes(_reading(level_p95_dbfs=-12.3, level_p99_dbfs=-9.3, peak_dbfs=-0.2)) == []  # loudest usable


def test_shipped_rules_a_tune_over_a_beat_with_vibrato_is_no_speech_a_fluent_reader_is_not():
    tune = _reading(
        voiced_speech_s=0.8,
        voiced_speech_ratio=0.03,
        steady_pitch_s=4.8,
        flux_periodicity=0.42,
        dominance_db=7.3,
        voice_hnr_db=14.3,
        centroid_hz_std=188.0,
        band_snr_db=8.2,
    )
    assert _codes(tune) == ["no_speech"]
    assert _codes(_reading(flux_periodicity=0.37, voiced_speech_ratio=0.42, steady_pitch_s=0.3)) == []


def test_shipped_rules_a_reader_stays_normal_when_the_loudest_frames_rise_well_over_the_median_frame():
    # v3 called these dev readers over quiet babble noisy (clarity 25-27.7 dB, pitch hopping 0.17-0.28): their
    # loudest frames rise 14.9-19.7 dB over the median frame, which a buried reader's never do (<= ~12.7)
    over_quiet_babble = {"dominance_db": 16.1, "voice_hnr_db": 9.0, "voice_pitch_jumps": 0.17}
    assert _codes(_reading(**over_quiet_babble, loud_over_median_db=17.9)) == []
    assert _codes(_reading(**over_quiet_babble, loud_over_median_db=13.0)) == ["noisy"]


def test_shipped_rules_a_reader_buried_in_babble_is_noisy_from_the_median_frame_alone():
    # dev readers among 4-6 voices that v3 passed: level spread 16-21 dB, HNR 8-12 dB, no pitch hopping; the
    # other voices fill the median frame, <= ~11 dB under the reader's loudest frames
    buried = dict(dominance_db=20.3, voice_hnr_db=8.9, voice_pitch_jumps=0.13, band_snr_db=26.0)
    assert _codes(_reading(**buried)) == []
    assert _codes(_reading(**buried, loud_over_median_db=10.6)) == ["noisy"]
    # a voice alone at its loudest that reads without pauses (the formant voice over babble at +10 dB): its
    # median frame is its own speech, but level and HNR together keep it clear
    assert (
        _codes(_reading(dominance_db=15.8, voice_hnr_db=13.6, voice_pitch_jumps=0.09, loud_over_median_db=11.0)) == []
    )


def test_shipped_rules_a_tune_on_a_12_tone_grid_is_no_speech_whatever_its_beat():
    # a dev melody v3 called noisy: beat 0.33 (under the 0.38 of the vibrato rule), 5.7 s of gliding "voicing"
    tune = _reading(
        voiced_speech_s=5.7,
        voiced_speech_ratio=0.19,
        steady_pitch_s=6.8,
        flux_periodicity=0.33,
        dominance_db=8.0,
        voice_hnr_db=18.6,
        loud_over_median_db=3.2,
        pitch_grid=0.89,
    )
    assert _codes(tune) == ["no_speech"]
    # speech glides through every fraction of a semitone: readers stay <= ~0.3
    assert _codes({**tune, "pitch_grid": 0.3}) == ["noisy"]
