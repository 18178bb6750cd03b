"""README.md is what docs/generate.py writes, and the docs site builds strictly (no broken link).

The tables come from code: commands and flags from the Click tree, settings from
``anomaly_cli.config``, exit codes from ``anomaly_cli.cli.exit_codes``.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("anomaly_docs_generate", ROOT / "docs" / "generate.py")
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


def test_readme_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "generate.py"), "--check"], cwd=ROOT, check=False)
    assert result.returncode == 0, "README.md is stale: run `make readme`"


def test_readme_names_make_test_and_every_variable_and_command():
    from anomaly_cli.config import setting_fields

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in text and "make demo" in text
    for f in setting_fields():
        assert f"`{f.metadata['env']}`" in text
    for cmd in ("anomaly discover", "anomaly work", "anomaly results inspect", "anomaly state show"):
        assert f"`{cmd}`" in text


def test_readme_is_a_front_door_not_the_manual():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: put reference text in docs/ pages"


def test_flags_come_from_the_click_tree():
    # GIVEN the options whose help names a variable, WHEN the table is built, THEN they are its flags
    flags = generate.flags_by_variable()
    assert flags["MAX_CONCURRENCY"] == "`--concurrency` (work)"
    assert flags["LOG_LEVEL"] == "`--log-level`"
    assert "`--batch-size` (discover)" == flags["DISCOVERY_BATCH_SIZE"]
    assert "| `MAX_CONCURRENCY` | `--concurrency` (work) |" in generate.config_table()


def test_an_unknown_placeholder_is_an_error_not_a_blank():
    with pytest.raises(ValueError, match="CONFIG_TABEL"):
        generate.fill("a\n<!-- CONFIG_TABEL -->\n")


def test_links_are_rewritten_for_the_page_they_land_on():
    text = "[c](docs/contract.md) [w](docs/commands/work.md#options) [x](https://example.org/docs/a)"
    assert generate.relink(text, "") == "[c](contract.md) [w](commands/work.md#options) [x](https://example.org/docs/a)"
    assert generate.relink(text, "commands").startswith("[c](../contract.md) [w](work.md#options)")


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    out = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    page = (out / "configuration.html").read_text(encoding="utf-8")
    assert "MAX_CONCURRENCY" in page and "<!-- CONFIG_TABLE -->" not in page
