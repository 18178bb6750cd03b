"""`anomaly sandbox`: the embedded stack kept alive, with a prompt where any command runs against it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from anomaly_cli.cli import context, exit_codes
from anomaly_cli.cli.output import Output, err, interactive, out
from anomaly_cli.log import get_logger

if TYPE_CHECKING:
    from anomaly_cli.config import Settings
    from anomaly_cli.ops.sandbox import Sandbox

log = get_logger("sandbox")

HISTORY_FILE = "~/.anomaly_sandbox_history"


def command(
    ctx: typer.Context,
    with_demo_data: Annotated[
        bool, typer.Option("--with-demo-data", help="Load the demo's generated world (test date 2025-12-20).")
    ] = False,
    students: Annotated[
        int, typer.Option("--students", min=5, max=5000, help="--with-demo-data: students in the generated world.")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="--with-demo-data: seed of the generated world.")] = 7,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            metavar="FILE",
            help="Load source documents from a JSON / Extended-JSON file (array, one per line, or {documents: [...]}).",
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(
            "--audio",
            metavar="FOLDER",
            help="Upload the recordings in FOLDER to s3://anomaly-sandbox/<path in FOLDER>.",
        ),
    ] = None,
    run: Annotated[
        list[str] | None,
        typer.Option("--run", metavar="COMMAND", help="Run this command (repeatable), then exit; no prompt."),
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option("--script", metavar="FILE", help="Run the commands of FILE (one a line, # comments), then exit."),
    ] = None,
    keep_going: Annotated[
        bool, typer.Option("--keep-going", help="--run / --script: run every command even after one fails.")
    ] = False,
) -> None:
    """Keep the embedded stack alive (moto SQS + S3 over HTTP, the in-process Mongo double) and run commands in it.

    `mongomock://` lives in one process: separate `anomaly` commands never see each other's
    data. In the sandbox they do. At the prompt type any command without `anomaly`
    (`discover --test-date 2025-12-20`, `state show 2025-12-20`, `work --idle-exit 5`);
    `exit` or Ctrl-D leaves. The endpoint and throwaway
    credentials printed at start let the AWS CLI or boto3 in another terminal look at the queue
    and the bucket. Exit codes: 0, or the first failing command's code under --run / --script.
    """
    cli = context.get(ctx)
    o = Output()
    with o.errors():
        lines = _script_lines(run or [], script)
        from anomaly_cli.ops.sandbox import Sandbox, apply_environment

        base = cli.settings()
        sandbox = Sandbox(base)
        sandbox.start()
        try:
            if with_demo_data:
                from anomaly_cli.cli.commands.demo import _Phases

                with _Phases(enabled=True) as on_phase:
                    sandbox.load_demo(students, seed, on_phase=on_phase)
            if source is not None:
                sandbox.load_source(source)
            if audio is not None:
                sandbox.upload_audio(audio)
            assert sandbox.info is not None
            from anomaly_cli.adapters.mongo import hold_embedded

            hold_embedded(sandbox.info.mongo_uri)
            restore = apply_environment(sandbox.info.environment())
            try:
                _banner(sandbox, base, interactive=not lines)
                code = _run_lines(ctx, lines, keep_going) if lines else _prompt(ctx)
            finally:
                restore()
        finally:
            sandbox.stop()
    raise typer.Exit(code)


def _script_lines(run: list[str], script: Path | None) -> list[str]:
    lines = list(run)
    if script is not None:
        try:
            text = script.read_text(encoding="utf-8")
        except OSError as e:
            from anomaly_cli.errors import ConfigError

            raise ConfigError(f"--script {script}: cannot read it ({e.strerror})", field="--script") from e
        lines += [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return lines


def _args(line: str) -> list[str]:
    """The arguments of one command line; a leading ``anomaly`` (copied from the README) is dropped."""
    args = shlex.split(line, comments=True)
    if args and args[0] in ("anomaly", "anomaly>", "$"):
        args = args[1:]
    return args


def _run_lines(ctx: typer.Context, lines: list[str], keep_going: bool) -> int:
    """Run each line as ``anomaly <line>`` in this process; the first failure's code (or 0)."""
    first_failure = exit_codes.RET_OK
    for line in lines:
        args = _args(line)
        if not args:
            continue
        command = f"anomaly {shlex.join(args)}"
        if interactive():
            err().print(f"[bold cyan]sandbox>[/] {command}", highlight=False)
        else:  # stderr is JSON lines: the step is an event like any other
            log.info("sandbox_command_started", command=command)
        code = invoke(ctx, args)
        if code != exit_codes.RET_OK:
            first_failure = first_failure or code
            log.warning("sandbox_command_failed", command=command, exit_code=code, stopping=not keep_going)
            if not keep_going:
                return code
    return first_failure


