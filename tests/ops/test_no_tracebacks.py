"""GIVEN an unlucky operator (a MONGO_URI naming a missing TLS key file, an export onto a disk
that is full) WHEN the commands run THEN each ends with a named error and exit code, never a
traceback, and no ``.part`` file is left behind."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from anomaly_cli.cli import exit_codes

MISSING_KEY = "mongodb://u:hunter2-pw@127.0.0.1:1/?tls=true&tlsCertificateKeyFile=/nonexistent/anomaly-key.pem"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    tree = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}  # a worktree first
    return {
        "PATH": os.environ.get("PATH", ""),
        **tree,
        # A child under _full_disk's 64-byte file limit would write every stale .pyc it compiles
        # cut at 64 bytes (CPython does not retry a short write), breaking that module's import
        # for every later process using the tree ("EOFError: marshal data too short").
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ANOMALY_ENV_FILE": str(tmp_path / "none.env"),
        "MONGO_TIMEOUT_MS": "300",
        **extra,
    }


@pytest.mark.parametrize(
    "args, code",
    [
        (["doctor", "--json"], exit_codes.RET_UNHEALTHY),
        (["state", "show", "2025-12-20"], exit_codes.RET_CONFIG),
        (["results", "inspect", "2025-12-20"], exit_codes.RET_CONFIG),
    ],
    ids=["doctor", "state_show", "results_inspect"],
)
def test_a_missing_tls_key_file_is_a_configuration_error(tmp_path: Path, args: list[str], code: int) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "anomaly_cli", *args],
        cwd=tmp_path,
        env=_env(tmp_path, MONGO_URI=MISSING_KEY),
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = p.stdout + p.stderr
    assert p.returncode == code, text[-1500:]
    assert "Traceback" not in text and "FileNotFoundError" not in text
    assert "tlsCertificateKeyFile" in text and "hunter2-pw" not in text


def _full_disk() -> None:
    """In the child: files may grow to 64 bytes (what a full disk looks like to a writer)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl"])
def test_export_onto_a_full_disk_is_an_error_and_leaves_no_part_file(tmp_path: Path, name: str) -> None:
    script = (
        "import sys, datetime as dt\n"
        "from anomaly_cli.adapters.mongo import connect\n"
        "db = connect('mongomock://full')['nipun']\n"
        "db.anomaly_detection_results.insert_many([{'_id': f'r{i}', 'source': {'test_date': "
        "dt.datetime(2025, 12, 20, tzinfo=dt.timezone.utc), 'subject_id': 'x' * 200}} for i in range(50)])\n"
        "from anomaly_cli.cli.app import app\n"
        f"sys.argv = ['anomaly', 'results', 'inspect', '2025-12-20', '--export', {name!r}]\n"
        "app()\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=_env(tmp_path, MONGO_URI="mongomock://full"),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_full_disk,
    )
    text = p.stdout + p.stderr
    assert p.returncode == exit_codes.RET_ERROR, text[-1500:]
    assert "--export" in text and "nothing was written" in text, text[-1500:]
    assert "Traceback" not in text
    assert sorted(f.name for f in tmp_path.iterdir() if f.name.startswith("out")) == []
