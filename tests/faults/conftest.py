"""Fault-matrix fixtures: the worker test kit's audio server and shipped model, reused, and the
worker settings the fault tests share (small batches, no long poll, one fetch attempt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from anomaly_cli.config import Settings
from tests.faults.crashkit import worker_settings
from tests.worker.conftest import audio_server, loaded_model, model_dir, recordings  # noqa: F401


@pytest.fixture
def fault_worker_settings(audio_server: Any) -> Callable[..., Settings]:
    """Worker settings for ``url`` reading from the test audio server (:func:`crashkit.worker_settings`)."""

    def make(url: str, **overrides: Any) -> Settings:
        return worker_settings(url, audio_server.base, **overrides)

    return make
