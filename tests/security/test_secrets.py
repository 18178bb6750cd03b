"""GIVEN a MONGO_URI with a password, AWS keys and a session token in the environment, and a
presigned audio URL WHEN operator commands run as real processes (DEBUG logs, --json, errors,
failed connections) THEN none of those secrets appears in stdout or stderr, while the commands
really ran (each produced its data, its error or its log lines)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.corpus.hostile import HostileServer

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Sup3rS3cretPw"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYSECRETKEY0"
AWS_TOKEN = "FwoGZXIvYXdzSESSIONTOKENxyz0123456789"
AWS_KEY_ID = "AKIAIOSFODNN7SECRETID"
SIGNATURE = "deadbeefSIGNATURE0123456789abcdef"
SECRETS = (PASSWORD, AWS_SECRET, AWS_TOKEN, AWS_KEY_ID, SIGNATURE)
MONGO_URI = f"mongodb://anomaly_rw:{PASSWORD}@127.0.0.1:1/nipun?authSource=admin"


def presigned(base: str) -> str:
    return (
        f"{base}/2025-12-20/a.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AWS_KEY_ID}%2F20251220"
        f"&X-Amz-Security-Token={AWS_TOKEN}&X-Amz-Signature={SIGNATURE}"
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, subprocess.CompletedProcess]]:
    """Every command of the matrix, run concurrently as subprocesses; name -> completed process."""
    tmp = tmp_path_factory.mktemp("secrets")
    urls_file = tmp / "urls.txt"
    with HostileServer() as srv:
        srv.route("/2025-12-20/a.wav", "bytes", b"<Error>AccessDenied</Error>", status=403)
        url = presigned(srv.base)
        urls_file.write_text(url + "\n")
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp),
            "LANG": "C.UTF-8",
            "MONGO_URI": MONGO_URI,
            "MONGO_TIMEOUT_MS": "300",
            "LOG_LEVEL": "DEBUG",
            "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_SESSION_TOKEN": AWS_TOKEN,
            "AWS_REGION": "ap-south-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
            "SQS_QUEUE_URL": "http://127.0.0.1:1/000000000000/work",
            "AUDIO_URL_ALLOWLIST": f"{srv.base},s3://nipun-audio",
            "MODEL_DIR": str(ROOT / "anomaly_cli" / "models"),
            "TEST_DATE": "2025-12-20",
            "SQS_WAIT_SECONDS": "0",
            "FETCH_RETRIES": "1",
            "ANOMALY_ENV_FILE": str(tmp / "none.env"),
        }
        commands = {
            "config_show": ["config", "show"],
            "config_show_json": ["config", "show", "--json"],
            "discover_json": ["discover", "--mode", "backfill", "--json"],
            "state_show_json": ["state", "show", "2025-12-20", "--json"],
            "work": ["work", "--max-messages", "1", "--idle-exit", "1"],
            "score_presigned_json": ["score", url, "--json"],
            "score_presigned": ["score", url],
            "push_urls_json": ["push-urls", str(urls_file), "--json"],
            "results_inspect_json": ["results", "inspect", "2025-12-20", "--json"],
            "doctor_json": ["doctor", "--json"],
        }
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "anomaly_cli", *args],
                cwd=tmp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, args in commands.items()
        }
        out: dict[str, subprocess.CompletedProcess] = {}
        for name, p in procs.items():
            try:
                stdout, stderr = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                stdout, stderr = p.communicate()
            out[name] = subprocess.CompletedProcess(commands[name], p.returncode, stdout, stderr)
        yield out


NAMES = [
    "config_show",
    "config_show_json",
    "discover_json",
    "state_show_json",
    "work",
    "score_presigned_json",
    "score_presigned",
    "push_urls_json",
    "results_inspect_json",
    "doctor_json",
]


@pytest.mark.parametrize("name", NAMES)
def test_no_secret_in_any_output(name: str, runs: dict[str, subprocess.CompletedProcess]) -> None:
    p = runs[name]
    text = p.stdout + p.stderr
    assert p.returncode != 2, f"usage error, the command did not run: {p.stderr[-500:]}"
    assert text.strip(), "the command printed nothing: nothing was proven"
    for secret in SECRETS:
        assert secret not in text, f"{name} leaked {secret[:6]}...: {text[max(0, text.find(secret) - 200) :][:400]}"
    # a traceback means a crash, not a handled error, and tracebacks print values (with locals: all of them)
    assert "Traceback (most recent call last)" not in text, f"{name} crashed: {text[text.find('Traceback') :][:600]}"


def test_config_show_masks_the_uri_but_shows_where_it_points(runs: dict[str, subprocess.CompletedProcess]) -> None:
    p = runs["config_show_json"]
    assert p.returncode == 0
    assert "mongodb://***@127.0.0.1:1/nipun" in p.stdout


def test_failed_connections_are_explained_without_the_password(runs: dict[str, subprocess.CompletedProcess]) -> None:
    from anomaly_cli.cli import exit_codes

    for name in ("discover_json", "state_show_json"):
        p = runs[name]
        assert p.returncode == exit_codes.RET_CONNECTION, (name, p.stdout[-300:], p.stderr[-300:])
        err = json.loads(p.stdout.strip().splitlines()[-1])["error"]
        assert err["code"] == "mongo_unavailable" and err["message"]


def test_score_reports_the_refusal_without_the_signature(runs: dict[str, subprocess.CompletedProcess]) -> None:
    p = runs["score_presigned_json"]
    line = json.loads(p.stdout.strip().splitlines()[-1])
    assert "403" in json.dumps(line) or "access_denied" in json.dumps(line)
    assert "/2025-12-20/a.wav" in json.dumps(line)  # the input is named, only its query string is masked


def test_json_log_lines_mask_urls_uris_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The log formatter itself: URL fields lose their query, free text loses credentials."""
    from anomaly_cli.log import configure_logging, get_logger

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    buf = io.StringIO()
    configure_logging("DEBUG", stream=buf)
    try:
        log = get_logger("test")
        log.info(
            "fetch_failed",
            url=presigned("https://nipun-audio.s3.amazonaws.com"),
            reason=f"cannot connect to {MONGO_URI} with {AWS_SECRET}",
            nested={"audio_s3_url": presigned("https://h"), "items": [f"mongodb://u:{PASSWORD}@h"]},
        )
        try:
            raise RuntimeError(f"boom {MONGO_URI} sig={SIGNATURE}")
        except RuntimeError as e:
            log.error("batch_failed", exc_info=e)
    finally:
        logging.getLogger("anomaly").handlers.clear()
    text = buf.getvalue()
    assert text.count("\n") == 2 and "fetch_failed" in text and "batch_failed" in text
    for secret in SECRETS:
        assert secret not in text, secret


