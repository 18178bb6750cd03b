"""The demo end to end with a small N: moto server + Mongo double, real discover and work."""

from __future__ import annotations

import json
import os
from pathlib import Path

from anomaly_cli.ops.demo import ANOMALY_KINDS, DUPLICATE, plan_kinds

REPO = Path(__file__).resolve().parents[2]


def test_plan_has_every_kind():
    import numpy as np

    kinds = plan_kinds(40, np.random.default_rng(0))
    assert set(kinds) == {"normal", DUPLICATE, *ANOMALY_KINDS} and len(kinds) == 40


def test_demo_end_to_end_small(cli):
    def infra_env():
        return {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MONGO_", "SQS_"))}

    before = infra_env()
    r = cli(
        ["demo", "--students", "24", "--seed", "3", "--json"], env={"MODEL_DIR": str(REPO / "anomaly_cli" / "models")}
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    kinds = d["per_kind"]
    assert set(kinds) == {"normal", DUPLICATE, *ANOMALY_KINDS}
    # every planted recording was discovered, enqueued and screened exactly once
    assert d["discovery"]["enqueued"] == d["recordings"] == d["inspect"]["total"]
    assert all(row["screened"] == row["planted"] for row in kinds.values())
    assert d["worker"]["transient"] == 0
    # clear-cut kinds are always found, with the planted reason
    for kind in ("silent", "corrupt", "too_short", "too_long", DUPLICATE):
        assert kinds[kind]["recall_right_reason"] == 1.0, (kind, kinds[kind])
    assert d["inspect"]["by_reason"].get("duplicate", 0) >= kinds[DUPLICATE]["planted"]
    assert infra_env() == before  # the demo's endpoints and credentials never leak into the process env


def test_human_report_renders_every_part(capsys):
    from anomaly_cli.cli.commands.demo import _render
    from anomaly_cli.ops.demo import DemoReport
    from anomaly_cli.ops.results import InspectReport

    inspect = InspectReport(
        "2025-12-20",
        {},
        total=12,
        ok=11,
        failed=1,
        anomalies=3,
        by_reason={"silent": 2, "duplicate": 1},
        by_record_type={"teacher": {"total": 12, "anomalies": 3, "failed": 1}},
        failures_by_code={"not_audio": 1},
    )
    report = DemoReport(
        students=9,
        seed=1,
        recordings=12,
        model_version="v1",
        model_trained_here=True,
        discovery={"enqueued": 12, "pages": 1, "skipped_invalid": {"empty_audio_url": 1}},
        worker={"succeeded": 11, "failed_terminal": 1, "items_per_s": 3.0},
        inspect=inspect,
        per_kind={
            "normal": {"planted": 8, "flagged": 1, "recall": None, "recall_right_reason": None},
            "silent": {"planted": 2, "flagged": 2, "recall": 1.0, "recall_right_reason": 1.0},
            DUPLICATE: {"planted": 2, "flagged": 1, "recall": 0.5, "recall_right_reason": 0.5},
        },
        false_alarms=1,
        normals=8,
        timings_s={"total": 3.2},
    )
    _render(report)
    text = capsys.readouterr().out
    assert "trained just now" in text and "planted vs found" in text and "50%" in text
    assert "false alarms: 1 of 8 normal readings (12.5%)" in text and "not_audio" in text
    assert json.dumps(report.to_dict())  # the --json form serialises
