"""Issue 14, problem 9: an unreachable MongoDB is named with its host and cause, and an operator
command does not sit out MONGO_TIMEOUT_MS to say so.

Against a real closed local port: ``state``, ``results``, ``coverage``, ``doctor`` report the
refused connection from pymongo's first check of the host, while ``work`` and ``discover`` (which a
deployment may start before their database) say once that they wait and then wait the whole
MONGO_TIMEOUT_MS. A seed list where one host refuses and another has not answered yet is not
judged early: a replica set keeps its chance.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from anomaly_cli.cli import exit_codes

ROOT = Path(__file__).resolve().parents[2]
#: far longer than the subprocess may take: a command that waited it out fails by timeout, not by a speed bound
PATIENCE_MS = "600000"


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released): connecting is refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never answers (a host that has not answered yet)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def anomaly(args: list[str], tmp_path: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGO_", "SQS_", "LOG_", "AUDIO_"))}
    base.update({"PYTHONPATH": str(ROOT), "ANOMALY_ENV_FILE": str(tmp_path / "none.env"), **env})
    return subprocess.run(
        [sys.executable, "-m", "anomaly_cli", *args],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    "args",
    [
        ["state", "list", "--json"],
        ["results", "inspect", "2025-12-20", "--json"],
        ["coverage", "2025-12-20", "--no-queue", "--json"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_operator_command_reports_a_refused_host_without_waiting_out_the_timeout(
    args: list[str], closed_port: int, tmp_path: Path
) -> None:
    # GIVEN MongoDB at a closed port and a MONGO_TIMEOUT_MS of ten minutes
    r = anomaly(args, tmp_path, MONGO_URI=f"mongodb://127.0.0.1:{closed_port}", MONGO_TIMEOUT_MS=PATIENCE_MS)
    # THEN the command ends (well before the subprocess timeout) with the connection code,
    # naming the host and the cause pymongo's first check met, not a server-selection timeout
    assert r.returncode == exit_codes.RET_CONNECTION, r.stderr[-2000:]
    error = json.loads(r.stdout)["error"]
    assert error["code"] == "mongo_unavailable"
    assert f"127.0.0.1:{closed_port}" in error["message"] and "refused" in error["message"].lower()
    assert "ServerSelectionTimeoutError" not in error["message"]
    assert "MONGO_URI" in error["hint"]


def test_doctor_reports_a_refused_host_as_a_failed_check(closed_port: int, tmp_path: Path) -> None:
    r = anomaly(
        ["doctor", "--no-aws", "--no-model", "--json"],
        tmp_path,
        MONGO_URI=f"mongodb://127.0.0.1:{closed_port}/?directConnection=true",
        MONGO_TIMEOUT_MS=PATIENCE_MS,
    )
    assert r.returncode == exit_codes.RET_UNHEALTHY, r.stderr[-2000:]
    check = {c["name"]: c for c in json.loads(r.stdout)["checks"]}["reachable"]
    assert check["status"] == "fail" and f"127.0.0.1:{closed_port}" in check["detail"]
    assert "refused" in check["detail"].lower() and "MONGO_URI" in check["fix"]


def test_a_name_that_does_not_resolve_is_reported_with_its_cause(tmp_path: Path) -> None:
    import time

    started = time.monotonic()
    with pytest.raises(OSError):
        socket.getaddrinfo("db.invalid", 27017)  # .invalid never resolves (RFC 6761)
    if time.monotonic() - started > 0.5:
        pytest.skip("this machine's resolver takes more than the first-contact second to refuse a name")
    r = anomaly(["state", "list", "--json"], tmp_path, MONGO_URI="mongodb://db.invalid:27017", MONGO_TIMEOUT_MS="60000")
    assert r.returncode == exit_codes.RET_CONNECTION, r.stderr[-2000:]
    message = json.loads(r.stdout)["error"]["message"]
    assert "db.invalid:27017" in message and "ServerSelectionTimeoutError" not in message


@pytest.mark.parametrize(
    "args",
    [["discover", "--test-date", "2025-12-20", "--dry-run", "--json"], ["work", "--limit", "1"]],
    ids=lambda a: a[0],
)
def test_work_and_discover_say_they_wait_and_wait_out_mongo_timeout_ms(
    args: list[str], closed_port: int, tmp_path: Path
) -> None:
    # GIVEN the same closed port and a short MONGO_TIMEOUT_MS
    r = anomaly(
        args,
        tmp_path,
        MONGO_URI=f"mongodb://127.0.0.1:{closed_port}",
        MONGO_TIMEOUT_MS="1500",
        SQS_QUEUE_URL="http://127.0.0.1:1/000000000000/work",
        AUDIO_URL_ALLOWLIST="s3://audio",
    )
    # THEN they said once what they wait for, and ended on pymongo's server selection timeout
    assert r.returncode == exit_codes.RET_CONNECTION, (r.stdout + r.stderr)[-2000:]
    seen = events(r.stderr)
    waiting = [e for e in seen if e["event"] == "mongo_unreachable_waiting"]
    assert len(waiting) == 1 and waiting[0]["wait_ms"] == 1500
    assert f"127.0.0.1:{closed_port}" in waiting[0]["hosts"][0] and "refused" in waiting[0]["hosts"][0].lower()
    assert "ServerSelectionTimeoutError" in r.stdout + r.stderr


def test_a_seed_list_with_one_refusing_host_is_not_judged_early(
    closed_port: int, silent_port: int, tmp_path: Path
) -> None:
    # GIVEN a replica set seed list: one host refuses, the other has not answered yet
    uri = f"mongodb://127.0.0.1:{closed_port},127.0.0.1:{silent_port}/?replicaSet=rs0"
    r = anomaly(["state", "list", "--json"], tmp_path, MONGO_URI=uri, MONGO_TIMEOUT_MS="2500")
    # THEN the command gave pymongo its whole MONGO_TIMEOUT_MS (the other host might be the primary)
    assert r.returncode == exit_codes.RET_CONNECTION, r.stderr[-2000:]
    assert "ServerSelectionTimeoutError" in json.loads(r.stdout)["error"]["message"]


def test_first_contact_reads_pymongo_s_topology_and_names_every_host() -> None:
    from anomaly_cli.adapters import mongo

    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    hosts = {f"127.0.0.1:{s.getsockname()[1]}" for s in sockets}
    for s in sockets:
        s.close()
    client = mongo.connect("mongodb://" + ",".join(sorted(hosts)), timeout_ms=60000)
    try:
        failures = mongo.first_contact_failures(client, within=30)
    finally:
        client.close()
    assert {f.split(": ", 1)[0] for f in failures} == hosts
