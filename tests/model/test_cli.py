"""`anomaly score` and `anomaly model` through Typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from anomaly_cli.cli.app import app
from tests.model.conftest import MODELS


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    monkeypatch.setenv("MODEL_DIR", str(MODELS))
    return CliRunner()


@pytest.fixture
def folder(tmp_path, make_audio):
    d = tmp_path / "rec"
    (d / "sub").mkdir(parents=True)
    (d / "a_normal.wav").write_bytes(make_audio("normal", 1, "plain"))
    (d / "b_silent.mp3").write_bytes(make_audio("silent", 1, "zero", "mp3"))
    (d / "c_error.wav").write_bytes(make_audio("corrupt", 1, "html"))
    (d / "notes.txt").write_text("not audio, skipped in folders")
    (d / "sub" / "d_short.wav").write_bytes(make_audio("too_short", 1))
    return d


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_score_json_one_object_per_input(runner, folder):
    res = runner.invoke(app, ["score", str(folder), str(folder / "missing.wav"), "--json"])
    assert res.exit_code == 0, res.output
    rows = _lines(res.stdout)
    assert [r["input"].rsplit("/", 1)[-1] for r in rows] == [
        "a_normal.wav",
        "b_silent.mp3",
        "c_error.wav",
        "missing.wav",
    ]
    normal, silent, broken, missing = rows
    assert not normal["is_anomaly"] and normal["features"]["duration_s"] > 5 and normal["model_version"]
    assert silent["reasons"][0]["code"] == "silent" and silent["reasons"][0]["threshold"] is not None
    assert broken["reasons"][0]["code"] == "corrupt" and broken["error"]["code"] == "not_audio"
    assert missing["reasons"][0]["code"] == "unavailable" and missing["error"]["code"] == "not_found"
    assert "fingerprint" not in normal["audio"]


def test_score_recursive_and_table(runner, folder):
    res = runner.invoke(app, ["score", str(folder), "--recursive"])
    assert res.exit_code == 0, res.output
    assert "d_short.wav" in res.stdout and "too_short" in res.stdout and "ANOMALY" in res.stdout
    assert "4 screened, 3 flagged" in res.stderr


def test_score_exit_codes_for_configuration(runner, tmp_path, monkeypatch, folder):
    res = runner.invoke(app, ["score", "s3://bucket/key.wav", "--json"])
    assert res.exit_code == 3 and json.loads(res.stdout)["error"]["code"] == "config_invalid"
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "none"))
    res = runner.invoke(app, ["score", str(folder)])
    assert res.exit_code == 3 and "no model versions" in res.stderr
    res = runner.invoke(app, ["score", str(tmp_path)])
    assert res.exit_code in (2, 3)


def test_score_s3_through_the_fetcher(runner, monkeypatch, s3_client, make_audio):
    s3_client.create_bucket(Bucket="nipun-audio", CreateBucketConfiguration={"LocationConstraint": "ap-south-1"})
    s3_client.put_object(Bucket="nipun-audio", Key="2025-12-20/x.wav", Body=make_audio("low_volume", 2))
    monkeypatch.setenv("AUDIO_URL_ALLOWLIST", "s3://nipun-audio")
    res = runner.invoke(
        app,
        [
            "score",
            "s3://nipun-audio/2025-12-20/x.wav",
            "s3://nipun-audio/nope.wav",
            "s3://other-bucket/y.wav",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    found, missing, refused = _lines(res.stdout)
    assert found["reasons"][0]["code"] == "low_volume"
    assert missing["error"]["code"] == "not_found" and refused["error"]["code"] == "url_not_allowed"


def test_model_info(runner):
    res = runner.invoke(app, ["model", "info", "--json"])
    assert res.exit_code == 0, res.output
    meta = json.loads(res.stdout)
    assert meta["version"] and meta["thresholds"]["silent"][0][0]["threshold"] == -60.0
    res = runner.invoke(app, ["model", "info"])
    assert res.exit_code == 0 and "low_volume" in res.stdout and "outlier" in res.stdout


def test_model_train_and_evaluate(runner, tmp_path, monkeypatch):
    from anomaly_cli import synth

    res = runner.invoke(
        app, ["model", "train", "--synthetic", "10", "--seed", "3", "--out", str(tmp_path / "m" / "v7")]
    )
    assert res.exit_code == 0, res.output
    assert "model v7 written" in res.stdout
    data = tmp_path / "data"
    synth.make_dataset(data, 8, seed=9, formats=("wav",), kinds=["normal", "silent", "clipped", "corrupt"])
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "m"))
    res = runner.invoke(app, ["model", "evaluate", "--data", str(data), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["model_version"] == "v7" and sum(rep["counts"].values()) == 8
    assert rep["recall"]["silent"] == 1.0 and rep["recall"]["corrupt"] == 1.0
    res = runner.invoke(app, ["model", "evaluate", "--data", str(data)])
    assert res.exit_code == 0 and "confusion" in res.stdout
    res = runner.invoke(app, ["model", "train", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