def test_rich_tracebacks_never_show_locals() -> None:
    from anomaly_cli.cli.app import app

    assert app.pretty_exceptions_show_locals is False


def test_results_commands_never_echo_a_stored_presigned_url(
    monkeypatch: pytest.MonkeyPatch, embedded_mongo_uri: str
) -> None:
    """Results keep ``audio_s3_url`` as enqueued (it is an input of ``_id``), presigned or not; the
    results commands show it redacted, and a listening link is a fresh one, never the stored one."""
    from typer.testing import CliRunner

    from anomaly_cli.adapters.mongo import connect
    from anomaly_cli.cli.app import app
    from anomaly_cli.results import document as D
    from anomaly_cli.screening import Screening
    from tests.corpus.test_messages import valid_item

    monkeypatch.setenv("MONGO_URI", embedded_mongo_uri)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    results = connect(embedded_mongo_uri)["nipun"]["anomaly_detection_results"]
    s3_signed = valid_item(presigned("https://nipun-audio.s3.ap-south-1.amazonaws.com"), subject_id="s3-signed")
    cdn_signed = valid_item(presigned("https://cdn.example.org"), subject_id="cdn-signed")
    for item in (s3_signed, cdn_signed):
        screening = Screening.failed(
            code="access_denied", message="HTTP 403", stage="fetch", reason="unavailable", model_version="v1"
        )
        results.insert_one(D.build_result(item, screening, worker_id="w", attempt=1))

    runner = CliRunner()
    outputs = {
        "show_s3_json": runner.invoke(app, ["results", "show", s3_signed.result_id, "--json"]),
        "show_s3": runner.invoke(app, ["results", "show", s3_signed.result_id]),
        "show_cdn_json": runner.invoke(app, ["results", "show", cdn_signed.result_id, "--json"]),
        "inspect_json": runner.invoke(app, ["results", "inspect", "2025-12-20", "--json"]),
    }
    for name, res in outputs.items():
        assert res.exit_code == 0, (name, res.output[-400:])
        for secret in (SIGNATURE, AWS_TOKEN, AWS_SECRET, PASSWORD):
            assert secret not in res.output, (name, secret[:6])
    shown = json.loads(outputs["show_s3_json"].stdout)
    assert shown["listen_url"] and "nipun-audio" in shown["listen_url"]  # a fresh link of our own
    assert json.loads(outputs["show_cdn_json"].stdout)["listen_url"] is None  # nothing to re-share


