"""Everything in the docs that comes from code, and README.md.

README.md is written from ``docs/readme/NN-*.md`` (in name order) with the placeholders below
filled in; tests/test_readme.py fails when the committed README.md is not what this script writes.
The pages of the site (``docs/*.md``) carry the same placeholders and are filled at build time by
``docs/hooks.py`` (an mkdocs hook), so no generated table is committed under ``docs/``.

Placeholders (an HTML comment alone on its line):

- ``<!-- COMMANDS -->``: one row per command, from the Click tree (help's first line, its page);
- ``<!-- CONFIG_TABLE -->``: every setting of ``anomaly_cli.config.Settings``; the *flag* column
  comes from the Click tree too: an option is the flag of a variable when its help says
  ``(env NAME ...)``, e.g. ``--concurrency`` "Downloads in flight (env MAX_CONCURRENCY)";
- ``<!-- EXIT_CODES -->``: ``anomaly_cli.cli.exit_codes`` with each constant's ``#:`` comment;
- ``<!-- LOG_EVENTS -->``: every ``log.<level>("event", ...)`` call in ``anomaly_cli/`` (read with ``ast``);
- ``<!-- RETRY_TABLE -->`` / ``<!-- RETRY_TABLE_SHORT -->``: the retry policies of ``anomaly_cli.retry``
  (``retry.table()``), in full or compact (the README's);
- site only: ``<!-- README -->`` (the README's fragments, for the home page) and
  ``<!-- INCLUDE path -->`` (a file of the repository, e.g. BENCHMARKS.md, without its title).

Links: generated text and README fragments link to pages as ``docs/<page>.md`` (right from the
repository root, where README.md is); the hook rewrites them relative to the page they land on.

Run: ``make readme`` (``.venv/bin/python docs/generate.py``); ``--check`` exits 1 when README.md is stale.
"""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FRAGMENTS = DOCS / "readme"
sys.path.insert(0, str(ROOT))

from anomaly_cli import retry  # noqa: E402 - after the sys.path line: runs from a clone without an install
from anomaly_cli.cli import exit_codes  # noqa: E402 - after the sys.path line: runs from a clone without an install
from anomaly_cli.cli.completions import PROG, click_tree  # noqa: E402 - after the sys.path line: runs from a clone without an install
from anomaly_cli.config import setting_fields  # noqa: E402 - after the sys.path line: runs from a clone without an install

ENV_IN_HELP = re.compile(r"\benv ([A-Z][A-Z0-9_]+)")
PLACEHOLDER = re.compile(r"^<!-- ([A-Z_]+)(?: ([^ ]+))? -->$", re.MULTILINE)


def _first_line(text: str | None) -> str:
    """The first paragraph of a help text as one line (docstrings wrap their first sentence)."""
    para = (text or "").strip().split("\n\n", 1)[0]
    return " ".join(para.split()).replace("[bold]", "").replace("[/]", "")


def command_page(path: tuple[str, ...]) -> str | None:
    """``docs/commands/<top>.md`` when that page exists (a group's subcommands share one page)."""
    page = DOCS / "commands" / f"{path[0]}.md"
    return f"docs/commands/{path[0]}.md" if page.is_file() else None


def commands_table() -> str:
    """One row per runnable command (groups are listed through their subcommands)."""
    lines = ["| command | what it does |", "|---|---|"]
    for path, cmd, _ctx in click_tree():
        if not path or hasattr(cmd, "list_commands"):
            continue
        name = f"`{PROG} {' '.join(path)}`"
        page = command_page(path)
        what = _first_line(cmd.help).replace("|", "\\|")
        lines.append(f"| {f'[{name}]({page})' if page else name} | {what} |")
    return "\n".join(lines)


def flags_by_variable() -> dict[str, str]:
    """``ENV_NAME -> "`--flag` (cmd, cmd)"`` from the options whose help names the variable."""
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path, cmd, ctx in click_tree():
        for p in cmd.get_params(ctx):
            if getattr(p, "param_type_name", "") != "option" or getattr(p, "hidden", False):
                continue
            flag = next((o for o in p.opts if o.startswith("--")), None)
            for env in ENV_IN_HELP.findall(p.help or ""):
                if flag:
                    where[(env, flag)].append(" ".join(path))
    out: dict[str, list[str]] = defaultdict(list)
    for (env, flag), paths in sorted(where.items()):
        cmds = sorted(p for p in paths if p)
        out[env].append(f"`{flag}`" + (f" ({', '.join(cmds)})" if cmds else ""))
    return {env: "; ".join(v) for env, v in out.items()}


