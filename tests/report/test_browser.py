"""The page in a real headless Chromium (Debian's ``chromium``) with the network off: charts drawn,
no console errors, a screenshot taken.

Network off twice over: the page's own Content-Security-Policy forbids every request, and Chromium
runs with a dead proxy and a host resolver that resolves nothing. Console messages (a refused load,
a script error) reach stderr through ``--enable-logging=stderr``; the control test proves that a
page that *does* try to fetch something is caught. Skipped with a reason only when no chromium
binary exists (``make browser`` installs it; CI runs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.conftest import fill
from tests.report.test_figures import MODELS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH: `make browser` installs Debian's chromium + Marathi font"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=3000",
)


def chromium(page: Path, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``page`` with the network off (its own profile under ``tmp``)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_problems(stderr: str) -> list[str]:
    """Console messages and refused loads that Chromium logged (its DBus chatter is not one)."""
    return [
        line
        for line in stderr.splitlines()
        if ("CONSOLE" in line or "Refused to" in line or "Uncaught" in line or "net::ERR" in line)
    ]


def render_page(embedded_mongo_uri: str, db, path: Path, lang: str) -> Path:
    from anomaly_cli.config import load_settings
    from anomaly_cli.ops.report import build_report
    from anomaly_cli.report.page import write

    s = load_settings({"mongo_uri": embedded_mongo_uri, "model_dir": MODELS}, environ={}, env_file=None)
    write(build_report(s, db, "2025-12-20"), path, lang)
    return path


@pytest.mark.parametrize("lang", ["en", "mr"])
def test_page_renders_its_charts_offline(embedded_mongo_uri, tmp_path, lang):
    from anomaly_cli.adapters.mongo import connect

    db = connect(embedded_mongo_uri)["nipun"]
    fill(db)
    page = render_page(embedded_mongo_uri, db, tmp_path / f"report-{lang}.html", lang)

    dom = chromium(page, "--dump-dom", tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_problems(dom.stderr) == [], console_problems(dom.stderr)
    html = dom.stdout
    assert f'<html lang="{lang}">' in html
    svgs = re.findall(r'<svg[^>]*role="img"[^>]*>.*?</svg>', html, flags=re.DOTALL)
    # coverage, reasons, schools, failures, over time (one ranked district or block: a table, no chart)
    assert len(svgs) == 5, len(svgs)
    for svg in svgs:
        assert "<title" in svg and "<desc" in svg
        assert len(re.findall(r"<path", svg)) >= 3 and "<text" in svg  # drawn marks and labels
    assert html.count("<figcaption>") == 5

    shot = tmp_path / f"report-{lang}.png"
    res = chromium(page, f"--screenshot={shot}", "--window-size=1100,2400", tmp=tmp_path)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert console_problems(res.stderr) == []
    from PIL import Image

    with Image.open(shot) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000) or []
    assert len(colours) > 50  # a page with text and charts, not a blank or error page


def test_a_page_that_fetches_something_is_caught(tmp_path):
    """Control: the same check flags a page that tries the network (so a pass means something)."""
    page = tmp_path / "bad.html"
    csp = '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'">'
    page.write_text(
        f'<!DOCTYPE html><html><head>{csp}</head><body><img src="http://example.invalid/x.png"></body></html>',
        encoding="utf-8",
    )
    res = chromium(page, "--dump-dom", tmp=tmp_path)
    assert console_problems(res.stderr), res.stderr[-2000:]
