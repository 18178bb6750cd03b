"""Settings: precedence, validation errors naming the variable, parsing by field type."""

from __future__ import annotations

import pytest

from anomaly_cli.config import _convert, load_settings
from anomaly_cli.errors import ConfigError


def test_precedence_defaults_dotenv_env_flags(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("BATCH_SIZE=3\nMAX_CONCURRENCY=5\nexport SUBJECT_NAME='गणित'\n# comment\n")
    s = load_settings({"max_concurrency": 9}, environ={"BATCH_SIZE": "4"}, env_file=env_file)
    assert (s.batch_size, s.max_concurrency, s.subject_name, s.discovery_batch_size) == (4, 9, "गणित", 100)
    assert s.sources["batch_size"] == "env"
    assert s.sources["max_concurrency"] == "flag"
    assert s.sources["subject_name"] == ".env"
    assert s.sources["discovery_batch_size"] == "default"


@pytest.mark.parametrize(
    "env, name",
    [
        ({"BATCH_SIZE": "ten"}, "BATCH_SIZE"),
        ({"DISCOVERY_BATCH_SIZE": "0"}, "DISCOVERY_BATCH_SIZE"),
        ({"TEST_DATE": "2025-13-01"}, "TEST_DATE"),
        ({"TEST_DATE": '{"$gt": ""}'}, "TEST_DATE"),
        ({"MONGO_TO_SQS_MODE": "fast"}, "MONGO_TO_SQS_MODE"),
        ({"TEST_DATE_TIMEZONE": "Mars/Olympus"}, "TEST_DATE_TIMEZONE"),
        ({"ENABLE_SOURCE_BACKLINK_UPDATE": "maybe"}, "ENABLE_SOURCE_BACKLINK_UPDATE"),
        ({"SQS_WAIT_SECONDS": "30"}, "SQS_WAIT_SECONDS"),
    ],
)
def test_invalid_values_name_the_variable(env, name):
    with pytest.raises(ConfigError) as e:
        load_settings(environ=env, env_file=None)
    assert name in str(e.value)


def test_allowlist_and_bool_parsing():
    s = load_settings(
        environ={
            "AUDIO_URL_ALLOWLIST": "s3://a, cdn.example.org ,",
            "ENABLE_SOURCE_BACKLINK_UPDATE": "yes",
            "MAX_RECORDS": "",
        },
        env_file=None,
    )
    assert s.audio_url_allowlist == ("s3://a", "cdn.example.org")
    assert s.enable_source_backlink_update is True
    assert s.max_records is None


def test_metrics_port_must_be_a_tcp_port():
    from anomaly_cli.config import load_settings
    from anomaly_cli.errors import ConfigError

    assert load_settings(environ={"METRICS_PORT": "9108"}, env_file=None).metrics_port == 9108
    assert load_settings(environ={}, env_file=None).metrics_port is None
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        load_settings(environ={"METRICS_PORT": "70000"}, env_file=None)


@pytest.mark.parametrize(
    ("name", "raw", "parsed"),
    [
        ("batch_size", " 7 ", 7),
        ("metrics_port", "9100", 9100),
        ("metrics_port", "", None),
        ("flush_seconds", "1.5", 1.5),
        ("flush_seconds", 3, 3.0),
        ("audio_url_allowlist", "s3://a, cdn.example.org", ("s3://a", "cdn.example.org")),
        ("enable_source_backlink_update", "off", False),
    ],
)
def test_values_are_parsed_by_the_field_type(name, raw, parsed):
    # GIVEN a text (or flag) value for a field, THEN it becomes a value of the field's type
    got = _convert(name, raw)
    assert got == parsed and type(got) is type(parsed)


def _float_settings() -> list:
    from anomaly_cli.config import setting_fields

    return [f for f in setting_fields() if f.type == "float"]


FLOAT_SETTINGS = _float_settings()


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"])
@pytest.mark.parametrize("field", FLOAT_SETTINGS, ids=lambda f: f.metadata["env"])
def test_every_float_setting_rejects_non_finite_values_naming_the_variable(field, raw):
    env = field.metadata["env"]
    with pytest.raises(ConfigError) as e:
        load_settings(environ={env: raw}, env_file=None)
    assert env in str(e.value) and e.value.field == env


@pytest.mark.parametrize("name", ["flush_seconds", "max_duration_seconds", "discovery_lease_seconds"])
def test_flags_reject_nan_too(name):
    with pytest.raises(ConfigError) as e:
        load_settings({name: float("nan")}, environ={}, env_file=None)
    from anomaly_cli.config import env_name

    assert e.value.field == env_name(name) and env_name(name) in str(e.value)


def test_durations_beyond_what_a_wait_can_hold_are_refused():
    with pytest.raises(ConfigError) as e:
        load_settings(environ={"DISCOVERY_LEASE_SECONDS": "1e300"}, env_file=None)
    assert "DISCOVERY_LEASE_SECONDS" in str(e.value)
