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
    r = cli(["demo", "--students", "24", "--seed", "3", "--json"], env={"MODEL_DIR": str(REPO / "models")})
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
