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
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

# Scoring from a worker thread makes scikit-learn warn that its config cannot reach joblib's
# workers; the forest is scored single-threaded, so the warning carries nothing and would put a
# non-JSON line on stderr (logs are JSON lines).
warnings.filterwarnings("ignore", message=r".*sklearn\.utils\.parallel\.delayed.*", category=UserWarning)


@dataclass
class OutlierModel:
    """A fitted scaler + forest, the features it reads and its decision threshold."""

    feature_names: tuple[str, ...]
    scaler: object
    forest: object
    threshold: float
    scale: float

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """Higher = more unusual (the negated ``score_samples`` of the forest)."""
        Z = self.scaler.transform(np.nan_to_num(X, nan=0.0, posinf=1e6, neginf=-1e6))
        return -self.forest.score_samples(Z)

    def vector(self, features: Mapping[str, float]) -> np.ndarray:
        return np.array([[float(features.get(n, 0.0)) for n in self.feature_names]], dtype=float)

    def score(self, features: Mapping[str, float]) -> tuple[float, float]:
        """``(raw score, probability-like score in [0, 1])`` for one feature dict."""
        raw = float(self.raw_scores(self.vector(features))[0])
        return raw, to_unit(raw, self.threshold, self.scale)


def to_unit(raw: float, threshold: float, scale: float) -> float:
    """Logistic map of a raw score: 0.5 at the threshold, ``scale`` wide."""
    z = (raw - threshold) / max(scale, 1e-9)
    return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))


def fit(X: np.ndarray, feature_names: Sequence[str], *, seed: int, target_false_alarm: float = 0.005,
        margin: float = 1.05, n_estimators: int = 100) -> OutlierModel:
    """Fit on normal recordings' features ``X`` (rows) and set the threshold from their scores."""
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import RobustScaler

    X = np.nan_to_num(np.asarray(X, dtype=float), nan=0.0, posinf=1e6, neginf=-1e6)
    scaler = RobustScaler(quantile_range=(10.0, 90.0)).fit(X)
    # Constant features (e.g. clip_ratio on clean speech) have zero spread: RobustScaler leaves
    # them unscaled, which lets a tiny deviation dominate. Give them a unit floor instead.
    scaler.scale_ = np.where(scaler.scale_ < 1e-6, 1.0, scaler.scale_)
    forest = IsolationForest(n_estimators=n_estimators, max_samples=min(256, len(X)), random_state=seed,
                             contamination="auto").fit(scaler.transform(X))
    model = OutlierModel(tuple(feature_names), scaler, forest, 0.0, 1.0)
    raw = model.raw_scores(X)
    q = float(np.quantile(raw, 1.0 - target_false_alarm))
    model.threshold = q * margin
    model.scale = max(float(np.std(raw)), 1e-3)
    return model