def invoke(ctx: typer.Context, args: list[str]) -> int:
    """Run one ``anomaly`` command line exactly as the shell would (its own exit code, errors and help)."""
    if args[0] == "sandbox":
        Output().error("usage", "already in the sandbox (its commands run here)")
        return exit_codes.RET_USAGE
    root = ctx.find_root().command
    try:
        root.main(args=args, prog_name="anomaly", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else exit_codes.RET_ERROR)
    return exit_codes.RET_OK


#: words that leave the prompt (besides Ctrl-D)
QUIT = {"exit", "quit", ":q", ":quit"}


def _prompt(ctx: typer.Context) -> int:
    """The interactive prompt: prompt_toolkit (history across sessions, completion of commands,
    options and choice values from Typer's own completion engine), each line run by :func:`invoke`.

    Why not click-repl: Typer >= 0.29 ships its own copy of Click's classes, which click-repl's
    completer and dispatcher do not recognise; prompt_toolkit is what click-repl is built on.
    Without a terminal (piped input) the lines are read and run the same way, without a prompt.
    """
    import sys

    if not sys.stdin.isatty():
        return _run_lines(ctx, [ln for ln in sys.stdin.read().splitlines() if ln.strip()], keep_going=True)
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    session: PromptSession[str] = PromptSession(
        message="anomaly> ",
        history=FileHistory(str(Path(HISTORY_FILE).expanduser())),
        completer=_completer(ctx.find_root().command),
        complete_while_typing=False,
    )
    while True:
        try:
            line = session.prompt()
        except KeyboardInterrupt:
            continue
        except EOFError:
            return exit_codes.RET_OK
        if line.strip() in QUIT:
            return exit_codes.RET_OK
        try:
            args = _args(line)
        except ValueError as e:  # an unclosed quote
            Output().error("usage", str(e))
            continue
        if args:
            code = invoke(ctx, args)
            if code != exit_codes.RET_OK:
                err().print(f"[dim](exit {code})[/]", highlight=False)


def _completer(root: Any) -> Any:
    """A prompt_toolkit completer asking Typer's completion engine (the one behind ``--install-completion``)."""
    from prompt_toolkit.completion import Completer, Completion
    from typer._click.shell_completion import get_completion_class

    shell_class = get_completion_class("bash")
    assert shell_class is not None
    engine = shell_class(root, {}, "anomaly", "_ANOMALY_COMPLETE")

    class TyperCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            text = document.text_before_cursor
            try:
                args = _args(text) if text.strip() else []
            except ValueError:
                return
            incomplete = "" if (not text or text[-1].isspace()) else (args.pop() if args else "")
            try:
                items = engine.get_completions(args, incomplete)
            except Exception:  # noqa: BLE001 - a completion must never break the prompt
                return
            for item in items:
                if getattr(item, "type", "plain") != "plain":
                    continue  # "file" / "dir" hints: prompt_toolkit has no file completer here
                yield Completion(str(item.value), start_position=-len(incomplete), display_meta=item.help or "")

    return TyperCompleter()


def _banner(sandbox: Sandbox, base: Settings, *, interactive: bool) -> None:
    """Where everything is (stdout: it is the data of this command), and how to reach it from elsewhere."""
    i = sandbox.info
    assert i is not None  # the banner is shown once the sandbox has started
    loaded = ", ".join(f"{v} {k}" for k, v in sandbox.loaded.items()) or "nothing (empty source collection)"
    o = out()
    o.print("[bold]anomaly sandbox[/]: commands run here share one MongoDB double and one moto server", highlight=False)
    o.print(
        f"  MongoDB   {i.mongo_uri} (in this process) database {base.mongo_db_name}, "
        f"source {base.mongo_source_collection}",
        highlight=False,
    )
    o.print(f"  SQS + S3  {i.endpoint} (region {i.region})", highlight=False)
    o.print(f"  queue     {i.queue_url}", highlight=False)
    o.print(f"  DLQ       {i.dlq_url}", highlight=False)
    o.print(f"  bucket    s3://{i.bucket}  (allowlist {', '.join(i.allowlist)})", highlight=False)
    o.print(f"  loaded    {loaded}", highlight=False)
    o.print("From another terminal (throwaway credentials, accepted by this sandbox only):", highlight=False)
    o.print(
        f"  export AWS_ENDPOINT_URL={i.endpoint} AWS_ACCESS_KEY_ID={i.access_key} "
        f"AWS_SECRET_ACCESS_KEY={i.secret_key} AWS_DEFAULT_REGION={i.region}",
        highlight=False,
        soft_wrap=True,
    )
    o.print(
        f"  aws sqs get-queue-attributes --queue-url {i.queue_url} --attribute-names All",
        highlight=False,
        soft_wrap=True,
    )
    o.print(f"  aws s3 ls s3://{i.bucket} --recursive", highlight=False)
    if interactive:
        o.print(
            "Type a command without `anomaly` (e.g. `state list`), Tab completes, `--help` after any; "
            "`exit` or Ctrl-D leaves.",
            highlight=False,
        )
