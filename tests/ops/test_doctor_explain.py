"""`doctor --explain`: how MongoDB plans discovery's first $match (issue 18).

No real MongoDB runs here (FACTS.md), and the embedded double has no planner, so the planner's
answers are the shapes MongoDB documents for ``explain`` (classic engine and slot-based engine,
aggregation and folded-into-find forms), handed in by a database that records the command sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from anomaly_cli.ops.doctor import OK, WARN, check_discovery_plan, plan_stages

IXSCAN_AGG = {  # classic engine, aggregation with a $cursor stage
    "explainVersion": "1",
    "stages": [
        {
            "$cursor": {
                "queryPlanner": {
                    "winningPlan": {
                        "stage": "FETCH",
                        "inputStage": {
                            "stage": "OR",
                            "inputStages": [
                                {"stage": "IXSCAN", "indexName": "assessments.test_date_1"},
                                {"stage": "IXSCAN", "indexName": "assessments.test_date_1"},
                            ],
                        },
                    },
                    "rejectedPlans": [{"stage": "COLLSCAN"}],
                }
            }
        }
    ],
}
COLLSCAN_FIND = {"explainVersion": "1", "queryPlanner": {"winningPlan": {"stage": "COLLSCAN", "direction": "forward"}}}
SBE_IXSCAN = {
    "explainVersion": "2",
    "queryPlanner": {
        "winningPlan": {
            "queryPlan": {"stage": "FETCH", "inputStage": {"stage": "IXSCAN", "indexName": "subject_name_1"}},
            "slotBasedPlan": {"stages": "[1] cfilter ... COLLSCAN-looking text is not a stage"},
        }
    },
}


class Explaining:
    """A database whose ``command`` answers ``explain`` with a recorded plan (and records the call)."""

    def __init__(self, answer: Any):
        self.answer, self.calls = answer, []

    def command(self, name: str, cmd: Any, **kw: Any) -> Any:
        self.calls.append((name, cmd, kw))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_plan_stages_walk_every_known_shape_and_ignore_rejected_plans():
    assert ("IXSCAN", "assessments.test_date_1") in plan_stages(IXSCAN_AGG)
    assert "COLLSCAN" not in {s for s, _ in plan_stages(IXSCAN_AGG)}  # only in rejectedPlans
    assert plan_stages(COLLSCAN_FIND) == [("COLLSCAN", None)]
    assert ("IXSCAN", "subject_name_1") in plan_stages(SBE_IXSCAN)


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        (IXSCAN_AGG, OK, "served by index(es) assessments.test_date_1"),
        (SBE_IXSCAN, OK, "subject_name_1"),
        (COLLSCAN_FIND, WARN, "collection scan"),
        (RuntimeError("no such command: explain"), WARN, "did not explain"),
    ],
)
def test_discovery_plan_check_reports_index_or_scan_with_the_fix(make_settings, answer, status, says):
    db = Explaining(answer)
    check = check_discovery_plan(make_settings(test_date="2025-12-20"), db)
    assert check.status == status and says in check.detail
    if status == WARN and "scan" in says:
        assert "createIndex" in check.fix and "subject_created_at" in check.fix
    # read-only: one explain at queryPlanner verbosity (plans, reads no document) of discovery's own $match
    ((name, cmd, kw),) = db.calls
    assert name == "explain" and kw == {"verbosity": "queryPlanner"}
    assert cmd["aggregate"] == "student_assessment_record" and list(cmd["pipeline"][0]) == ["$match"]


def test_doctor_explain_on_the_embedded_double_says_it_cannot_plan(cli, db, make_queue):
    db["student_assessment_record"].insert_one({"x": 1})
    result = cli(["doctor", "--explain", "--no-aws", "--no-model"])
    assert "discovery plan" in result.output and "no query planner" in result.output
