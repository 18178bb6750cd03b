"""Redaction: credentials in URIs, presigned query strings, secrets in free text, and the settings
fields declared secret."""

from __future__ import annotations

import dataclasses

from anomaly_cli.config import Settings, _spec, load_settings
from anomaly_cli.redact import mask_secret, redact_text, redact_uri, redact_url


def test_redaction():
    s = load_settings(environ={"MONGO_URI": "mongodb://admin:hunter2@db.example:27017/x"}, env_file=None)
    assert "hunter2" not in str(s.redacted())
    assert redact_uri("mongodb+srv://u:p@c.example/db") == "mongodb+srv://***@c.example/db"
    url = "https://b.s3.amazonaws.com/k.m4a?X-Amz-Signature=abc&X-Amz-Credential=AKIA"
    assert "abc" not in redact_url(url) and "AKIA" not in redact_url(url)
    assert "abc" not in redact_text(f"failed to get {url}")


def test_every_field_declared_secret_is_masked_not_only_the_mongo_uri():
    # GIVEN settings with one more field declared secret=True (a future password or token)
    extended = dataclasses.make_dataclass(
        "Extended",
        [("api_token", str, _spec("API_TOKEN", "a token", secret=True, default="tok-123456"))],
        bases=(Settings,),
        frozen=True,
    )
    shown = extended().redacted()
    # THEN it is masked by its declaration, and fields not declared secret are shown as they are
    assert shown["api_token"] == "***"
    assert shown["mongo_db_name"] == "nipun"


def test_a_secret_uri_keeps_its_host_and_any_other_secret_is_hidden_whole():
    assert mask_secret("mongodb://admin:hunter2@db.example:27017/x") == "mongodb://***@db.example:27017/x"
    assert mask_secret("hunter2") == "***"
    assert mask_secret("") == ""
