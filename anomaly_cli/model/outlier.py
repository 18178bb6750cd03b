"""The outlier model: RobustScaler + IsolationForest over a feature subset.

It adds the ``outlier`` reason for recordings that no rule explains but that look unlike the
normal training recordings.

Decisions:
- The threshold is the ``1 - target_false_alarm`` quantile of the raw outlier scores of the
  *normal* training recordings (the issue and FACTS.md: ``contamination="auto"`` flags about a
  fifth of normal recordings), times a safety ``margin`` for recordings from other sources.
- Only features with a physical meaning that do not depend on the speaker or the synthesiser
  (levels, ratios, rhythm, SNR) go in by default; timbre (MFCCs, centroid) would make the model
  flag every voice unlike the generator's. See ``OUTLIER_FEATURES`` in train.py.
- Scores map to [0, 1] with a logistic centred on the threshold: 0.5 means "at the threshold".
- scikit-learn fits; numpy scores. After fitting, the scaler and the forest are kept as plain
  arrays (:class:`Forest`: per node the feature, the split, the children and a leaf's path
  length), and the artifact holds only those arrays (no pickle). Scoring needs nothing but
  numpy, so the worker's screening processes never import scikit-learn (~35 MB each, see
  BENCHMARKS.md, memory). The arrays reproduce ``IsolationForest.score_samples`` exactly: the
  same float32 comparisons as scikit-learn's trees, the same per-tree sum in the same order
  (tests/model/test_outlier.py compares them on thousands of points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Forest:
    """An isolation forest as flat node arrays (all trees' nodes one after the other).

    ``left``/``right`` hold global node indices (-1 at a leaf), ``feature`` the column a split
    reads, ``split`` its threshold, ``leaf`` the path length a leaf contributes (its depth plus
    the average path length of the training samples left in it, minus one, as scikit-learn adds
    it), ``roots`` each tree's first node, ``norm`` the average path length of ``max_samples``
    (the score's normaliser).
    """

    feature: np.ndarray  # int32
    split: np.ndarray  # float64
    left: np.ndarray  # int32
    right: np.ndarray  # int32
    leaf: np.ndarray  # float64
    roots: np.ndarray  # int32
    norm: float

    @classmethod
    def from_sklearn(cls, forest: Any) -> "Forest":
        """Export a fitted ``sklearn.ensemble.IsolationForest`` (its private per-tree path
        lengths included: they are what ``score_samples`` adds)."""
        from sklearn.ensemble._iforest import _average_path_length

        n_features = forest.n_features_in_
        subsample = forest._max_features != n_features  # as score_samples: else trees read X as is
        feats, splits, lefts, rights, leaves, roots = [], [], [], [], [], []
        offset = 0
        for i, (est, cols) in enumerate(zip(forest.estimators_, forest.estimators_features_)):
            t = est.tree_
            f = np.asarray(t.feature, dtype=np.int64)
            is_leaf = t.children_left < 0
            if subsample:
                f = np.where(is_leaf, f, np.asarray(cols)[np.maximum(f, 0)])
            feats.append(np.where(is_leaf, 0, f).astype(np.int32))
            splits.append(np.asarray(t.threshold, dtype=np.float64))
            lefts.append(np.where(is_leaf, -1, t.children_left + offset).astype(np.int32))
            rights.append(np.where(is_leaf, -1, t.children_right + offset).astype(np.int32))
            leaves.append(forest._decision_path_lengths[i] + forest._average_path_length_per_tree[i] - 1.0)
            roots.append(offset)
            offset += t.node_count
        norm = float(_average_path_length([forest._max_samples])[0])
        return cls(
            np.concatenate(feats),
            np.concatenate(splits),
            np.concatenate(lefts),
            np.concatenate(rights),
            np.concatenate(leaves).astype(np.float64),
            np.asarray(roots, dtype=np.int32),
            norm,
        )

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """``IsolationForest.score_samples``: minus ``2 ** -(mean path length / norm)``."""
        Xf = np.asarray(X, dtype=np.float32)  # scikit-learn's trees compare float32 values
        rows = np.arange(len(Xf))[None, :]
        node = np.repeat(self.roots.astype(np.int64)[:, None], len(Xf), axis=1)  # (trees, samples)
        while True:  # one level of every tree per step: depth <= log2(max_samples) steps
            left = self.left[node]
            inner = left >= 0
            if not inner.any():
                break
            go_left = Xf[rows, self.feature[node]] <= self.split[node]
            node = np.where(inner, np.where(go_left, left, self.right[node]), node)
        paths = self.leaf[node]
        depths = np.zeros(len(Xf))
        for per_tree in paths:  # tree by tree, as scikit-learn adds them (a reduce could reorder)
            depths += per_tree
        denominator = len(self.roots) * self.norm
        return -(2 ** -(depths / denominator if denominator != 0 else np.ones_like(depths)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "feature": self.feature,
            "split": self.split,
            "left": self.left,
            "right": self.right,
            "leaf": self.leaf,
            "roots": self.roots,
            "norm": np.asarray(self.norm),
        }

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> "Forest":
        forest = cls(
            np.asarray(a["feature"], np.int32),
            np.asarray(a["split"], np.float64),
            np.asarray(a["left"], np.int32),
            np.asarray(a["right"], np.int32),
            np.asarray(a["leaf"], np.float64),
            np.asarray(a["roots"], np.int32),
            float(a["norm"]),
        )
        forest.check()
        return forest

    def check(self) -> None:
        """Raise ``ValueError`` unless the arrays describe trees a walk can finish."""
        n = len(self.split)
        if not (len(self.feature) == len(self.left) == len(self.right) == len(self.leaf) == n) or n == 0:
            raise ValueError("node arrays of different lengths")
        inner = self.left >= 0
        if (self.right[inner] < 0).any() or (self.left >= n).any() or (self.right >= n).any():
            raise ValueError("child index out of range")
        parents = np.flatnonzero(inner)
        if (self.left[inner] <= parents).any() or (self.right[inner] <= parents).any():
            raise ValueError("a child before its parent (the walk would not end)")
        if len(self.roots) == 0 or (self.roots < 0).any() or (self.roots >= n).any():
            raise ValueError("root index out of range")


@dataclass
class OutlierModel:
    """A fitted robust scaler + isolation forest, the features it reads and its decision threshold."""

    feature_names: tuple[str, ...]
    center: np.ndarray
    spread: np.ndarray
    forest: Forest
    threshold: float
    scale: float

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """Higher = more unusual (the negated ``score_samples`` of the forest)."""
        Z = np.nan_to_num(np.asarray(X, dtype=float), nan=0.0, posinf=1e6, neginf=-1e6)
        return -self.forest.score_samples((Z - self.center) / self.spread)

    def vector(self, features: Mapping[str, float]) -> np.ndarray:
        return np.array([[float(features.get(n, 0.0)) for n in self.feature_names]], dtype=float)

    def score(self, features: Mapping[str, float]) -> tuple[float, float]:
        """``(raw score, probability-like score in [0, 1])`` for one feature dict."""
        raw = float(self.raw_scores(self.vector(features))[0])
        return raw, to_unit(raw, self.threshold, self.scale)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the model is, as named arrays (what the artifact stores)."""
        return {
            "feature_names": np.asarray(self.feature_names, dtype=str),
            "center": self.center,
            "spread": self.spread,
            "threshold": np.asarray(self.threshold),
            "scale": np.asarray(self.scale),
            **{f"forest_{k}": v for k, v in self.forest.arrays().items()},
        }

    @classmethod
    def from_arrays(cls, a: Mapping[str, np.ndarray]) -> "OutlierModel":
        """The model :meth:`arrays` describes; ``KeyError`` / ``ValueError`` when it is incomplete."""
        names = tuple(str(n) for n in a["feature_names"])
        center, spread = np.asarray(a["center"], float), np.asarray(a["spread"], float)
        if center.shape != (len(names),) or spread.shape != (len(names),):
            raise ValueError("scaler arrays do not match the feature names")
        forest = Forest.from_arrays({k[len("forest_") :]: v for k, v in a.items() if k.startswith("forest_")})
        if (forest.feature[forest.left >= 0] >= len(names)).any():
            raise ValueError("a split reads a feature the model does not have")
        return cls(names, center, spread, forest, float(a["threshold"]), float(a["scale"]))


def to_unit(raw: float, threshold: float, scale: float) -> float:
    """Logistic map of a raw score: 0.5 at the threshold, ``scale`` wide."""
    z = (raw - threshold) / max(scale, 1e-9)
    return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))


