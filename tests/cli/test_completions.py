"""Completion scripts: committed ones are current, and the bash one really completes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from anomaly_cli.cli import completions

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "completions"


def test_committed_completions_are_not_stale():
    assert completions.stale(COMMITTED) == [], "completions/ is stale: run `make completions` and commit the result"


def test_a_stale_script_is_detected(tmp_path):
    for p in COMMITTED.iterdir():
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "anomaly.fish").write_text((tmp_path / "anomaly.fish").read_text().replace("replay-dlq", "replay"))
    assert completions.stale(tmp_path) == ["anomaly.fish"]
    assert completions.main(["--check", str(tmp_path)]) == 1
    assert completions.main(["--write", str(tmp_path)]) == 0 and completions.main(["--check", str(tmp_path)]) == 0


@pytest.mark.parametrize(
    "words, expected",
    [
        (["anomaly", "res"], {"rescreen", "results"}),
        (["anomaly", "results", ""], {"dedupe", "inspect", "report", "show", "--help"}),
        (["anomaly", "results", "inspect", "2025-12-20", "--an"], {"--anomalies-only"}),
        (["anomaly", "--log-level", "INFO", "replay-dlq", "--dr"], {"--dry-run"}),
        # choice values, not file names (issue 14, problem 6)
        (["anomaly", "discover", "--mode", ""], {"backfill", "incremental", "sweep"}),
        (["anomaly", "--log-level", ""], {"DEBUG", "INFO", "WARNING", "ERROR"}),
        (["anomaly", "discover", "--mode", "in"], {"incremental"}),
        (["anomaly", "model", "evaluate", "--source", ""], {"formant", "espeak", "alsa"}),
        (["anomaly", "rescreen", "2025-12-20", "--status", ""], {"ok", "failed"}),
        (["anomaly", "results", "report", "2025-12-20", "--lang", ""], {"en", "mr"}),
        # the same flag name takes a file in another command: files there, not those values
        (["anomaly", "sandbox", "--source", "/et"], {"/etc"}),
    ],
)
def test_bash_script_completes(words, expected):
    script = (
        f"source {COMMITTED / 'anomaly.bash'}; COMP_WORDS=({' '.join(repr(w) for w in words)}); "
        f"COMP_CWORD={len(words) - 1}; _anomaly; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, cwd="/")
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) == expected


def test_zsh_and_fish_name_every_command():
    nodes = completions.tree()
    text = completions.render_all()
    for n in nodes:
        for name, _ in n.commands:
            assert f"'{name}:" in text["anomaly.zsh"]
            assert f"-a {name} " in text["anomaly.fish"]
    assert "-l dry-run" in text["anomaly.fish"]


def test_dynamic_completion_is_offered_too():
    from typer.testing import CliRunner

    from anomaly_cli.cli.app import app

    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--install-completion" in r.stdout and "--show-completion" in r.stdout
