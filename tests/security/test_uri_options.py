"""GIVEN secrets inside MONGO_URI's options (MONGODB-AWS session tokens, the TLS key password,
proxy credentials) or inside an unparsable audio URL WHEN any command or event shows them THEN
only the option names remain visible, never the values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anomaly_cli.redact import redact_text, redact_uri, redact_url, secret_uri_options

TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE-session-token"
KEY_PW = "tls-key-pass-77b1"
URI = (
    "mongodb://127.0.0.1:1/nipun?authMechanism=MONGODB-AWS"
    f"&authMechanismProperties=AWS_SESSION_TOKEN:{TOKEN}&tls=true&tlsCertificateKeyFilePassword={KEY_PW}"
)


def test_pymongos_own_sensitive_options_are_all_masked() -> None:
    from pymongo import common

    assert {o.lower() for o in common.SENSITIVE_OPTIONS_FOR_REPR} <= secret_uri_options()
    assert {"authmechanismproperties", "tlscertificatekeyfilepassword"} <= secret_uri_options()


@pytest.mark.parametrize("option", sorted(secret_uri_options()))
def test_every_secret_option_value_is_masked_in_any_case_and_separator(option: str) -> None:
    for spelled in (option, option.upper()):
        for sep in ("&", ";"):
            uri = f"mongodb://u:pw@h1,h2/db?w=1{sep}{spelled}=S3CRET-{option}{sep}appname=x"
            shown = redact_uri(uri)
            assert f"S3CRET-{option}" not in shown and "pw" not in shown.split("@")[0]
            assert f"{spelled}=***" in shown and "appname=x" in shown
            assert f"S3CRET-{option}" not in redact_text(f"connect failed: {uri}")


def test_an_unparsable_url_keeps_nothing_of_its_query() -> None:
    for url in ("http://[::1/a.wav?password=PW", "https://[bad/x.wav?X-Amz-Signature=SIG&pwd=PW#frag"):
        shown = redact_url(url)
        assert "PW" not in shown and "SIG" not in shown and "password=" not in shown


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ANOMALY_ENV_FILE": str(tmp_path / "none.env"),
        "MONGO_URI": URI,
        "MONGO_TIMEOUT_MS": "300",
        "LOG_LEVEL": "DEBUG",
    }
    return subprocess.run(
        [sys.executable, "-m", "anomaly_cli", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [["config", "show"], ["config", "show", "--json"], ["doctor", "--json"]])
def test_config_show_and_doctor_never_print_option_secrets(tmp_path: Path, args: list[str]) -> None:
    p = _run(tmp_path, *args)
    text = p.stdout + p.stderr
    assert p.returncode != 2 and text.strip(), text[-800:]
    assert TOKEN not in text and KEY_PW not in text, text[-800:]
    if args == ["config", "show", "--json"]:
        assert "authMechanismProperties=***" in p.stdout
