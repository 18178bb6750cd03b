"""The report's figures against the hand-computed fixture (tests/report/conftest.py)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from pathlib import Path

import pytest

from anomaly_cli.cli import exit_codes
from anomaly_cli.ops.places import parse_udise
from anomaly_cli.ops.report import Counts, build_report
from tests.report.conftest import BAD, A, B, C

MODELS = ""  # MODEL_DIR empty: the model shipped in the package


def _report(embedded_mongo_uri, db, model_dir=MODELS, **kw):
    from anomaly_cli.config import load_settings

    s = load_settings({"mongo_uri": embedded_mongo_uri, "model_dir": model_dir}, environ={}, env_file=None)
    return build_report(s, db, "2025-12-20", **kw)


def test_totals_reasons_and_previous_date(embedded_mongo_uri, db, filled):
    r = _report(embedded_mongo_uri, db, with_coverage=False)
    assert r.overall == Counts(total=30, ok=28, failed=2, anomalies=8)
    assert {x.code: x.count for x in r.reasons} == {
        "noisy": 4,
        "no_speech": 2,
        "clipped": 1,
        "silent": 1,
        "duplicate": 1,
    }
    noisy = next(x for x in r.reasons if x.code == "noisy")
    assert noisy.rate == pytest.approx(4 / 28)
    assert (noisy.previous_count, noisy.previous_rate) == (1, pytest.approx(1 / 5))
    assert r.reasons[0].code == "noisy"  # most frequent first
    assert r.previous is not None and r.previous.test_date == "2025-11-20"
    assert r.previous.counts == Counts(5, 5, 0, 1)
    assert r.dates == ("2025-11-20", "2025-12-20")  # 2025-12-21 is outside the range
    assert "level_p95_dbfs < -60" in next(x for x in r.reasons if x.code == "silent").threshold
    assert r.threshold_source.startswith("model v")
    assert {(f.code, f.count) for f in r.failures} == {("not_found", 1), ("undecodable", 1)}
    assert all(f.action and "runbook" not in f.action.lower() for f in r.failures)
    bare = _report(embedded_mongo_uri, db, model_dir="no-such-dir", with_coverage=False)
    assert bare.threshold_source == "no model metadata found under MODEL_DIR" and bare.reasons[0].threshold == ""


def test_places_with_counts_and_the_minimum_count_rule(embedded_mongo_uri, db, filled):
    r = _report(embedded_mongo_uri, db, with_coverage=False, min_count=10)
    d = {x.key: x for x in r.districts}
    assert d["2725"].counts == Counts(total=23, ok=22, failed=1, anomalies=6) and d["2725"].ranked
    assert d["2726"].counts == Counts(3, 3, 0, 2) and not d["2726"].ranked  # 66 % of 3 is not ranked
    assert d["?"].counts == Counts(4, 3, 1, 0) and not d["?"].ranked
    assert r.districts[0].key == "2725"  # ranked ones first
    assert {x.key: x.counts.ok for x in r.blocks} == {"272512": 22, "272614": 3, "?": 3}
    ranked = [x.key for x in r.schools if x.ranked]
    assert ranked == [A, B]
    assert r.schools[0].counts == Counts(13, 12, 1, 4)
    assert r.unparsed_results == 4
    low = _report(embedded_mongo_uri, db, with_coverage=False, min_count=3)
    assert [x.key for x in low.schools if x.ranked] == [C, A, B]  # 2/3 first once 3 is enough
    assert BAD not in [x.key for x in low.schools if x.ranked]  # an unparsed code is never ranked


def test_duplicate_cluster_names_students_schools_and_ids(embedded_mongo_uri, db, filled):
    from anomaly_cli.results.clusters import load_clusters

    r = _report(embedded_mongo_uri, db, with_coverage=False)
    assert len(r.clusters) == 1 and r.reuse == ()
    c = r.clusters[0]
    assert c.result_ids == (filled["A5"]["_id"], filled["B1"]["_id"])  # original first
    assert c.schools == (A, B)
    assert c.students == tuple(sorted([filled["A5"]["source"]["student_id"], filled["B1"]["source"]["student_id"]]))
    assert r.clusters == tuple(load_clusters(db["anomaly_detection_results"], "2025-12-20"))  # one definition


def test_udise_layout_and_fallback():
    p = parse_udise("27251200104")
    assert (p.state, p.district, p.block, p.parsed) == ("27", "2725", "272512", True)
    assert (p.district_label, p.block_label) == ("27-25", "27-25-12")
    assert parse_udise("2725-1200-104").school == "27251200104"
    for bad in ("12345", "2725120010A", "00251200104", 27251200104.5):
        q = parse_udise(bad)
        assert not q.parsed and q.school == str(bad) and q.district == "?"
    assert parse_udise(None).school == "(none)" and parse_udise("  ").school == "(none)"


def _csv_of(page: str, name: str) -> list[dict[str, str]]:
    m = re.search(rf'download="[^"]*{re.escape(name)}" href="data:text/csv;charset=utf-8;base64,([^"]+)"', page)
    assert m, f"no CSV link for {name}"
    text = base64.b64decode(m.group(1)).decode("utf-8").lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_cli_writes_one_page_in_both_languages_with_csv_for_every_table(cli, db, filled, tmp_path):
    out = tmp_path / "r.html"
    res = cli(["results", "report", "2025-12-20", "--out", str(out), "--json"], env={"MODEL_DIR": MODELS})
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["path"] == str(out) and info["results"] == 30 and info["anomalies"] == 8
    page = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "Language: English" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing to fetch
    schools = {row["school"]: row for row in _csv_of(page, "schools.csv")}
    assert schools[A]["anomalies"] == "4" and schools[A]["screened_ok"] == "12" and schools[C]["ranked"] == "False"
    assert {r["error_code"]: r["count"] for r in _csv_of(page, "failures.csv")} == {
        "not_found": "1",
        "undecodable": "1",
    }
    assert len(_csv_of(page, "duplicates.csv")) == 1 and _csv_of(page, "reasons.csv")[0]["reason_code"] == "noisy"
    tables = page.count("<table>")
    assert page.count('class="csv"') == tables  # every table can be downloaded
    assert page.count('role="img"') >= 5 and page.count("<title id=") == page.count('role="img"')

    mr = cli(["results", "report", "2025-12-20", "--lang", "mr"])
    assert mr.exit_code == 0, mr.output
    path = mr.stdout.strip()
    assert path == "report-2025-12-20-mr.html"
    mpage = Path(path).read_text(encoding="utf-8")
    assert '<html lang="mr">' in mpage and "भाषा: मराठी" in mpage and "गोंगाटात बोलणे हरवले" in mpage


def test_cli_refuses_bad_language_and_range(cli, db):
    # a value the command line cannot take is a usage error, as in every command (issue 14, problem 5)
    assert cli(["results", "report", "2025-12-20", "--lang", "fr"]).exit_code == exit_codes.RET_USAGE
    assert cli(["results", "report", "2025-02-30"]).exit_code == exit_codes.RET_USAGE
    # two valid dates that make no range: the report's own check, a configuration error naming --to
    assert cli(["results", "report", "2025-12-20", "--to", "2025-12-01"]).exit_code == exit_codes.RET_CONFIG


def test_every_text_has_both_languages_and_every_reason_has_words():
    from anomaly_cli.report.i18n import REASONS, TEXT
    from anomaly_cli.screening import REASON_CODES

    for key, entry in {**TEXT, **REASONS}.items():
        assert entry.get("en") and entry.get("mr"), key
        assert set(re.findall(r"{\w+}", entry["en"])) == set(re.findall(r"{\w+}", entry["mr"])), key
    assert set(REASON_CODES) <= set(REASONS)


def test_runbook_has_a_line_for_every_terminal_error_code():
    from anomaly_cli import errors
    from anomaly_cli.ops.runbook import RUNBOOK

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    codes = {c.code for base in (errors.FetchError, errors.DecodeError) for c in (base, *subclasses(base))}
    codes |= {"empty", "not_audio", "truncated", "unsupported_rate", "nonfinite_samples", "duration_over_cap"}
    assert codes - set(RUNBOOK) == set()
