"""The compatibility scripts map their flags onto the CLI and run the same code."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from anomaly_cli.contract import parse_message
from tests.conftest import drain_queue

REPO = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flag_translation():
    seed = _load("seed_sqs")
    assert seed.to_cli_args(["--count", "5", "--bucket", "b", "--dry-run"]) == [
        "seed-sqs",
        "--synthetic",
        "5",
        "--bucket",
        "b",
        "--dry-run",
    ]
    assert seed.to_cli_args(["--from", "x.jsonl"]) == ["seed-sqs", "--from", "x.jsonl"]
    push = _load("push_audio_urls_to_sqs")
    assert push.to_cli_args(["--input", "u.txt", "--test-date", "2025-12-20"]) == [
        "push-urls",
        "u.txt",
        "--test-date",
        "2025-12-20",
    ]
    assert push.to_cli_args([]) == ["push-urls", "-"]


def test_scripts_run_as_processes_against_a_moto_server(moto_server, tmp_path):
    import boto3

    sqs = boto3.client("sqs", region_name="ap-south-1", endpoint_url=moto_server)
    url = sqs.create_queue(QueueName="scripts-test")["QueueUrl"]
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": moto_server,
        "SQS_QUEUE_URL": url,
        "AWS_REGION": "ap-south-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "LOG_LEVEL": "ERROR",
    }
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts/seed_sqs.py"),
            "--count",
            "3",
            "--bucket",
            "b",
            "--test-date",
            "2025-12-20",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sent"] == 3
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts/push_audio_urls_to_sqs.py"), "--test-date", "2025-12-20", "--json"],
        input="s3://b/a.wav\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    items = [parse_message(m["Body"]) for m in drain_queue(sqs, url)]
    assert len(items) == 4 and sum(i.record_type == "adhoc" for i in items) == 1