def test_worker_started_names_its_settings_without_secrets(
    make_settings: Any, mongo: Any, sqs_client: Any, make_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``worker_started`` logs the effective settings: the URI's host is there, its password is not."""
    from anomaly_cli.log import configure_logging
    from anomaly_cli.worker.factory import build_worker
    from anomaly_cli.worker.shutdown import MaxMessages

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    settings = make_settings(
        sqs_queue_url=make_queue(), mongo_uri=MONGO_URI, sqs_wait_seconds=0, audio_url_allowlist=("s3://nipun-audio",)
    )
    buf = io.StringIO()
    configure_logging("DEBUG", stream=buf)
    try:
        worker = build_worker(
            settings,
            sqs_client=sqs_client,
            db=mongo["nipun"],
            model_version="v-test",
            screen=lambda data: None,
            policy=MaxMessages(0),
            worker_id="w",
        )
        worker.run()
    finally:
        logging.getLogger("anomaly").handlers.clear()
    started = [json.loads(line) for line in buf.getvalue().splitlines() if '"worker_started"' in line]
    assert started and started[0]["mongo_uri"] == "mongodb://***@127.0.0.1:1/nipun?authSource=admin"
    for secret in SECRETS:
        assert secret not in buf.getvalue()


BAD_URIS = {
    "unescaped_at_in_password": f"mongodb://anomaly_rw:Sup3r@{PASSWORD}@127.0.0.1:1/nipun",
    "unescaped_slash_in_password": f"mongodb://anomaly_rw:pa/{PASSWORD}@127.0.0.1:1/nipun",
    "bad_port": f"mongodb://anomaly_rw:{PASSWORD}@127.0.0.1:notaport/nipun",
    "unknown_option": f"mongodb://anomaly_rw:{PASSWORD}@127.0.0.1:1/nipun?badoption=1",
    "srv_unresolvable": f"mongodb+srv://anomaly_rw:{PASSWORD}@cluster.invalid/nipun",
}


def test_malformed_mongo_uris_never_echo_the_password(tmp_path: Path) -> None:
    """Operators mistype URIs (an unescaped '@' or '/' in the password): the config or connection
    error names the problem and the host, never the password."""
    from anomaly_cli.cli import exit_codes

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "MONGO_TIMEOUT_MS": "300",
        "LOG_LEVEL": "DEBUG",
        "ANOMALY_ENV_FILE": str(tmp_path / "none.env"),
        "AWS_REGION": "ap-south-1",
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "anomaly_cli", "state", "show", "2025-12-20", "--json"],
            cwd=tmp_path,
            env=env | {"MONGO_URI": uri},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, uri in BAD_URIS.items()
    }
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode in (exit_codes.RET_CONFIG, exit_codes.RET_CONNECTION), (name, stdout, stderr[-300:])
        assert json.loads(stdout.strip().splitlines()[-1])["error"]["message"], name
        assert PASSWORD not in stdout + stderr, (name, (stdout + stderr)[:400])


def test_replay_dlq_samples_of_unparseable_bodies_are_redacted(sqs_client: Any, make_queue: Any) -> None:
    """A DLQ body that breaks the contract is shown as a sample; a presigned URL inside it is not."""
    from typer.testing import CliRunner

    from anomaly_cli.cli.app import app

    dlq, main = make_queue(), make_queue()
    body = json.dumps({"audio_s3_url": f"https://h/a.wav?X-Amz-Signature={SIGNATURE}", "test_date": "x"})
    sqs_client.send_message(QueueUrl=dlq, MessageBody=body)
    res = CliRunner().invoke(app, ["replay-dlq", "--dlq-url", dlq, "--queue-url", main, "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["invalid"] == 1 and report["invalid_samples"]  # the sample is there...
    assert SIGNATURE not in res.output  # ...without the signature


def test_an_unexpected_crash_traceback_shows_no_secret(tmp_path: Path) -> None:
    """GIVEN a failure no handler expects (injected at start-up through ``sitecustomize``, so the
    code under test is untouched) WHEN the traceback is printed THEN the settings and clients held
    in the frames' locals (the URI with its password, the AWS keys) are not."""
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import anomaly_cli.discovery.service as s\n"
        "def _boom(self, *a, **k):\n"
        "    raise RuntimeError('injected failure with no secret in its text')\n"
        "s.DiscoveryService.run = _boom\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(inject),
        "MONGO_URI": MONGO_URI,
        "AWS_ACCESS_KEY_ID": AWS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "AWS_SESSION_TOKEN": AWS_TOKEN,
        "AWS_REGION": "ap-south-1",
        "LOG_LEVEL": "DEBUG",
        "ANOMALY_ENV_FILE": str(tmp_path / "none.env"),
        "COLUMNS": "200",
    }
    p = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", "discover", "--test-date", "2025-12-20", "--dry-run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = p.stdout + p.stderr
    assert p.returncode != 0 and "injected failure" in text, text[-800:]  # it crashed, with a traceback
    for secret in SECRETS:
        assert secret not in text, secret[:6]
