"""Fixtures for the model tests: the shipped model, and generated recordings as file bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

MODELS = Path(__file__).resolve().parents[2] / "anomaly_cli" / "models"


@pytest.fixture(scope="session")
def shipped_model():
    """The model shipped in anomaly_cli/models/ (newest version), loaded once."""
    from anomaly_cli.model.engine import load_model

    return load_model(MODELS)


@pytest.fixture
def make_audio() -> Callable[..., bytes]:
    """``make_audio(label, seed=0, variant=None, fmt="wav")`` -> file bytes of a generated recording."""
    from anomaly_cli import synth

    def factory(label: str, seed: int = 0, variant: str | None = None, fmt: str = "wav") -> bytes:
        return synth.make_item(label, np.random.default_rng(seed), fmt=fmt, variant=variant).data

    return factory
