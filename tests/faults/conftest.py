"""Fault-matrix fixtures: the worker test kit's audio server and shipped model, reused, and the
worker settings the fault tests share (small batches, no long poll, one fetch attempt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from anomaly_cli.config import Settings
from tests.worker.conftest import audio_server, loaded_model, model_dir, recordings  # noqa: F401


@pytest.fixture
def fault_worker_settings(make_settings: Callable[..., Settings], audio_server: Any) -> Callable[..., Settings]:
    """Worker settings for ``url`` reading from the test audio server; ``overrides`` win."""

    def make(url: str, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sqs_queue_url": url,
            "audio_url_allowlist": (audio_server.base,),
            "batch_size": 5,
            "max_concurrency": 4,
            "flush_seconds": 0.2,
            "sqs_wait_seconds": 0,
            "visibility_timeout_seconds": 30,
            "fetch_retries": 1,
            "throughput_log_seconds": 60,
            "mongo_uri": "mongomock://unused",
        }
        return make_settings(**{**values, **overrides})

    return make
