"""Training reproduces the shipped model; evaluation tallies what it should."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly_cli.errors import ConfigError
from anomaly_cli.model import engine, evaluate, train

#: Reproduction tolerance: the outlier threshold within 1e-6 relative (same seed, same library
#: versions give bit-identical forests; the slack only absorbs float summation order).
THRESHOLD_RTOL = 1e-6


def test_training_with_the_default_seed_reproduces_the_shipped_model(tmp_path, shipped_model):
    meta = train.train(
        tmp_path / "v1", synthetic=shipped_model.metadata["training"]["normals"], seed=train.DEFAULT_SEED
    )
    assert meta["rules"] == shipped_model.metadata["rules"]
    assert meta["feature_names"] == shipped_model.metadata["feature_names"]
    assert meta["outlier"]["threshold"] == pytest.approx(shipped_model.outlier.threshold, rel=THRESHOLD_RTOL)
    again = engine.load_model(tmp_path, "v1")
    rng = np.random.default_rng(77)
    from anomaly_cli import synth

    fixed = [synth.make_clip(label, rng) for label in ("normal", "normal", "no_speech", "noisy", "clipped")]
    for clip in fixed:
        feats = train._features(clip.samples, clip.sr)
        assert again.outlier.score(feats)[0] == pytest.approx(shipped_model.outlier.score(feats)[0], rel=1e-6)


def test_train_rejects_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="exactly one"):
        train.train(tmp_path / "x", synthetic=30, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="at least 10"):
        train.train(tmp_path / "x", synthetic=5)
    with pytest.raises(ConfigError, match="manifest.csv"):
        train.train(tmp_path / "x", data_dir=tmp_path)


def test_report_definitions():
    rep = evaluate.Report("v1")
    rep.add("a", "normal", [])
    rep.add("b", "normal", ["noisy"])
    rep.add("c", "silent", ["silent"])
    rep.add("d", "clipped", ["noisy", "clipped"])
    rep.add("e", "clipped", [])
    assert rep.false_alarm_rate == 0.5
    assert rep.recall == {"clipped": 0.5, "silent": 1.0}
    assert rep.reason_accuracy == 0.5  # c right, d flagged but first reason wrong, e not flagged
    assert rep.confusion["clipped"] == {"noisy": 1, "none": 1}
    assert rep.meets_bar() == {
        "recall:silent": True,
        "recall:clipped": False,
        "false_alarm": False,
        "reason_accuracy": False,
    }


def test_report_counts_a_level_reason_before_the_label_as_right_only_when_the_label_follows():
    rep = evaluate.Report("v1")
    rep.add("quiet-noise", "no_speech", ["low_volume", "no_speech"])  # level first by design: right
    rep.add("quiet-only", "no_speech", ["low_volume"])  # label missing: a miss, first reason wrong
    rep.add("noisy-first", "clipped", ["noisy", "clipped"])  # only level reasons may come first
    assert rep.reason_accuracy == 1 / 3 and rep.level_first == 1
    assert rep.recall == {"clipped": 1.0, "no_speech": 0.5}
    assert rep.to_dict()["level_first"] == 1


def test_evaluate_a_generated_held_out_set(shipped_model):
    rep = evaluate.evaluate_synthetic(
        14, 4321, shipped_model, formats=("wav", "mp3"), kinds=[k for k in evaluate.QUALITY_BAR["recall"]] + ["normal"]
    )
    d = rep.to_dict()
    assert sum(d["counts"].values()) == 14 and d["counts"]["normal"] >= 4
    assert all(v == 1.0 for v in d["recall"].values()), d["misses"]
    assert d["false_alarm_rate"] == 0.0
