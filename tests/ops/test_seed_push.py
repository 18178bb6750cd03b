"""seed-sqs and push-urls through the CLI on moto SQS."""

from __future__ import annotations

import json

from anomaly_cli.cli import exit_codes
from anomaly_cli.contract import parse_message
from tests.conftest import drain_queue
from tests.ops.conftest import TEST_DATE, make_item


def test_seed_without_arguments_explains_what_it_needs(cli):
    r = cli(["seed-sqs"])
    assert r.exit_code == exit_codes.RET_USAGE
    assert "--from FILE" in r.stderr and "--synthetic N" in r.stderr


def test_seed_from_jsonl_reports_bad_lines_and_sends_good_ones(cli, make_queue, sqs_client, tmp_path):
    url = make_queue()
    good = [make_item(i).to_body() for i in range(12)]
    lines = good[:5] + ["not json", json.dumps({"mongo_doc_id": "x"}), ""] + good[5:]
    lines.insert(9, json.dumps({**json.loads(good[0]), "record_type": "parent"}))
    f = tmp_path / "items.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")

    r = cli(["seed-sqs", "--from", str(f), "--json"], env={"SQS_QUEUE_URL": url})

    assert r.exit_code == exit_codes.RET_PARTIAL
    report = json.loads(r.stdout)
    assert report["sent"] == 12 and report["bad_rows"] == 3 and report["failed"] == 0
    assert [b["line"] for b in report["bad_row_details"]] == [6, 7, 10]
    assert "record_type" in report["bad_row_details"][2]["reason"]
    got = {parse_message(m["Body"]).subject_id for m in drain_queue(sqs_client, url)}
    assert got == {f"sub-{i}" for i in range(12)}


def test_seed_from_csv_with_empty_nullable_cells(cli, make_queue, sqs_client, tmp_path):
    import csv

    url = make_queue()
    f = tmp_path / "items.csv"
    with f.open("w", newline="", encoding="utf-8") as fh:
        msg = make_item(1).to_message()
        w = csv.DictWriter(fh, fieldnames=list(msg))
        w.writeheader()
        w.writerow({**msg, "udise": ""})
        w.writerow({**msg, "test_date": "2025-13-40"})
    r = cli(["seed-sqs", "--from", str(f), "--json"], env={"SQS_QUEUE_URL": url})
    report = json.loads(r.stdout)
    assert report["sent"] == 1 and report["bad_row_details"][0]["line"] == 3
    [m] = drain_queue(sqs_client, url)
    assert parse_message(m["Body"]).udise is None


