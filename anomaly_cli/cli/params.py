"""Shared parameter types and the help conventions of every command (one voice for the CLI).

- :func:`parse_date` (``DateArgument``, ``DateOption``): a test date given on the command line,
  checked while parsing, so a bad date is the same usage error (exit 2, same words) in every
  command; messages name a positional argument as ``argument DATE`` and an option by its flag.
- :func:`tidy_help`: run over the whole Click tree once (``AnomalyGroup``): flags show no
  ``<bool>`` placeholder, values show a plain metavar (``TEXT``, ``INTEGER``, ``SECONDS`` ...,
  choices as ``[a|b|c]``), and an option documented as ``(env NAME)`` shows the setting's
  default from :class:`~anomaly_cli.config.Settings`, so help and configuration never disagree.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer
import typer.core


def parse_date(value: str) -> str:
    """``YYYY-MM-DD``, a real calendar date; anything else (``2025-13-01``, ``20251220``) is a usage error."""
    from anomaly_cli.config import validate_test_date
    from anomaly_cli.errors import ConfigError

    try:
        return validate_test_date(value, field_name="date")
    except ConfigError as e:
        import datetime as dt

        why = "is not a date"
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):  # the shape is right: say what is wrong with the day
            try:
                dt.date.fromisoformat(value)
            except ValueError as bad:
                why = f"is not a real date ({bad})"
        raise typer.BadParameter(f"{value!r} {why}; expected YYYY-MM-DD, e.g. 2025-12-20") from e


def param_name(param: Any) -> str:
    """How messages name a parameter: ``argument DATE`` for a positional one, its flag for an option."""
    if getattr(param, "param_type_name", "") == "argument":
        return f"argument {param.metavar or (param.name or '').upper()}"
    return "/".join(o for o in param.opts if o.startswith("--")) or "/".join(param.opts)


_ENV_RE = re.compile(r"\(env ([A-Z][A-Z0-9_]+)\)")


def tidy_help(command: Any) -> None:
    """Apply the help conventions (module docstring) to ``command`` and everything below it.

    Duck-typed: Typer ships its own copy of Click's classes.
    """
    for param in command.params:
        _tidy_param(param)
    if not getattr(command, "_anomaly_tidy", False):
        command._anomaly_tidy = True  # noqa: SLF001 - our own marker on click's object
        make_help = command.get_help_option

        def get_help_option(ctx: Any) -> Any:
            opt = make_help(ctx)
            if opt is not None:
                opt.metavar = ""
            return opt

        command.get_help_option = get_help_option
    for sub in (getattr(command, "commands", None) or {}).values():
        tidy_help(sub)


def _tidy_param(param: Any) -> None:
    if getattr(param, "param_type_name", "") == "argument":
        if param.metavar is None:
            param.metavar = (param.name or "").upper()
        # errors name it as a positional argument ("Invalid value for argument DATE: ..."); the
        # usage line shows DATE / [DATE] (not Typer's {DATE}); no <str> type column
        param.get_error_hint = functools.partial(str, f"argument {param.metavar}")
        usage = param.metavar if param.required else f"[{param.metavar}]"
        shown = usage + ("..." if param.nargs != 1 else "")
        param._usage_display_name = functools.partial(str, shown)  # noqa: SLF001 - click has no public hook for it
        param.display_type_rich = lambda ctx: None
        return
    if getattr(param, "is_flag", False):
        param.metavar = ""  # a flag takes no value: no `<bool>` suggesting `--dry-run true`
    elif param.metavar is None:
        param.metavar = _metavar(param)
    if param.help:
        param.help = _ENV_RE.sub(_with_default, param.help)


def _metavar(param: Any) -> str:
    desc = param.type_descriptor
    if desc.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices or ()) + "]"
    annotation = desc.annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is list and args:
        annotation = args[0]
    if annotation is int:
        return "INTEGER"
    if annotation is float:
        return "SECONDS" if (param.name or "").endswith(("seconds", "_exit", "interval")) else "NUMBER"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "PATH"
    return "TEXT"


def _with_default(m: re.Match[str]) -> str:
    from anomaly_cli.config import setting_fields

    env = m.group(1)
    for f in setting_fields():
        if f.metadata.get("env") == env:
            default = f.default
            if default in ("", None, ()):
                return f"(env {env})"
            return f"(env {env}, default {default})"
    return m.group(0)


#: the positional test date of ``state``, ``results``, ``coverage``, ``rescreen`` (same check, same words everywhere)
DateArgument = Annotated[str, typer.Argument(parser=parse_date, metavar="DATE", help="Test date YYYY-MM-DD.")]
#: ``--test-date`` where a command takes it as an option
DateOption = Annotated[
    str | None,
    typer.Option("--test-date", parser=parse_date, metavar="DATE", help="Test date YYYY-MM-DD (env TEST_DATE)."),
]


class AnomalyGroup(typer.core.TyperGroup):
    """The root group: the whole tree gets :func:`tidy_help` once it is built, and a usage error
    (bad flag value, bad date, missing argument: exit 2) is ``{"error": ...}`` on stdout under
    ``--json`` like every other failure, and a ``command_failed`` event where stderr carries JSON
    lines (not a terminal, or ``LOG_FORMAT=json``); on a terminal it is Click's own message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy_help(self)

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # Typer adds --install-completion / --show-completion here
        for p in params:
            _tidy_param(p)
        return params

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        import sys

        from anomaly_cli.cli.output import Output, stderr_is_json

        argv = sys.argv[1:] if args is None else list(args)
        json_out = "--json" in argv
        if not standalone_mode or not (json_out or stderr_is_json()):
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        from typer import Abort
        from typer._click.exceptions import ClickException, UsageError

        from anomaly_cli.cli import exit_codes

        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except UsageError as e:
            # under --json the error document on stdout; else, where stderr is JSON lines, a command_failed event
            command = " ".join(["anomaly", *[a for a in argv if not a.startswith("-")][:2]])
            code = "invalid_value" if isinstance(e, typer.BadParameter) else "usage"
            Output(json_mode=json_out).error(code, e.format_message(), hint=f"{command} --help", exit_code=e.exit_code)
            sys.exit(e.exit_code)
        except ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except Abort:  # a confirmation answered with EOF or Ctrl-C (Click's "Aborted!")
            Output(json_mode=json_out).error("aborted", "aborted", exit_code=exit_codes.RET_ERROR)
            sys.exit(exit_codes.RET_ERROR)
        sys.exit(rv if isinstance(rv, int) else exit_codes.RET_OK)
