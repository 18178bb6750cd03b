"""What the image leaves out (deploy/image/slim.py, the Containerfile's EXTRAS) is what the code does
not use: checked against the code here, in ``make test``; the built image itself is
``make test-container``'s (tests/container).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def slim():
    spec = importlib.util.spec_from_file_location("slim", ROOT / "deploy" / "image" / "slim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_aws_service_the_package_calls_keeps_its_botocore_model():
    # every client the package makes names its service as a literal: make_client("s3", ...),
    # session.client("sqs", ...), self.client("s3")
    named = set()
    for path in (ROOT / "anomaly_cli").rglob("*.py"):
        named |= set(re.findall(r"""(?:make_client|\.client)\(\s*["']([a-z0-9-]+)["']""", path.read_text("utf-8")))
    assert {"s3", "sqs"} <= named  # the pattern still finds the clients
    kept = set(slim().BOTOCORE_SERVICES)
    assert named <= kept, f"botocore models dropped from the image but used: {sorted(named - kept)}"
    # an IAM role for service accounts / web identity / assume-role profiles: botocore's credential
    # providers make an STS client; SSO profiles an SSO and SSO-OIDC one
    assert {"sts", "sso", "sso-oidc"} <= kept


def test_the_trace_that_picks_bytecode_covers_the_screening_processes_preload():
    trace = slim().TRACE
    assert "CPU_PRELOAD" in trace and 'top.rglob("*.py")' in trace
    for service in ("s3", "sqs", "sts"):
        assert f'"{service}": lambda c:' in trace


def test_the_image_leaves_out_only_extras_that_exist_and_the_fleet_does_not_import():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    extras = project["optional-dependencies"]
    core = " ".join(project["dependencies"])
    assert "matplotlib" in " ".join(extras["report"]) and "scikit-learn" in " ".join(extras["train"])
    assert "matplotlib" not in core and "scikit-learn" not in core
    text = (ROOT / "Containerfile").read_text("utf-8")
    assert re.search(r'^ARG EXTRAS=""$', text, re.MULTILINE)
    assert "deploy/image/slim.py /opt/anomaly" in text
    # nothing the worker's screening processes preload comes from an extra
    from anomaly_cli.worker.child import CPU_PRELOAD

    assert not {m.split(".")[0] for m in CPU_PRELOAD} & {"matplotlib", "sklearn"}


def test_every_library_the_package_imports_is_declared_not_only_installed_by_another():
    """An install (the image) has what pyproject.toml declares: a library the code imports that only
    arrives as another one's dependency (threadpoolctl came with scikit-learn) goes missing when that
    one becomes an extra."""
    import sys
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    reqs = [*project["dependencies"], *(r for rs in project["optional-dependencies"].values() for r in rs)]
    declared = {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}
    #: import names that belong to a declared distribution's own distribution family
    part_of = {"botocore": "boto3", "bson": "pymongo"}
    dists = packages_distributions()
    imported = set()
    for path in (ROOT / "anomaly_cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m not in ("anomaly_cli", "__future__")}
    undeclared = set()
    for module in sorted(third_party):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & declared and part_of.get(module) not in declared:
            undeclared.add(module)
    assert not undeclared, f"imported but not declared in pyproject.toml: {sorted(undeclared)}"