def test_seed_csv_without_the_contract_header_is_a_config_error(cli, make_queue, tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("a,b\n1,2\n")
    r = cli(["seed-sqs", "--from", str(f)], env={"SQS_QUEUE_URL": make_queue()})
    assert r.exit_code == exit_codes.RET_CONFIG and "header lacks" in r.stderr


def test_seed_synthetic_to_fifo_queue_and_dry_run(cli, make_queue, sqs_client):
    url = make_queue(fifo=True)
    dry = cli(["seed-sqs", "--synthetic", "25", "--bucket", "b", "--dry-run", "--json"], env={"SQS_QUEUE_URL": url})
    assert json.loads(dry.stdout)["sent"] == 25 and drain_queue(sqs_client, url) == []

    r = cli(
        ["seed-sqs", "--synthetic", "25", "--bucket", "b", "--test-date", TEST_DATE, "--json"],
        env={"SQS_QUEUE_URL": url},
    )
    assert r.exit_code == 0, r.output
    msgs = drain_queue(sqs_client, url)
    items = [parse_message(m["Body"]) for m in msgs]
    assert len(items) == 25 and {i.record_type for i in items} == {"teacher", "admin"}
    assert all(i.audio_s3_url.startswith("s3://b/synthetic/") for i in items)
    assert {m["Attributes"]["MessageGroupId"] for m in msgs} == {i.mongo_doc_id for i in items}


def test_seed_refused_entries_are_counted_not_lost_silently(cli, make_queue, sqs_client, tmp_path):
    """SQS refuses entries per-entry (Failed[]): the report says so and the exit code is partial."""
    url = make_queue()
    f = tmp_path / "i.jsonl"
    f.write_text("\n".join(make_item(i).to_body() for i in range(3)))

    from anomaly_cli.cli import context as ctx_mod

    original = ctx_mod.CliContext.sqs_client.func

    def failing_client(self):
        client = original(self)

        def refuse(parsed, **kwargs):
            parsed["Failed"] = [
                {"Id": s["Id"], "Code": "InvalidParameterValue", "SenderFault": True, "Message": "no"}
                for s in parsed.get("Successful", [])[:1]
            ]
            parsed["Successful"] = parsed.get("Successful", [])[1:]

        client.meta.events.register("after-call.sqs.SendMessageBatch", lambda parsed, **kw: refuse(parsed))
        return client

    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(ctx_mod.CliContext, "sqs_client", property(failing_client))
    try:
        r = cli(["seed-sqs", "--from", str(f), "--json"], env={"SQS_QUEUE_URL": url})
    finally:
        mp.undo()
    report = json.loads(r.stdout)
    assert r.exit_code == exit_codes.RET_PARTIAL
    assert report["sent"] == 2 and report["failed"] == 1 and report["failure_codes"] == {"InvalidParameterValue": 1}


def test_push_urls_plain_and_csv(cli, make_queue, sqs_client, tmp_path):
    url = make_queue()
    plain = "# field recordings\ns3://audio/a.m4a\n\nftp://nope/x\nhttps://audio.example.org/b.wav\ns3://audio/a.m4a\n"
    r = cli(
        ["push-urls", "-", "--test-date", TEST_DATE, "--name", "ticket-42", "--json"],
        env={"SQS_QUEUE_URL": url},
        input=plain,
    )
    report = json.loads(r.stdout)
    assert r.exit_code == exit_codes.RET_PARTIAL and report["sent"] == 3
    assert report["bad_row_details"][0]["line"] == 4
    items = [parse_message(m["Body"]) for m in drain_queue(sqs_client, url)]
    assert {i.record_type for i in items} == {"adhoc"} and {i.source_collection for i in items} == {"adhoc:ticket-42"}
    same = [i for i in items if i.audio_s3_url == "s3://audio/a.m4a"]
    assert len(same) == 2 and same[0].result_id == same[1].result_id  # stable id: screened once

    f = tmp_path / "urls.csv"
    f.write_text("url,student_id,udise,test_date\ns3://audio/c.wav,STU-9,2725,2025-12-21\ns3://audio/d.wav,,,\n")
    r = cli(["push-urls", str(f), "--test-date", TEST_DATE, "--json"], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == 0 and json.loads(r.stdout)["sent"] == 2
    items = sorted((parse_message(m["Body"]) for m in drain_queue(sqs_client, url)), key=lambda i: i.audio_s3_url)
    assert (items[0].student_id, items[0].udise, items[0].test_date) == ("STU-9", "2725", "2025-12-21")
    assert (items[1].student_id, items[1].test_date, items[1].source_collection) == (None, TEST_DATE, "adhoc:urls.csv")


def test_unreadable_inputs_are_config_errors_not_crashes(cli, make_queue, tmp_path):
    url = make_queue()
    r = cli(["seed-sqs", "--from", str(tmp_path / "missing.jsonl")], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == exit_codes.RET_CONFIG and "cannot read" in r.stderr
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("source_collection,x\ncaf\xe9\n".encode("latin-1"))
    r = cli(["seed-sqs", "--from", str(bad)], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == exit_codes.RET_CONFIG and "not UTF-8" in r.stderr
    urls = tmp_path / "urls.txt"
    urls.write_bytes(b"s3://audio/a.wav\ns3://audio/\xff\xfe.wav\n")
    r = cli(["push-urls", str(urls), "--test-date", TEST_DATE], env={"SQS_QUEUE_URL": url})
    assert r.exit_code == exit_codes.RET_CONFIG and "not UTF-8" in r.stderr
