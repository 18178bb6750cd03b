"""Fault-matrix fixtures: the worker test kit's audio server and shipped model, reused."""

from tests.worker.conftest import audio_server, loaded_model, model_dir, recordings  # noqa: F401
