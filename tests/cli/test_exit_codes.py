"""GIVEN an error of each type escaping a command WHEN the exit code is chosen THEN it is decided
by the type alone, in one place (``exit_codes.for_exception``)."""

from __future__ import annotations

import pytest

from anomaly_cli import errors
from anomaly_cli.cli import exit_codes


@pytest.mark.parametrize(
    "exc, code",
    [
        (errors.ConfigError("x"), exit_codes.RET_CONFIG),
        (errors.ModelError("no model"), exit_codes.RET_CONFIG),
        (errors.MongoUnavailable("down"), exit_codes.RET_CONNECTION),
        (errors.QueueUnavailable("throttled"), exit_codes.RET_CONNECTION),
        (errors.QueueError("no such queue"), exit_codes.RET_CONNECTION),
        (errors.CredentialsProblem("denied"), exit_codes.RET_CREDENTIALS),
        (errors.SourceGoneDrain("gone"), exit_codes.RET_SOURCE_GONE),
        (errors.ExportFailed("full"), exit_codes.RET_ERROR),
        (RuntimeError("bug"), exit_codes.RET_ERROR),
        (KeyboardInterrupt(), exit_codes.RET_INTERRUPTED),
    ],
)
def test_exit_code_by_error_type(exc: BaseException, code: int) -> None:
    assert exit_codes.for_exception(exc) == code


def test_a_queue_adapter_without_a_url_is_a_configuration_error() -> None:
    from anomaly_cli.adapters.sqs import SqsQueue

    with pytest.raises(errors.ConfigError) as e:
        SqsQueue(object(), "")
    assert e.value.field == "SQS_QUEUE_URL"


def test_work_without_a_model_exits_with_the_config_code_like_score(monkeypatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from anomaly_cli.cli.app import app

    monkeypatch.setenv("SQS_QUEUE_URL", "https://sqs.ap-south-1.amazonaws.com/1/q")
    monkeypatch.setenv("AUDIO_URL_ALLOWLIST", "https://cdn.example")
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "no-models-here"))
    work = CliRunner().invoke(app, ["work", "--max-messages", "1"])
    score = CliRunner().invoke(app, ["score", str(tmp_path)])
    assert work.exit_code == score.exit_code == exit_codes.RET_CONFIG, work.output
