"""Artifacts: versions in folders, newest by natural order, clear failures on mismatch."""

from __future__ import annotations

import json

import pytest

from anomaly_cli.errors import ModelError
from anomaly_cli.model import artifacts

NAMES = ("duration_s", "rms_dbfs")


def _write(root, version, *, names=NAMES, fmt=artifacts.FORMAT, payload=None):
    path = artifacts.save(root / version, payload or {"format": fmt, "outlier": None}, {"version": version,
                                                                                       "feature_names": list(names)})
    if fmt != artifacts.FORMAT:
        meta = json.loads((path / "metadata.json").read_text())
        meta["format"] = fmt
        (path / "metadata.json").write_text(json.dumps(meta))
    return path


def test_newest_version_in_natural_order(tmp_path):
    for v in ("v1", "v2", "v10"):
        _write(tmp_path, v)
    (tmp_path / "notes").mkdir()  # a folder without metadata is not a version
    assert artifacts.list_versions(tmp_path) == ["v1", "v2", "v10"]
    assert artifacts.resolve(tmp_path).name == "v10"
    assert artifacts.resolve(tmp_path, "v2").name == "v2"
    payload, meta = artifacts.load(artifacts.resolve(tmp_path), NAMES)
    assert meta["version"] == "v10" and payload["format"] == artifacts.FORMAT


def test_missing_versions_fail_clearly(tmp_path):
    with pytest.raises(ModelError, match="no model versions"):
        artifacts.resolve(tmp_path / "nowhere")
    _write(tmp_path, "v1")
    with pytest.raises(ModelError, match=r"'v9' not found .*have: v1"):
        artifacts.resolve(tmp_path, "v9")


def test_feature_mismatch_fails_before_unpickling(tmp_path):
    path = _write(tmp_path, "v1", names=("duration_s", "peak_dbfs"))
    (path / artifacts.MODEL_FILE).write_bytes(b"not a pickle")  # never read: metadata is checked first
    with pytest.raises(ModelError, match=r"feature names differ.*missing \['rms_dbfs'\].*unknown \['peak_dbfs'\]"):
        artifacts.load(path, NAMES)
    path = _write(tmp_path, "v2", names=tuple(reversed(NAMES)))
    with pytest.raises(ModelError, match="another order"):
        artifacts.load(path, NAMES)


def test_format_mismatch_and_damaged_file(tmp_path):
    with pytest.raises(ModelError, match="artifact format 99"):
        artifacts.load(_write(tmp_path, "v1", fmt=99), NAMES)
    path = _write(tmp_path, "v2")
    (path / artifacts.MODEL_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match="cannot load"):
        artifacts.load(path, NAMES)
    (path / "metadata.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        artifacts.load(path, NAMES)
