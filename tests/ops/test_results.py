"""results inspect / export / show / dedupe on the Mongo double."""

from __future__ import annotations

import csv
import dataclasses
import json
import re

from anomaly_cli.cli import exit_codes
from tests.ops.conftest import TEST_DATE, make_item, put_result, screening


def _fill(db):
    """20 results: school A 12 (6 anomalies), school B 5 (0), two failures, one other date."""
    docs = []
    for i in range(12):
        item = dataclasses.replace(make_item(i, record_type="admin" if i % 3 == 0 else "teacher"), udise="A")
        docs.append(put_result(db, item, screening(reasons=("quiet",) if i % 2 == 0 else ())))
    for i in range(12, 17):
        docs.append(put_result(db, dataclasses.replace(make_item(i), udise="B"), screening()))
    put_result(db, make_item(17), screening(failed="not_found"))
    put_result(db, make_item(18), screening(failed="not_found"))
    put_result(
        db, make_item(19, url="s3://audio/x.wav?X-Amz-Signature=abcdef123456"), screening(reasons=("clipping", "quiet"))
    )
    put_result(db, make_item(20, test_date="2025-12-21"), screening(reasons=("quiet",)))
    return docs


def test_inspect_summary(cli, db):
    _fill(db)
    r = cli(["results", "inspect", TEST_DATE, "--min-count", "5", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["total"], s["ok"], s["failed"], s["anomalies"]) == (20, 18, 2, 7)
    assert s["anomaly_rate"] == round(7 / 18, 4)
    assert s["by_reason"] == {"quiet": 7, "clipping": 1}
    assert s["failures_by_code"] == {"not_found": 2}
    assert s["by_record_type"]["admin"] == {"total": 4, "anomalies": 2, "failed": 0}
    assert [x["udise"] for x in s["top_schools"]] == ["A", "B"] and s["top_schools"][0]["rate"] == 0.5
    assert "abcdef123456" not in r.stdout

    r = cli(["results", "inspect", TEST_DATE, "--reason", "clipping", "--json"])
    assert json.loads(r.stdout)["total"] == 1
    r = cli(["results", "inspect", TEST_DATE, "--udise", "B", "--anomalies-only", "--json"])
    assert json.loads(r.stdout)["total"] == 0
    human = cli(["results", "inspect", TEST_DATE, "--min-count", "5"])
    assert "by reason" in human.stdout and "quiet" in human.stdout


def test_inspect_bad_date_is_a_usage_error(cli):
    r = cli(["results", "inspect", "2025-02-30"])
    assert r.exit_code == exit_codes.RET_USAGE  # as in every command (tests/cli/test_one_voice.py)


def test_export_csv_and_jsonl_stream_every_row(cli, db, tmp_path):
    _fill(db)
    f = tmp_path / "out.csv"
    r = cli(["results", "inspect", TEST_DATE, "--anomalies-only", "--export", str(f), "--json"])
    assert json.loads(r.stdout)["exported"] == 7
    rows = list(csv.DictReader(f.open(encoding="utf-8")))
    assert len(rows) == 7 and all(row["is_anomaly"] == "True" for row in rows)
    assert not any("abcdef123456" in row["audio_url"] for row in rows)
    j = tmp_path / "all.jsonl"
    cli(["results", "inspect", TEST_DATE, "--export", str(j)])
    lines = [json.loads(x) for x in j.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 20 and "fp_bands" not in lines[0]["audio"]
    bad = cli(["results", "inspect", TEST_DATE, "--export", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == exit_codes.RET_CONFIG


def test_show_one_result_with_a_presigned_link_and_by_doc_id(cli, db):
    docs = _fill(db)
    doc = docs[0]
    r = cli(["results", "show", doc["_id"], "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["verdict"] == "anomaly" and shown["reasons"][0] == {
        "code": "quiet",
        "value": -62.0,
        "threshold": -50.0,
        "detail": "p95 frame energy dBFS",
    }
    assert shown["listen_url"].startswith("https://") and "X-Amz-Signature=" in shown["listen_url"]
    assert "audio" in shown["listen_url"] and "/2025-12-20/0.wav?" in shown["listen_url"]
    human = cli(["results", "show", doc["_id"]])
    assert "quiet" in human.stdout and "listen" in human.stdout

    put_result(db, dataclasses.replace(make_item(0), subject_id="sub-other"), screening())
    r = cli(["results", "show", doc["source"]["mongo_doc_id"], "--json"])
    assert len(json.loads(r.stdout)["results"]) == 2
    missing = cli(["results", "show", "nope"])
    assert missing.exit_code == exit_codes.RET_ERROR and "no result" in missing.stderr


def test_dedupe_flags_the_later_copy_order_independently(cli, db):
    a = put_result(db, make_item(1), screening(sha="same"))
    b = put_result(db, dataclasses.replace(make_item(2), student_id="STU-other"), screening(sha="same"))
    put_result(db, make_item(3), screening())
    dry = json.loads(cli(["results", "dedupe", TEST_DATE, "--dry-run", "--json"]).stdout)
    assert [c["result_ids"] for c in dry["clusters"]] == [[a["_id"], b["_id"]]] and dry["newly_flagged"] == []
    assert dry["would_flag"] == [b["_id"]] and dry["clusters"][0]["students"] == ["STU-1", "STU-other"]
    assert db["anomaly_detection_results"].find_one({"_id": b["_id"]})["inference"]["duplicate_of"] == []
    done = json.loads(cli(["results", "dedupe", TEST_DATE, "--json"]).stdout)
    assert done["newly_flagged"] == [b["_id"]]
    assert db["anomaly_detection_results"].find_one({"_id": b["_id"]})["inference"]["duplicate_of"] == [a["_id"]]
    s = json.loads(cli(["results", "inspect", TEST_DATE, "--json"]).stdout)
    assert (s["duplicates_flagged"], s["duplicate_clusters"]) == (1, 1)
    again = json.loads(cli(["results", "dedupe", TEST_DATE, "--dry-run", "--json"]).stdout)
    assert again["would_flag"] == [] and len(again["links"]) == 1  # already flagged: nothing new to flag
    human = cli(["results", "dedupe", TEST_DATE, "--dry-run"]).stdout
    assert re.search(r"would flag\s*│\s*0\s*│", human), human


def test_inspect_and_dedupe_count_one_cluster_of_three_the_same_way(cli, db):
    """A <- B, A <- C, B <- C is one cluster of three recordings (two copies), everywhere."""
    docs = [
        put_result(db, dataclasses.replace(make_item(i), student_id=f"S{i}", udise=f"U{i % 2}"), screening(sha="one"))
        for i in range(3)
    ]
    put_result(db, make_item(9), screening(sha="alone"))
    done = json.loads(cli(["results", "dedupe", TEST_DATE, "--json"]).stdout)
    assert len(done["links"]) == 3 and len(done["clusters"]) == 1 and len(done["newly_flagged"]) == 2
    c = done["clusters"][0]
    assert c["result_ids"] == sorted(c["result_ids"], key=lambda i: [d["_id"] for d in docs].index(i))
    assert (c["copies"], c["students"], c["schools"]) == (2, ["S0", "S1", "S2"], ["U0", "U1"])
    s = json.loads(cli(["results", "inspect", TEST_DATE, "--json"]).stdout)
    assert (s["duplicate_clusters"], s["duplicates_flagged"]) == (1, 2)
    assert s["duplicates"] == {"clusters": 1, "recordings": 3, "copies": 2}
    assert "1 cluster(s) of 3 results, 2 flagged as copies" in cli(["results", "inspect", TEST_DATE]).stdout


def test_show_failed_result_and_a_recording_that_cannot_be_linked(cli, db):
    failed = put_result(db, make_item(7), screening(failed="not_found"))
    odd = put_result(db, make_item(8, url="gs://elsewhere/x.wav"), screening())
    r = json.loads(cli(["results", "show", failed["_id"], "--json"]).stdout)
    assert r["verdict"] == "failed" and r["processing"]["error"]["code"] == "not_found"
    r = json.loads(cli(["results", "show", odd["_id"], "--json"]).stdout)
    assert r["listen_url"] is None and r["listen_unavailable"].startswith(("invalid_url", "url_not_allowed"))
    human = cli(["results", "show", failed["_id"]])
    assert human.exit_code == 0 and "not_found" in human.stdout


def test_failed_results_are_failures_not_also_anomalies(cli, db):
    from anomaly_cli.screening import Screening

    bad = Screening.failed(
        code="not_audio", message="an HTML page", stage="decode", reason="corrupt", model_version="v1"
    )
    put_result(db, make_item(1), bad)
    put_result(db, make_item(2), screening(reasons=("silent",)))
    s = json.loads(cli(["results", "inspect", TEST_DATE, "--json"]).stdout)
    assert (s["anomalies"], s["failed"]) == (1, 1)
    assert sum(v["anomalies"] for v in s["by_record_type"].values()) == s["anomalies"]


def test_inspect_lists_result_rows_that_show_accepts(cli, db):
    # issue 14, problem 7: inspect lists ids (as a prefix show takes), reason, school, status
    _fill(db)
    s = json.loads(cli(["results", "inspect", TEST_DATE, "--limit", "3", "--json"]).stdout)
    assert len(s["rows"]) == 3 and all(len(row["_id"]) == 64 for row in s["rows"])
    human = cli(["results", "inspect", TEST_DATE, "--limit", "25"]).stdout
    assert "latest" not in human and "all 20" in human  # every result of the date listed
    short_ids = re.findall(r"^│ ([0-9a-f]{12}) │", human, re.M)
    assert len(short_ids) == 20
    assert "not_found" in human and " A " in human and "failed" in human
    shown = json.loads(cli(["results", "show", short_ids[0], "--json"]).stdout)
    assert shown["_id"].startswith(short_ids[0])


def test_show_renders_a_failed_fetch_as_a_failure(cli, db):
    failed = put_result(db, make_item(7, url="s3://nipun-audio/missing.wav"), screening(failed="not_found"))
    human = cli(["results", "show", failed["_id"]])
    assert human.exit_code == 0
    out = human.stdout
    assert "failed at fetch: not_found" in out
    for made_up in ("None Hz", "xNone", "None bytes", "/ None", "None /"):
        assert made_up not in out, made_up
    assert "X-Amz-Signature" not in out and "https://" not in out  # no link to an object that does not exist
    assert "could not be fetched" in out
    shown = json.loads(cli(["results", "show", failed["_id"], "--json"]).stdout)
    assert shown["listen_url"] is None