def config_table() -> str:
    flags = flags_by_variable()
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for f in setting_fields():
        default = f.default if f.default is not None else ""
        if isinstance(default, tuple):
            default = ",".join(default) or "(empty)"
        if default == "":
            default = "(empty)"
        env = f.metadata["env"]
        meaning = f.metadata["help"].replace("|", "\\|")
        lines.append(f"| `{env}` | {flags.get(env, '')} | `{default}` | {meaning} |")
    return "\n".join(lines)


def exit_table() -> str:
    doc = {}
    src = Path(exit_codes.__file__).read_text(encoding="utf-8")
    for line in src.splitlines():
        if line.startswith("RET_") and "#:" in line:
            name, _, rest = line.partition("=")
            doc[name.strip()] = rest.split("#:", 1)[1].strip()
    lines = ["| code | name | meaning |", "|---|---|---|"]
    for key, value in exit_codes.ALL.items():
        const = next(n for n in dir(exit_codes) if n.startswith("RET_") and getattr(exit_codes, n) == value)
        lines.append(f"| {value} | {key} | {doc.get(const, '')} |")
    return "\n".join(lines)


LEVELS = ("debug", "info", "warning", "error")


def log_events() -> dict[str, dict[str, set[str]]]:
    """``event -> {"levels": {...}, "components": {...}}`` of every ``log.<level>("event", ...)`` call
    in ``anomaly_cli/`` on a logger made by ``get_logger("component")`` (read from the source)."""
    import ast

    out: dict[str, dict[str, set[str]]] = {}
    for path in sorted((ROOT / "anomaly_cli").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        loggers: dict[str, str] = {}  # variable name -> component
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", getattr(node.value.func, "attr", "")) == "get_logger"
                and node.value.args
                and isinstance(node.value.args[0], ast.Constant)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        loggers[target.id] = str(node.value.args[0].value)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            # log.info(...), or (log.info if x else log.debug)(...)
            funcs = [node.func.body, node.func.orelse] if isinstance(node.func, ast.IfExp) else [node.func]
            for func in funcs:
                owner = getattr(func, "value", None)
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr in LEVELS
                    and isinstance(owner, ast.Name)
                    and owner.id in loggers
                ):
                    entry = out.setdefault(first.value, {"levels": set(), "components": set()})
                    entry["levels"].add(func.attr.upper())
                    entry["components"].add(loggers[owner.id])
    return out


def events_table() -> str:
    lines = ["| event | level | component |", "|---|---|---|"]
    for name, e in sorted(log_events().items()):
        levels = ", ".join(sorted(e["levels"], key=lambda lv: LEVELS.index(lv.lower())))
        lines.append(f"| `{name}` | {levels} | {', '.join(sorted(e['components']))} |")
    return "\n".join(lines)


def include(rel: str) -> str:
    """A repository file's text without its first ``# `` title (the page has its own)."""
    text = (ROOT / rel).read_text(encoding="utf-8")
    return re.sub(r"\A# [^\n]*\n+", "", text)


def fragments() -> list[Path]:
    return sorted(FRAGMENTS.glob("[0-9][0-9]-*.md"))


def fill(text: str, *, site: bool = False) -> str:
    """``text`` with every placeholder replaced; an unknown one is an error, not a silent blank."""

    def one(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        if name == "COMMANDS":
            return commands_table()
        if name == "CONFIG_TABLE":
            return config_table()
        if name == "EXIT_CODES":
            return exit_table()
        if name == "LOG_EVENTS":
            return events_table()
        if name == "RETRY_TABLE":
            return retry.table()
        if name == "RETRY_TABLE_SHORT":
            return retry.table(compact=True)
        if site and name == "README":
            return readme_body()
        if site and name == "INCLUDE" and arg:
            return include(arg)
        raise ValueError(f"unknown placeholder {m.group(0)!r}")

    return PLACEHOLDER.sub(one, text)


def readme_body() -> str:
    return "\n".join(fill(p.read_text(encoding="utf-8")).strip() + "\n" for p in fragments())


def relink(text: str, page_dir: str) -> str:
    """``](docs/x.md)`` -> the path of ``x.md`` relative to ``page_dir`` (a folder under docs/)."""

    def one(m: re.Match[str]) -> str:
        return "](" + os.path.relpath(m.group(1), page_dir or ".").replace(os.sep, "/")

    return re.sub(r"\]\(docs/([^)#\s]*)", one, text)


def build() -> str:
    return readme_body()


if __name__ == "__main__":
    target = ROOT / "README.md"
    content = build()
    if "--check" in sys.argv:
        sys.exit(0 if target.read_text(encoding="utf-8") == content else 1)
    target.write_text(content, encoding="utf-8")
    print(f"wrote {target} ({len(content.splitlines())} lines)")
