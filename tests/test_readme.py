"""README.md is what docs/build_readme.py writes (config and exit-code tables come from code)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "build_readme.py"), "--check"], cwd=ROOT)
    assert result.returncode == 0, "README.md is stale: run `.venv/bin/python docs/build_readme.py`"


def test_readme_names_make_test_and_every_variable():
    from anomaly_cli.config import setting_fields

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in text and "make demo" in text
    for f in setting_fields():
        assert f"`{f.metadata['env']}`" in text
