"""Without the ``demo`` extra, the commands that run on the embedded stack say what to install.

The extra is really absent in these runs: a child interpreter blocks the import of moto
(``sys.modules[name] = None`` makes Python's import system report it as not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_without(module: str, *args: str, tmp_path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import sys; sys.modules[{module!r}] = None; sys.argv = ['anomaly', *sys.argv[1:]]; "
        "from anomaly_cli.__main__ import main; main()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URI", "COLUMNS")} | {"COLUMNS": "200", **env_vars}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", [["demo"], ["sandbox", "--run", "state list"]])
def test_a_command_on_the_embedded_stack_names_the_extra_it_needs(command, tmp_path):
    # GIVEN an install without moto, WHEN the command runs
    r = run_without("moto", *command, tmp_path=tmp_path)
    # THEN it is a configuration error with the install line, not a traceback
    assert r.returncode == 3, r.stdout + r.stderr
    assert "moto[server] is not installed (the 'demo' extra)" in r.stderr
    assert "pip install 'anomaly-cli[demo]'" in r.stderr  # brackets survive the console's markup
    assert "Traceback" not in r.stderr


def test_the_embedded_mongo_uri_names_the_extra(tmp_path):
    r = run_without("mongomock_ng", "state", "list", tmp_path=tmp_path, MONGO_URI="mongomock://")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "MONGO_URI=mongomock:// needs the embedded Mongo double" in r.stderr
    assert "pip install 'anomaly-cli[demo]'" in r.stderr


@pytest.mark.parametrize(
    ("module", "command", "extra"),
    [
        ("matplotlib", ["results", "report", "2025-12-20"], "report"),
        ("sklearn", ["model", "train", "--out", "m/v9", "--synthetic", "5"], "train"),
    ],
)
def test_a_command_that_draws_or_fits_names_its_extra(module, command, extra, tmp_path):
    # GIVEN an install without the library (the container image's default: Containerfile, EXTRAS)
    r = run_without(
        module, *command, tmp_path=tmp_path, MONGO_URI="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100"
    )
    # THEN a configuration error naming the extra and how to get it, before anything is read
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"(the '{extra}' extra)" in r.stderr
    assert f"pip install 'anomaly-cli[{extra}]'" in r.stderr and f"--build-arg EXTRAS={extra}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "m").exists()
