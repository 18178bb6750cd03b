"""deploy/: every manifest is valid for the cluster it targets, and says what the code does.

- Kubernetes kinds: kubernetes-validate's bundled (strict) schemas, for the oldest and newest
  Kubernetes versions this targets (unknown fields fail: a misspelled field is silently dropped
  by the API server otherwise).
- KEDA kinds: the ScaledObject / TriggerAuthentication CRDs vendored from KEDA (tests/deploy/keda,
  source named there), made strict the same way, and the ``aws-sqs-queue`` trigger's metadata
  keys against the keys KEDA's scaler reads.
- ECS: the task definition against botocore's own ``RegisterTaskDefinition`` input shape.
- Against the code: every ``anomaly work`` flag in the manifests is a real flag, every
  environment name a real setting (or a name the runtime reads), the grace period covers the
  drain plus the longest item, and the ECS task carries the Deployment's settings.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
ECS = ROOT / "deploy" / "ecs"
KEDA = Path(__file__).resolve().parent / "keda"
#: Kubernetes versions validated: EKS's oldest in standard support as of writing, and the newest
#: schemas kubernetes-validate bundles.
K8S_VERSIONS = ("1.31.0", "1.37.0")
#: Environment names read by something other than anomaly's settings.
RUNTIME_ENV = {"MALLOC_ARENA_MAX", "AWS_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"}


def manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                out.append((path.name, doc))
    return out


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in manifests() if d["kind"] == kind]


def one(kind: str) -> dict[str, Any]:
    (doc,) = by_kind(kind)
    return doc


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 CRD schema in which objects accept only their declared properties
    (the API server prunes unknown fields without a word; here they fail)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("type") == "object"
                and "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


def crd_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((KEDA / name).read_text(encoding="utf-8"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    # metadata is ObjectMeta, validated by the API server, not by the CRD
    schema["properties"]["metadata"] = {"type": "object"}
    return schema


# --- structure ------------------------------------------------------------------------------------
def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kust["resources"]) == sorted(files)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_kinds_validate_against_the_strict_schemas(version):
    import kubernetes_validate

    checked = 0
    for name, doc in manifests():
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name} {doc['kind']}: {e.message} at {'.'.join(map(str, e.path))}")
        checked += 1
    kinds = {d["kind"] for _, d in manifests()}
    assert {"Deployment", "PodDisruptionBudget", "ServiceAccount", "CronJob", "ConfigMap"} <= kinds
    assert checked >= 6


def test_the_strict_validation_catches_a_misspelled_field():
    """The check above can fail for the reason it names."""
    import kubernetes_validate

    bad = copy.deepcopy(one("Deployment"))
    bad["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 120
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)
    so = copy.deepcopy(one("ScaledObject"))
    so["spec"]["maxReplicas"] = 3
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so, crd_schema("keda.sh_scaledobjects.yaml"))


def test_keda_objects_validate_against_keda_crds():
    import jsonschema

    jsonschema.validate(one("ScaledObject"), crd_schema("keda.sh_scaledobjects.yaml"))
    jsonschema.validate(one("TriggerAuthentication"), crd_schema("keda.sh_triggerauthentications.yaml"))


def test_the_sqs_trigger_uses_only_keys_the_scaler_reads_and_counts_in_flight_messages():
    spec = json.loads((KEDA / "aws_sqs_queue_metadata.json").read_text(encoding="utf-8"))
    so = one("ScaledObject")
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    meta = trigger["metadata"]
    assert set(meta) <= set(spec["keys"]), set(meta) - set(spec["keys"])
    for key, kind in spec["keys"].items():
        if key in meta and kind == "int":
            int(meta[key])
        if key in meta and kind == "bool":
            assert meta[key] in ("true", "false"), key
    assert all(meta.get(k) for k in spec["required"])
    assert any(meta.get(k) for group in spec["required_one_of"] for k in group)
    # scaling down must not kill items being screened: in-flight messages count
    assert meta["scaleOnInFlight"] == "true"
    # wired to the objects in this folder
    assert so["spec"]["scaleTargetRef"]["name"] == one("Deployment")["metadata"]["name"]
    assert trigger["authenticationRef"]["name"] == one("TriggerAuthentication")["metadata"]["name"]
    worker = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert meta["queueURLFromEnv"] in _env(worker)


# --- against the code -----------------------------------------------------------------------------
def _env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: its env list plus the ConfigMaps it takes whole."""
    env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    maps = {d["metadata"]["name"]: d["data"] for d in by_kind("ConfigMap")}
    for src in container.get("envFrom", []):
        if "configMapRef" in src:
            env.update(maps[src["configMapRef"]["name"]])
    return env


def _setting_envs() -> set[str]:
    from anomaly_cli.config import setting_fields

    return {f.metadata["env"] for f in setting_fields()}


def _flags(command: str) -> set[str]:
    import typer.main

    from anomaly_cli.cli.app import app

    click_cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return {opt for p in click_cmd.params for opt in p.opts}


def _args_ok(args: list[str], command: str) -> None:
    flags = _flags(command)
    for a in args:
        if a.startswith("--"):
            assert a.split("=", 1)[0] in flags, f"{a} is not an option of anomaly {command}"


