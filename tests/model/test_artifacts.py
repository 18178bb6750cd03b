"""Artifacts: versions in folders, newest by natural order, clear failures on mismatch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anomaly_cli.errors import ModelError
from anomaly_cli.model import artifacts, outlier

NAMES = ("duration_s", "rms_dbfs")


@pytest.fixture(scope="module")
def tiny_model() -> outlier.OutlierModel:
    X = np.random.default_rng(0).standard_normal((60, 2)) * [10.0, 3.0] + [30.0, -20.0]
    return outlier.fit(X, NAMES, seed=1, n_estimators=10)


def _write(root, version, model, *, names=NAMES, fmt=artifacts.FORMAT):
    path = artifacts.save(root / version, model, {"version": version, "feature_names": list(names)})
    if fmt != artifacts.FORMAT:
        meta = json.loads((path / "metadata.json").read_text())
        meta["format"] = fmt
        (path / "metadata.json").write_text(json.dumps(meta))
    return path


def test_newest_version_in_natural_order(tmp_path, tiny_model):
    for v in ("v1", "v2", "v10"):
        _write(tmp_path, v, tiny_model)
    (tmp_path / "notes").mkdir()  # a folder without metadata is not a version
    assert artifacts.list_versions(tmp_path) == ["v1", "v2", "v10"]
    assert artifacts.resolve(tmp_path).name == "v10"
    assert artifacts.resolve(tmp_path, "v2").name == "v2"
    model, meta = artifacts.load(artifacts.resolve(tmp_path), NAMES)
    assert meta["version"] == "v10" and meta["format"] == artifacts.FORMAT
    assert model.feature_names == NAMES


def test_saved_arrays_load_as_the_same_model(tmp_path, tiny_model):
    model, _ = artifacts.load(_write(tmp_path, "v1", tiny_model), NAMES)
    X = np.random.default_rng(5).standard_normal((500, 2)) * 40
    assert np.array_equal(model.raw_scores(X), tiny_model.raw_scores(X))
    assert (model.threshold, model.scale) == (tiny_model.threshold, tiny_model.scale)


def test_missing_versions_fail_clearly(tmp_path, tiny_model):
    with pytest.raises(ModelError, match="no model versions"):
        artifacts.resolve(tmp_path / "nowhere")
    _write(tmp_path, "v1", tiny_model)
    with pytest.raises(ModelError, match=r"'v9' not found .*have: v1"):
        artifacts.resolve(tmp_path, "v9")


def test_feature_mismatch_fails_before_reading_the_arrays(tmp_path, tiny_model):
    path = _write(tmp_path, "v1", tiny_model, names=("duration_s", "peak_dbfs"))
    (path / artifacts.MODEL_FILE).write_bytes(b"not an npz")  # never read: metadata is checked first
    with pytest.raises(ModelError, match=r"feature names differ.*missing \['rms_dbfs'\].*unknown \['peak_dbfs'\]"):
        artifacts.load(path, NAMES)
    path = _write(tmp_path, "v2", tiny_model, names=tuple(reversed(NAMES)))
    with pytest.raises(ModelError, match="another order"):
        artifacts.load(path, NAMES)


def test_a_model_of_fewer_features_loads_when_the_code_only_added_some(tmp_path, tiny_model):
    # an older version, trained before features were added to the code, stays loadable
    path = _write(tmp_path, "v1", tiny_model)
    model, meta = artifacts.load(path, ("duration_s", "peak_dbfs", "rms_dbfs", "new_feature"))
    assert model.feature_names == NAMES and meta["feature_names"] == list(NAMES)
    with pytest.raises(ModelError, match="another order"):
        artifacts.load(path, ("rms_dbfs", "peak_dbfs", "duration_s"))


def test_format_mismatch_and_damaged_file(tmp_path, tiny_model):
    with pytest.raises(ModelError, match="artifact format 99"):
        artifacts.load(_write(tmp_path, "v1", tiny_model, fmt=99), NAMES)
    path = _write(tmp_path, "v2", tiny_model)
    (path / artifacts.MODEL_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="cannot load"):
        artifacts.load(path, NAMES)
    (path / "metadata.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        artifacts.load(path, NAMES)


def test_a_pickled_or_incomplete_payload_is_refused(tmp_path, tiny_model):
    """allow_pickle=False: an object array (which would unpickle, i.e. run code) is a broken artifact."""
    path = _write(tmp_path, "v1", tiny_model)
    arrays = {"format": np.asarray(artifacts.FORMAT), **tiny_model.arrays()}
    np.savez(path / artifacts.MODEL_FILE, **{**arrays, "center": np.array([object(), 1.0], dtype=object)})
    with pytest.raises(ModelError, match="cannot load .*Object arrays cannot be loaded"):
        artifacts.load(path, NAMES)
    np.savez(path / artifacts.MODEL_FILE, **{k: v for k, v in arrays.items() if k != "forest_left"})
    with pytest.raises(ModelError, match="cannot load .*forest_left|cannot load .*left"):
        artifacts.load(path, NAMES)
    np.savez(path / artifacts.MODEL_FILE, **{**arrays, "format": np.asarray(1)})
    with pytest.raises(ModelError, match="not a format-2"):
        artifacts.load(path, NAMES)
    bad_left = arrays["forest_left"].copy()
    bad_left[0] = 0  # the root is its own child: a walk would never end
    np.savez(path / artifacts.MODEL_FILE, **{**arrays, "forest_left": bad_left})
    with pytest.raises(ModelError, match="child before its parent"):
        artifacts.load(path, NAMES)


def test_a_format_1_artifact_asks_for_a_retrain(tmp_path, tiny_model):
    path = _write(tmp_path, "v1", tiny_model, fmt=1)
    with pytest.raises(ModelError, match="artifact format 1, this code reads format 2") as e:
        artifacts.load(path, NAMES)
    assert "anomaly model train" in e.value.hint
