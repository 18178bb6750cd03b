"""The outlier model scores from plain arrays exactly as scikit-learn's IsolationForest does.

The worker's screening processes score with :class:`Forest` (numpy only); if it drifted from
``IsolationForest.score_samples``, the shipped threshold (a quantile of scikit-learn's scores on
the training normals) would no longer mean what the model card says.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from anomaly_cli.model.outlier import Forest, OutlierModel, fit


@pytest.mark.parametrize(
    ("seed", "rows", "cols", "max_features"),
    [
        (1, 300, 6, 1.0),  # the tool's setting: every tree reads the columns as they are
        (2, 40, 3, 1.0),  # fewer rows than max_samples
        (3, 500, 8, 0.5),  # feature subsampling: trees read a subset of columns
    ],
)
def test_plain_array_scores_equal_scikit_learns_bit_for_bit(seed, rows, cols, max_features):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, cols)) * rng.uniform(0.1, 10.0, cols)
    forest = IsolationForest(
        n_estimators=100, max_samples=min(256, rows), random_state=seed, max_features=max_features
    ).fit(X)
    exported = Forest.from_sklearn(forest)
    # values just above each root's split: float32 rounding sends about half of them left, as
    # scikit-learn's trees (which compare float32 values) do
    edge = np.repeat(X[:1], len(exported.roots), axis=0)
    for i, root in enumerate(exported.roots):
        edge[i, exported.feature[root]] = np.nextafter(exported.split[root], np.inf)
    T = np.vstack([X, rng.standard_normal((3000, cols)) * 30.0, X[:100] + 1e-7, edge])
    ours = exported.score_samples(T)
    assert np.array_equal(ours, forest.score_samples(T))
    assert np.array_equal(Forest.from_sklearn(forest).score_samples(T[:1]), forest.score_samples(T[:1]))


def test_fit_threshold_and_round_trip_through_arrays():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((400, 4)) * [1.0, 5.0, 0.0, 2.0]  # a constant column gets a unit spread
    model = fit(X, ("a", "b", "c", "d"), seed=3, target_false_alarm=0.01, margin=1.0)
    assert model.spread[2] == 1.0
    raw = model.raw_scores(X)
    assert np.mean(raw > model.threshold) == pytest.approx(0.01, abs=0.006)
    again = OutlierModel.from_arrays(model.arrays())
    T = rng.standard_normal((1000, 4)) * 10
    assert np.array_equal(again.raw_scores(T), model.raw_scores(T))
    assert again.score({"a": 9.0, "b": 0.0}) == model.score({"a": 9.0, "b": 0.0})


def test_arrays_that_would_not_describe_a_forest_are_refused():
    model = fit(np.random.default_rng(0).standard_normal((50, 2)), ("a", "b"), seed=1, n_estimators=5)
    arrays = model.arrays()
    with pytest.raises(ValueError, match="scaler arrays"):
        OutlierModel.from_arrays({**arrays, "center": np.zeros(3)})
    feature = arrays["forest_feature"].copy()
    feature[0] = 7
    with pytest.raises(ValueError, match="feature the model does not have"):
        OutlierModel.from_arrays({**arrays, "forest_feature": feature})
    with pytest.raises(ValueError, match="different lengths"):
        OutlierModel.from_arrays({**arrays, "forest_leaf": arrays["forest_leaf"][:-1]})
