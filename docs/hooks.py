"""mkdocs hook: fill the generated parts of each page (see docs/generate.py) when the site is built."""

from __future__ import annotations

import importlib.util
import posixpath
from pathlib import Path
from typing import Any

_spec = importlib.util.spec_from_file_location("anomaly_docs_generate", Path(__file__).with_name("generate.py"))
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


def on_page_markdown(markdown: str, *, page: Any, config: Any, files: Any) -> str:
    page_dir = posixpath.dirname(page.file.src_uri)
    return generate.relink(generate.fill(markdown, site=True), page_dir)
