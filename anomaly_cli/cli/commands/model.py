"""``anomaly model train | evaluate | info``: build, grade and describe model versions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import typer

from anomaly_cli.cli import context, exit_codes, output
from anomaly_cli.cli.commands._progress import progress

if TYPE_CHECKING:
    from anomaly_cli.model.engine import LoadedModel

app = typer.Typer(no_args_is_help=True, help="Train, evaluate and describe the screening model.")

_DEFAULT_SEED = 1234  # mirrors model.train.DEFAULT_SEED (not imported: keeps --help light)
_EVAL_SEED = 98765  # a held-out seed, different from training's


def _load(cli: context.CliContext, version: str | None) -> Any:
    """The model (a missing or unreadable one is a ModelError: exit 3 through ``Output.errors``)."""
    from anomaly_cli.model.engine import load_model
    from anomaly_cli.model.thresholds import ProgrammeThresholds

    s = cli.settings()
    return load_model(s.model_dir, version or s.model_version or None, ProgrammeThresholds.from_settings(s))


def _one_source(data: Optional[Path], synthetic: Optional[int], o: output.Output) -> None:
    """Fail with a usage error unless exactly one of ``--data`` / ``--synthetic`` is given."""
    if (data is None) == (synthetic is None):
        o.fail("usage", "give exactly one of --data DIR or --synthetic N", exit_code=exit_codes.RET_USAGE)


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--out", help="version folder to write, e.g. ./models/v2 (then MODEL_DIR=./models)")
    ],
    data: Annotated[
        Optional[Path], typer.Option("--data", help="labelled folder with manifest.csv (file,label)")
    ] = None,
    synthetic: Annotated[
        Optional[int], typer.Option("--synthetic", help="train on N generated normal recordings")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="random seed (generator and forest)")] = _DEFAULT_SEED,
    json_out: Annotated[bool, typer.Option("--json", help="print the metadata as JSON")] = False,
) -> None:
    """Fit the outlier model on normal recordings and write model.npz + metadata.json."""
    cli = context.get(ctx)
    o = output.Output(json_out)
    with o.errors():
        cli.settings()
        _one_source(data, synthetic, o)
        from anomaly_cli.extras import require

        require("train", "anomaly model train")
        from anomaly_cli.model.train import train

        with progress("train", enabled=o.progress_enabled) as update:
            meta = train(
                out,
                synthetic=synthetic,
                data_dir=data,
                seed=seed,
                progress=lambda i, n: update(i, "extracting features", total=n),
            )
    o.result(meta, lambda: _render_trained(meta, out))


def _render_trained(meta: dict[str, Any], out: Path) -> None:
    outlier = meta["outlier"]
    output.out().print(
        f"model [bold]{meta['version']}[/] written to {out}: {meta['training']['normals']} normal "
        f"recordings, outlier threshold {outlier['threshold']:.4f} "
        f"(train false alarms {meta['training']['train_false_alarm']:.2%})"
    )


@app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Option("--data", help="labelled folder with manifest.csv")] = None,
    synthetic: Annotated[Optional[int], typer.Option("--synthetic", help="evaluate on N generated recordings")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the generated held-out set")] = _EVAL_SEED,
    source: Annotated[
        Literal["formant", "espeak", "alsa"], typer.Option("--source", help="speech for --synthetic")
    ] = "formant",
    model_version: Annotated[Optional[str], typer.Option("--model-version", help="default: newest")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
) -> None:
    """Per-class recall, false alarms on normals, first-reason accuracy and the confusion table."""
    cli = context.get(ctx)
    o = output.Output(json_out)
    with o.errors():
        cli.settings()
        _one_source(data, synthetic, o)
        model = _load(cli, model_version)
        from anomaly_cli.model import evaluate as ev

        with progress("evaluate", total=synthetic, enabled=o.progress_enabled) as update:

            def step(i: int) -> None:
                update(i, "screening")

            if data is not None:
                rep = ev.evaluate_dir(data, model, progress=step)
            else:
                assert synthetic is not None  # exactly one of --data / --synthetic (checked above)
                try:
                    rep = ev.evaluate_synthetic(synthetic, seed, model, source=source, progress=step)
                except RuntimeError as e:  # optional source not installed
                    o.fail("source_unavailable", str(e), exit_code=exit_codes.for_exception(e))
    report = rep.to_dict()
    o.result(report, lambda: _render_report(report))


def _render_report(r: dict[str, Any]) -> None:
    from rich.table import Table

    bar = r["quality_bar"]
    t = Table(title=f"evaluation of model {r['model_version']}", title_justify="left")
    for col in ("class", "n", "recall", "bar"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for cls, n in r["counts"].items():
        if cls == "normal":
            fa = r["false_alarm_rate"]
            t.add_row("normal (false alarms)", str(n), f"{fa:.3f}", _ok(bar.get("false_alarm")))
        else:
            t.add_row(cls, str(n), f"{r['recall'][cls]:.3f}", _ok(bar.get(f"recall:{cls}")))
    for style, fa in r.get("style_false_alarms", {}).items():
        t.add_row(
            f"  normal: {style}", str(r["style_counts"][style]), f"{fa:.3f}", _ok(bar.get(f"false_alarm:{style}"))
        )
    ra = r["reason_accuracy"]
    t.add_row("first reason right", "", "-" if ra is None else f"{ra:.3f}", _ok(bar.get("reason_accuracy")))
    output.out().print(t)
    codes = sorted({c for row in r["confusion"].values() for c in row})
    c = Table(title="confusion: label -> first reason", title_justify="left")
    c.add_column("label")
    for code in codes:
        c.add_column(code, justify="right")
    for label, row in r["confusion"].items():
        c.add_row(label, *[str(row.get(code, "")) for code in codes])
    output.out().print(c)


def _ok(v: bool | None) -> str:
    return "" if v is None else ("[green]met[/]" if v else "[red]NOT met[/]")


@app.command("info")
def info_cmd(
    ctx: typer.Context,
    model_version: Annotated[Optional[str], typer.Option("--model-version", help="default: newest")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="the metadata as JSON")] = False,
) -> None:
    """Version, features, thresholds and training summary of a model version."""
    cli = context.get(ctx)
    o = output.Output(json_out)
    with o.errors():
        model = _load(cli, model_version)
        from anomaly_cli.config import env_name
        from anomaly_cli.model.thresholds import SETTING_OF

        programme = {env_name(SETTING_OF[k]): v for k, v in model.thresholds.items()}
    payload = {
        **model.metadata,
        "rules": model.rules.to_list(),
        "programme_thresholds": programme,
        "path": str(model.path),
    }
    o.result(payload, lambda: _render_info(model, programme))


def _render_info(model: LoadedModel, programme: dict[str, Any]) -> None:
    from rich.table import Table

    meta = model.metadata
    o = output.out()
    o.print(f"model [bold]{model.version}[/] at {model.path} (created {meta.get('created_at')})")
    tr = meta.get("training", {})
    o.print(
        f"trained on {tr.get('normals')} normal recordings ({tr.get('source')}, seed {tr.get('seed')}); "
        f"outlier threshold {meta['outlier']['threshold']:.4f} at target false alarms "
        f"{meta['outlier']['target_false_alarm']:.1%}"
    )
    t = Table(title="rules (reason code: measurement and threshold)", title_justify="left")
    for col in ("code", "fires when", "meaning"):
        t.add_column(col)
    o.print(
        "programme thresholds (settings, written into the rules below): "
        + ", ".join(f"{k}={v:g}" for k, v in programme.items())
    )
    for rule in model.rules.to_list():
        cond = "\nor ".join(
            " and ".join(f"{c['feature']} {c['op']} {c['threshold']:g}" for c in group) for group in rule["when"]
        )
        t.add_row(rule["code"], cond, rule.get("doc", ""))
    t.add_row(
        "outlier",
        f"isolation forest score > {meta['outlier']['threshold']:.4f}",
        "unusual for the model, no rule explains it",
    )
    o.print(t)
    o.print(f"features ({len(meta['feature_names'])}): {', '.join(meta['feature_names'])}")
    o.print("libraries: " + ", ".join(f"{k} {v}" for k, v in meta.get("libraries", {}).items()))