def test_manifest_flags_and_environment_names_exist_in_the_code():
    names = _setting_envs() | RUNTIME_ENV
    worker = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"][:2] == ["anomaly", "work"] and "command" not in worker  # tini stays PID 1
    _args_ok(worker["args"][2:], "work")
    cron = one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in cron
    anomaly_at = cron["args"].index("anomaly")
    assert cron["args"][anomaly_at + 1 : anomaly_at + 4] == ["discover", "--mode", "incremental"]
    _args_ok(cron["args"][anomaly_at + 2 :], "discover")
    for container in (worker, cron):
        unknown = set(_env(container)) - names
        assert not unknown, f"{container['name']}: {unknown} are not settings"
    # the secret carries MONGO_URI only (documented in configmap.yaml); it is no ConfigMap key
    assert "MONGO_URI" not in _env(worker)


def _arg(args: list[str], name: str, default: str) -> str:
    for a in args:
        if a.startswith(f"{name}="):
            return a.split("=", 1)[1]
    return default


def test_grace_period_covers_the_drain_and_the_longest_item():
    from anomaly_cli.config import load_settings

    s = load_settings(environ={}, env_file=None)
    pod = one("Deployment")["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    drain = float(_arg(worker["args"], "--drain-seconds", "30"))
    longest_item = s.fetch_deadline_seconds + 5  # download with retries + screening at the cap + write
    assert pod["terminationGracePeriodSeconds"] > drain + longest_item
    # the visibility timeout outlives a stop too: nothing held reappears while a worker drains it
    assert int(_env(worker)["SQS_VISIBILITY_TIMEOUT"]) > pod["terminationGracePeriodSeconds"]


def test_worker_pod_is_sized_and_probed_as_documented():
    pod = one("Deployment")["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    env = _env(worker)
    limits = worker["resources"]["limits"]
    # os.cpu_count() in a container is the node's: the processes must match the pod's cores
    assert int(env["CPU_WORKERS"]) == int(limits["cpu"]) == int(worker["resources"]["requests"]["cpu"])
    assert env["MALLOC_ARENA_MAX"] == "2"
    probe_files = {
        "readiness": worker["readinessProbe"]["exec"]["command"][-1],
        "liveness": worker["livenessProbe"]["exec"]["command"][-1],
    }
    assert probe_files["readiness"].endswith(_arg(worker["args"], "--ready-file", "?"))
    assert _arg(worker["args"], "--health-file", "?") in probe_files["liveness"]
    assert str(worker["ports"][0]["containerPort"]) == env["METRICS_PORT"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert any(m["mountPath"] == "/tmp" for m in worker["volumeMounts"])  # forkserver socket, probe files


def test_discovery_cron_forbids_overlap_and_stops_warm():
    cron = one("CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    c = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    # coreutils timeout: SIGTERM (discovery stops warm, exit 0) before the next schedule
    assert c["args"][:3] == ["timeout", "--preserve-status", "--signal=TERM"]
    assert int(c["args"][3]) < 15 * 60 < cron["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] + 60


# --- ECS ------------------------------------------------------------------------------------------
def _task() -> dict[str, Any]:
    return json.loads((ECS / "worker-task-definition.json").read_text(encoding="utf-8"))


def test_ecs_task_definition_validates_against_botocore_register_task_definition():
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(_task(), shape)
    assert not report.has_errors(), report.generate_report()
    broken = _task()
    broken["containerDefinitions"][0]["stopTimeOut"] = 120
    assert ParamValidator().validate(broken, shape).has_errors()


def test_ecs_task_has_the_deployment_settings():
    (c,) = _task()["containerDefinitions"]
    worker = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    ecs_env = {e["name"]: e["value"] for e in c["environment"]}
    k8s_env = _env(worker)
    assert ecs_env == k8s_env
    assert {s["name"] for s in c["secrets"]} == {"MONGO_URI"}
    assert c["command"] == worker["args"]
    assert c["stopTimeout"] >= 120 >= one("Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert c["cpu"] == 1024 * int(worker["resources"]["limits"]["cpu"])
    assert c["memory"] == 1024 and c["memoryReservation"] == 512  # the Deployment's 1Gi / 512Mi
    assert c["healthCheck"]["command"][1] == worker["livenessProbe"]["exec"]["command"][-1]
    assert c["readonlyRootFilesystem"] is True and not c["user"].startswith("0")


def test_containerfile_and_manifests_agree():
    """The manifests pass args (the image's CMD), never a command (which would replace tini as
    PID 1); the image's health check is the liveness probe's."""
    text = (ROOT / "Containerfile").read_text(encoding="utf-8")
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.MULTILINE).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))
    assert entry == ["/usr/bin/tini", "--"] and cmd[:2] == ["anomaly", "work"]
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE) and re.search(
        r"^USER 10001:10001$", text, re.MULTILINE
    )
    assert "MALLOC_ARENA_MAX=2" in text
    worker = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    health = _arg(worker["args"], "--health-file", "?")
    assert f"--health-file={health}" in cmd and f"find {health} -mmin -1" in text
