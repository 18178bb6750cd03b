"""The shipped model is package data: found from any working directory, MODEL_DIR still wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import anomaly_cli
from anomaly_cli.config import load_settings
from anomaly_cli.errors import ModelError
from anomaly_cli.model import artifacts


def test_the_default_model_dir_is_the_package_folder():
    s = load_settings({}, env_file=None, environ={})
    assert s.model_dir == ""
    assert artifacts.model_root(s.model_dir) == Path(anomaly_cli.__file__).parent / "models"
    assert artifacts.list_versions(s.model_dir), "no model version ships inside the package"


def test_model_dir_overrides_the_shipped_model(tmp_path):
    with pytest.raises(ModelError, match="no model versions under"):
        artifacts.resolve(tmp_path)


def test_score_works_from_another_folder_without_model_dir(tmp_path, make_audio):
    # GIVEN a recording in a folder that holds nothing of the project, and no MODEL_DIR
    (tmp_path / "a.wav").write_bytes(make_audio("normal", 1, "plain"))
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_DIR", "MODEL_VERSION", "PYTHONPATH")}
    # WHEN it is scored from that folder
    r = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", "score", "a.wav", "--json"],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # THEN the shipped model screens it
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout.splitlines()[0])
    assert row["status"] == "ok", row
    assert row.get("model_version"), row
