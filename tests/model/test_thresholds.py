"""Programme thresholds: settings move the rules' floors without retraining, and every result says so."""

from __future__ import annotations

import pytest

from anomaly_cli.config import load_settings
from anomaly_cli.errors import ConfigError
from anomaly_cli.model.engine import load_model, screen_bytes
from anomaly_cli.model.thresholds import ProgrammeThresholds


def test_defaults_are_the_settings_defaults_and_recorded_in_every_screening(shipped_model, make_audio):
    s = load_settings({}, env_file=None, environ={})
    assert ProgrammeThresholds.from_settings(s) == ProgrammeThresholds()
    result = screen_bytes(make_audio("normal", 1, "plain"), shipped_model)
    assert result.thresholds == ProgrammeThresholds().to_dict()


def test_a_longer_minimum_duration_makes_a_reading_too_short_without_retraining(shipped_model, make_audio):
    # GIVEN a 6-30 s usable reading that the default floor (2 s) accepts
    data = make_audio("normal", 3, "plain")
    assert "too_short" not in screen_bytes(data, shipped_model).reason_codes
    # WHEN the programme asks for readings of at least 60 s (environment, as in production)
    s = load_settings({}, env_file=None, environ={"MIN_DURATION_SECONDS": "60"})
    strict = load_model(shipped_model.path.parent, shipped_model.version, ProgrammeThresholds.from_settings(s))
    result = screen_bytes(data, strict)
    # THEN the same file is too_short against 60, and the result records the value used
    reason = next(r for r in result.reasons if r.code == "too_short")
    assert reason.threshold == 60.0
    assert result.thresholds["min_duration_s"] == 60.0


def test_the_noise_margin_and_level_floors_move_their_rules(shipped_model):
    t = ProgrammeThresholds(noise_margin_db=30.0, low_volume_dbfs=-30.0, silent_dbfs=-50.0)
    th = t.apply(shipped_model.rules).thresholds()
    # model v4 judges the dominant voice by level spread + harmonics-to-noise (the margin + 13 dB), and by
    # its level spread at the margin, as v2 and v3; the loudest frames over the median frame (14 and 12 dB at
    # the default margin of 15) move by the margin's change
    assert th["noisy"] == [
        [
            {"feature": "voice_clarity_db", "op": "<", "threshold": 43.0},
            {"feature": "dominance_db", "op": "<", "threshold": 30.0},
            {"feature": "loud_over_median_db", "op": "<", "threshold": 29.0},
        ],
        [
            {"feature": "voice_clarity_db", "op": "<", "threshold": 43.0},
            {"feature": "voice_pitch_jumps", "op": ">", "threshold": 0.15},
            {"feature": "loud_over_median_db", "op": "<", "threshold": 29.0},
        ],
        [
            {"feature": "loud_over_median_db", "op": "<", "threshold": 27.0},
            {"feature": "median_clarity_db", "op": "<", "threshold": 37.5},
        ],
    ]
    assert th["low_volume"][0][0]["threshold"] == -30.0 and th["low_volume"][0][1]["threshold"] == -26.0
    assert th["silent"][0][0]["threshold"] == -50.0


def test_the_noise_margin_still_moves_a_v2_model_that_compares_dominance_with_it(shipped_model):
    from anomaly_cli.model.engine import load_model

    v2 = load_model(shipped_model.path.parent, "v2", ProgrammeThresholds(noise_margin_db=30.0))
    assert v2.rules.thresholds()["noisy"] == [[{"feature": "dominance_db", "op": "<", "threshold": 30.0}]]


def test_the_default_margin_leaves_the_shipped_noisy_thresholds_as_trained(shipped_model):
    from anomaly_cli.model.rules import RuleSet

    trained = RuleSet.from_list(shipped_model.metadata["rules"]).thresholds()["noisy"]
    assert (
        ProgrammeThresholds().apply(RuleSet.from_list(shipped_model.metadata["rules"])).thresholds()["noisy"] == trained
    )


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"MIN_DURATION_SECONDS": "300"}, "MAX_READING_SECONDS"),
        ({"SILENT_DBFS": "-30"}, "LOW_VOLUME_DBFS"),
        ({"NOISE_MARGIN_DB": "nan"}, "NOISE_MARGIN_DB"),
    ],
)
def test_thresholds_that_cannot_be_right_are_refused_naming_the_setting(env, field):
    with pytest.raises(ConfigError) as e:
        load_settings({}, env_file=None, environ=env)
    assert field in str(e.value) or field.lower() in str(e.value)
