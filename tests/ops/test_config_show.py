"""config show: values, sources, redaction."""

import json


def test_config_show_sources_and_redaction(cli, tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("BATCH_SIZE=7\nMONGO_URI=mongodb://admin:hunter2secret@db.internal:27017/nipun\n")
    monkeypatch.setenv("SQS_QUEUE_URL", "https://sqs.ap-south-1.amazonaws.com/1/q")
    monkeypatch.delenv("MONGO_URI")
    r = cli(["--log-level", "ERROR", "config", "show", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["env"]: row for row in json.loads(r.stdout)["settings"]}
    assert rows["BATCH_SIZE"]["value"] == 7 and rows["BATCH_SIZE"]["source"] == ".env"
    assert rows["SQS_QUEUE_URL"]["source"] == "env"
    assert rows["LOG_LEVEL"] == {**rows["LOG_LEVEL"], "value": "ERROR", "source": "flag"}
    assert rows["DISCOVERY_BATCH_SIZE"]["source"] == "default"
    assert "hunter2secret" not in r.stdout and "db.internal" in rows["MONGO_URI"]["value"]
    table = cli(["config", "show"])
    assert "hunter2secret" not in table.stdout and "BATCH_SIZE" in table.stdout


def test_config_show_names_an_invalid_setting(cli):
    r = cli(["config", "show"], env={"BATCH_SIZE": "zero"})
    assert r.exit_code == 3 and "BATCH_SIZE" in r.stderr
