"""docs/deployment: the Grafana dashboard and the alert rules are valid and read only metrics the
worker serves; the IAM policies name only actions AWS has (botocore's service models)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment"
#: PromQL words that look like metric names but are functions, keywords or label names
_NOT_METRICS = {"on", "by", "and", "or", "le", "vector", "absent"}


def served_names() -> set[str]:
    """Every sample name a worker's /metrics can carry (no SQS call: the queue collector's name
    comes from its description)."""
    from anomaly_cli.worker.metrics import QueueDepth, WorkerMetrics

    m = WorkerMetrics(model_version="v1")
    m.outcomes_total.labels("succeeded", "")
    names = {s.name for family in m.registry.collect() for s in family.samples}
    return names | {QueueDepth.NAME}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {w for w in words if w.startswith(("anomaly_", "process_"))} - _NOT_METRICS


def dashboard_exprs() -> list[str]:
    dash = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((DOCS / "alert-rules.yaml").read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def test_dashboard_is_grafana_json_with_unique_panels_on_the_grid():
    dash = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        assert p["targets"] and all(t["expr"].strip() and t["refId"] for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
    assert {v["name"] for v in dash["templating"]["list"]} >= {"datasource"}


def test_dashboard_and_alerts_read_only_metrics_the_worker_serves():
    served = served_names()
    exprs = dashboard_exprs() + [r["expr"] for r in alert_rules()]
    used = set().union(*(metric_names(e) for e in exprs))
    assert used - served == set(), f"not served by the worker: {sorted(used - served)}"
    # the dashboard covers every family the issue asks for
    for needed in (
        "anomaly_worker_outcomes_total",
        "anomaly_worker_stage_seconds_bucket",
        "anomaly_worker_fetched_bytes_total",
        "anomaly_worker_in_flight_messages",
        "anomaly_worker_held_messages",
        "anomaly_worker_screening_process_restarts_total",
        "anomaly_worker_access_denied_breaker_open",
        "anomaly_worker_model_info",
        "anomaly_worker_items_per_second",
        "anomaly_queue_messages",
    ):
        assert any(needed in metric_names(e) for e in dashboard_exprs()), needed


def test_the_name_check_catches_a_misspelled_metric():
    assert metric_names('sum(rate(anomaly_worker_outcome_total{kind="x"}[5m]))') - served_names()


def test_the_three_alerts_are_there_with_what_an_on_call_engineer_needs():
    rules = {r["alert"]: r for r in alert_rules()}
    assert {"AnomalyDLQNotEmpty", "AnomalyThroughputZeroWithMessagesVisible", "AnomalyAccessDeniedBreakerOpen"} <= set(
        rules
    )
    for r in rules.values():
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"] and r["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", r["for"])
    assert 'queue="dlq"' in rules["AnomalyDLQNotEmpty"]["expr"]
    stalled = rules["AnomalyThroughputZeroWithMessagesVisible"]["expr"]
    assert 'queue="work", state="visible"' in stalled and "anomaly_worker_outcomes_total" in stalled
    assert "anomaly_worker_access_denied_breaker_open" in rules["AnomalyAccessDeniedBreakerOpen"]["expr"]


@pytest.mark.parametrize("path", sorted((DOCS / "iam").glob("*.json")), ids=lambda p: p.name)
def test_iam_policies_name_real_actions(path):
    import botocore.session

    session = botocore.session.get_session()
    prefixes = {"sqs": "sqs", "s3": "s3", "kms": "kms", "sts": "sts"}
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["Version"] == "2012-10-17"
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        for action in actions:
            service, op = action.split(":")
            model = session.get_service_model(prefixes[service])
            # s3:GetObject and the like are operations; IAM-only names are not used here
            assert op in model.operation_names, action
        assert "*" not in json.dumps(st.get("Action")), "no wildcard actions"


def test_worker_policy_covers_what_the_worker_calls():
    doc = json.loads((DOCS / "iam" / "worker-policy.json").read_text(encoding="utf-8"))
    granted = {a for st in doc["Statement"] for a in st["Action"]}
    assert {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "s3:GetObject",
    } <= granted
    assert not {a for a in granted if a.startswith("s3:List")}  # workers never list the bucket
