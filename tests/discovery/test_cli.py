"""`anomaly discover` and `anomaly state` through typer's CliRunner: embedded Mongo, moto SQS."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from anomaly_cli.adapters.mongo import connect
from anomaly_cli.cli import exit_codes
from anomaly_cli.cli.app import app

from .conftest import DAY, UTC, assessment, at, student_doc, subject

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, embedded_mongo_uri: str, queue_url: str) -> dict[str, str]:
    values = {"MONGO_URI": embedded_mongo_uri, "SQS_QUEUE_URL": queue_url, "TEST_DATE": DAY, "LOG_LEVEL": "INFO"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


@pytest.fixture
def db(env: dict[str, str]) -> Any:
    return connect(env["MONGO_URI"])["nipun"]


def seed(db: Any, n: int = 3, url: str | None = None) -> None:
    db.student_assessment_record.insert_many(
        [
            student_doc(assessment(teacher=[subject(created=at(5, i), **({"url": url} if url else {}))]))
            for i in range(n)
        ]
    )


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def test_discover_json_report_and_json_logs(db: Any, sqs_client: Any, queue_url: str) -> None:
    seed(db, 4)
    r = run("discover", "--mode", "backfill", "--json")
    assert r.exit_code == exit_codes.RET_OK, r.stderr
    report = json.loads(r.stdout)
    assert report["enqueued"] == 4 and report["status"] == "completed" and report["partial"] is False
    events = [json.loads(line)["event"] for line in r.stderr.splitlines() if line.startswith("{")]
    assert "discovery_run_started" in events and events[-1] == "state_run_finished"
    attrs = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "4"


def test_flags_override_environment(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(db, 6)
    monkeypatch.setenv("MAX_RECORDS", "5")
    monkeypatch.setenv("DISCOVERY_BATCH_SIZE", "2")
    r = run("discover", "--max-records", "3", "--json")
    report = json.loads(r.stdout)
    assert (report["fetched"], report["pages"]) == (3, 2)


@pytest.mark.parametrize(
    "args,flag",
    [
        (["--mode", "sideways"], "--mode"),
        (["--test-date", "2025-13-01"], "--test-date"),
        (["--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_flag_values_are_usage_errors_naming_the_flag(db: Any, args: list[str], flag: str) -> None:
    # a mistake on the command line is a usage error (2) in every command, named by its flag
    r = run("discover", *args, "--json")
    assert r.exit_code == exit_codes.RET_USAGE
    assert flag in json.loads(r.stdout)["error"]["message"]


@pytest.mark.parametrize(
    "var,value",
    [("MONGO_TO_SQS_MODE", "sideways"), ("TEST_DATE", "2025-13-01"), ("DISCOVERY_BATCH_SIZE", "0")],
)
def test_bad_settings_exit_with_the_config_code_naming_the_variable(
    db: Any, monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    r = run("discover", "--json")
    assert r.exit_code == exit_codes.RET_CONFIG
    assert var in json.loads(r.stdout)["error"]["message"]


def test_missing_test_date_is_a_config_error(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_DATE")
    r = run("discover")
    assert r.exit_code == exit_codes.RET_CONFIG and "TEST_DATE" in r.stderr


def test_unreachable_mongo_is_a_connection_error_without_credentials(
    env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGO_URI", "mongodb://reader:s3cret-pw@127.0.0.1:1/?directConnection=true")
    monkeypatch.setenv("MONGO_TIMEOUT_MS", "300")
    r = run("discover", "--json")
    assert r.exit_code == exit_codes.RET_CONNECTION
    assert "s3cret-pw" not in r.stdout + r.stderr


def test_presigned_urls_never_reach_the_logs(db: Any) -> None:
    seed(db, 2, url="https://nipun-audio.s3.amazonaws.com/a.m4a?X-Amz-Signature=TOPSECRETSIG&X-Amz-Credential=AKIAXX")
    r = run("--log-level", "DEBUG", "discover", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["enqueued"] == 2
    assert "TOPSECRETSIG" not in r.stdout + r.stderr and "testing-secret-key" not in r.stderr


def test_partial_enqueue_exits_with_the_partial_code(db: Any, monkeypatch: pytest.MonkeyPatch, sqs_client: Any) -> None:
    from anomaly_cli.cli.context import CliContext

    from .test_service import FlakySqs

    seed(db, 3)
    failing = FlakySqs(
        sqs_client,
        lambda call, e: (
            {"Id": e["Id"], "Code": "InvalidParameterValue", "Message": "no", "SenderFault": True}
            if e["Id"] == "1"
            else None
        ),
    )
    monkeypatch.setattr(CliContext, "sqs_client", property(lambda self: failing))
    r = run("discover", "--json")
    assert r.exit_code == exit_codes.RET_PARTIAL
    report = json.loads(r.stdout)
    assert report["partial"] and report["failed"] == 1 and report["enqueued"] == 2


def test_dry_run_table_and_time_zone_hint(db: Any) -> None:
    db.student_assessment_record.insert_one(
        student_doc(assessment(dt.datetime(2025, 12, 19, 18, 30, tzinfo=UTC), teacher=[subject(created=at(5))]))
    )
    r = run("discover", "--dry-run")
    assert r.exit_code == 0 and "would enqueue" in r.stdout
    assert "TEST_DATE_TIMEZONE" in r.stderr and "within a day" in r.stderr
    assert db.anomaly_pipeline_state.count_documents({}) == 0


def test_state_show_list_and_reset(db: Any) -> None:
    seed(db, 2)
    assert run("discover").exit_code == 0
    shown = run("state", "show", DAY)
    assert shown.exit_code == 0 and "completed" in shown.stdout and "enqueued 2" in shown.stdout
    doc = json.loads(run("state", "show", DAY, "--json").stdout)
    assert doc["_id"] == f"audio_anomaly:enqueue:student_assessment_record:{DAY}" and doc["stats"]["enqueued"] == 2
    listed = json.loads(run("state", "list", "--json").stdout)
    assert [r["test_date"] for r in listed] == [DAY]
    # reset asks first
    assert run("state", "reset", DAY, input="n\n").exit_code == exit_codes.RET_ERROR
    assert db.anomaly_pipeline_state.count_documents({}) == 1
    r = run("state", "reset", DAY, input="y\n")
    assert r.exit_code == 0 and "reset audio_anomaly:enqueue:student_assessment_record:2025-12-20" in r.stdout
    missing = run("state", "show", DAY, "--json")
    assert (
        missing.exit_code == exit_codes.RET_ERROR and json.loads(missing.stdout)["error"]["code"] == "state_not_found"
    )


def test_state_reset_asks_in_json_lines_where_stderr_is_not_a_terminal(db: Any) -> None:
    # GIVEN a state to reset, and a caller whose stderr is not a terminal (JSON lines there)
    seed(db, 2)
    assert run("discover").exit_code == 0
    # WHEN it asks for confirmation under --json, answered "n" then "y" on stdin
    no = run("state", "reset", DAY, "--json", input="n\n")
    yes = run("state", "reset", DAY, "--json", input="y\n")
    # THEN the question is a JSON event on stderr like every other line there, stdout holds only
    # the command's one JSON document (no prompt residue), and the answer decides
    for r in (no, yes):
        lines = [json.loads(line) for line in r.stderr.splitlines() if line.strip()]
        assert any(e["event"] == "confirmation_required" and DAY in e["question"] for e in lines), r.stderr
        json.loads(r.stdout)  # one document, nothing before it
    assert no.exit_code == exit_codes.RET_ERROR and json.loads(no.stdout)["error"]["code"] == "aborted"
    assert yes.exit_code == 0 and json.loads(yes.stdout)["reset"] is True
    # and no answer at all (end of input) aborts, it never resets
    seed(db, 2)
    assert run("discover").exit_code == 0
    eof = run("state", "reset", DAY, "--json", input="")
    assert eof.exit_code == exit_codes.RET_ERROR and db.anomaly_pipeline_state.count_documents({}) == 1


def test_state_reset_refuses_a_live_lease_unless_forced(db: Any) -> None:
    from anomaly_cli.discovery.state import StateRepository

    repo = StateRepository(
        db.anomaly_pipeline_state,
        pipeline_name="audio_anomaly",
        source_collection="student_assessment_record",
        lease_seconds=600,
    )
    repo.acquire(DAY, "host:1:run", mode="incremental")
    r = run("state", "reset", DAY, "--yes", "--json")
    assert r.exit_code == exit_codes.RET_ERROR and json.loads(r.stdout)["error"]["code"] == "lease_held"
    assert "host:1:run" in run("state", "show", DAY).stdout
    assert run("state", "reset", DAY, "--yes", "--force").exit_code == 0
    assert repo.get(DAY) is None


def test_state_show_rejects_a_malformed_date(db: Any) -> None:
    r = run("state", "show", '{"$gt": ""}')
    assert r.exit_code == exit_codes.RET_USAGE


def test_compatibility_script_translates_old_flags() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import mongo_to_sqs_stream as script
    finally:
        sys.path.pop(0)
    assert script.to_cli_args(
        ["--mode", "backfill", "--test-date", DAY, "--batch-size", "100", "--max-records", "100"]
    ) == ["discover", "--mode", "backfill", "--test-date", DAY, "--batch-size", "100", "--max-records", "100"]


def test_compatibility_script_runs_as_a_process(tmp_path: Path) -> None:
    # a real process on the embedded backend: dry run of an empty database, exit 0
    env = {"PATH": "/usr/bin:/bin", "MONGO_URI": "mongomock://script", "HOME": str(tmp_path)}
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "mongo_to_sqs_stream.py"),
            "--mode",
            "backfill",
            "--test-date",
            DAY,
            "--batch-size",
            "100",
            "--max-records",
            "100",
            "--dry-run",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["would_enqueue"] == 0


def test_sigterm_while_a_page_is_in_flight_stops_after_it_with_state_saved(
    db: Any, monkeypatch: pytest.MonkeyPatch, sqs_client: Any, queue_url: str
) -> None:
    import os
    import signal

    from anomaly_cli.cli.context import CliContext

    from .test_service import FlakySqs

    seed(db, 12)
    sent_while_signalled: list[int] = []

    class SignalDuringSend(FlakySqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
            if not sent_while_signalled:
                os.kill(os.getpid(), signal.SIGTERM)  # delivered while this page's chunk is in flight
            sent_while_signalled.append(len(Entries))
            return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)

    client = SignalDuringSend(sqs_client, lambda c, e: None)
    monkeypatch.setattr(CliContext, "sqs_client", property(lambda self: client))
    r = run("discover", "--mode", "backfill", "--batch-size", "5", "--json")
    assert r.exit_code == exit_codes.RET_INTERRUPTED
    report = json.loads(r.stdout)
    assert report["status"] == "interrupted" and report["pages"] == 1 and report["enqueued"] == 5
    assert sent_while_signalled == [5]
    state = db.anomaly_pipeline_state.find_one()
    assert state["status"] == "interrupted" and state["stats"]["enqueued"] == 5 and state["watermark"] is not None
    assert signal.getsignal(signal.SIGTERM) is not None  # the handler was put back


def test_state_reset_keeps_a_lease_taken_while_it_waited_for_confirmation(db: Any, monkeypatch) -> None:
    # GIVEN a finished run's state, and a discover run that takes the lease while the operator
    # reads the confirmation prompt

    from anomaly_cli.discovery.state import StateRepository

    seed(db, 2)
    assert run("discover").exit_code == 0
    repo = StateRepository(
        db.anomaly_pipeline_state,
        pipeline_name="audio_anomaly",
        source_collection="student_assessment_record",
        lease_seconds=600,
    )

    def confirm_while_a_run_starts(*args: Any, **kw: Any) -> bool:
        repo.acquire(DAY, "host:2:late-run", mode="incremental")
        return True

    monkeypatch.setattr("anomaly_cli.cli.commands.state.confirm", confirm_while_a_run_starts)
    # WHEN the operator confirms
    r = run("state", "reset", DAY, "--json")
    # THEN nothing is deleted: the delete was conditional on the state that was shown
    assert r.exit_code == exit_codes.RET_ERROR and json.loads(r.stdout)["error"]["code"] == "state_changed"
    assert repo.get(DAY)["lease"]["holder"] == "host:2:late-run"
