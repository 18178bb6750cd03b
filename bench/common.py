"""Shared helpers for the benchmarks: machine description and writing a section."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

SECTIONS = Path(__file__).resolve().parent / "sections"


def machine() -> str:
    """One line naming the machine a figure was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}, {platform.system()}"


def write_section(name: str, markdown: str) -> Path:
    """Print a benchmark's markdown section and save it as bench/sections/<name>.md."""
    SECTIONS.mkdir(exist_ok=True)
    path = SECTIONS / f"{name}.md"
    path.write_text(markdown.strip() + "\n", encoding="utf-8")
    sys.stdout.write(markdown.strip() + "\n")
    return path