def fit(
    X: np.ndarray,
    feature_names: Sequence[str],
    *,
    seed: int,
    target_false_alarm: float = 0.005,
    margin: float = 1.05,
    n_estimators: int = 100,
) -> OutlierModel:
    """Fit on normal recordings' features ``X`` (rows) and set the threshold from their scores."""
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import RobustScaler

    X = np.nan_to_num(np.asarray(X, dtype=float), nan=0.0, posinf=1e6, neginf=-1e6)
    scaler = RobustScaler(quantile_range=(10.0, 90.0)).fit(X)
    # Constant features (e.g. clip_ratio on clean speech) have zero spread: RobustScaler leaves
    # them unscaled, which lets a tiny deviation dominate. Give them a unit floor instead.
    spread = np.where(scaler.scale_ < 1e-6, 1.0, scaler.scale_)
    forest = IsolationForest(
        n_estimators=n_estimators, max_samples=min(256, len(X)), random_state=seed, contamination="auto"
    ).fit((X - scaler.center_) / spread)
    model = OutlierModel(
        tuple(feature_names), np.asarray(scaler.center_, float), spread, Forest.from_sklearn(forest), 0.0, 1.0
    )
    raw = model.raw_scores(X)
    q = float(np.quantile(raw, 1.0 - target_false_alarm))
    model.threshold = q * margin
    model.scale = max(float(np.std(raw)), 1e-3)
    return model
