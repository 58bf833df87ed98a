"""The ``textcnn`` command: each command parses its options, calls one library function and
prints what it returned (:mod:`textcnn.console`)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import options as opt
from .console import (
    errors,
    parse_input_size,
    print_cv,
    print_evaluation,
    print_fold,
    print_models,
    print_predictions,
    print_scored,
    print_summary,
    print_trained,
    print_tuned,
    setup_logging,
    user_errors,
)

app = typer.Typer(
    help="Convolutional text and image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _config(ctx: typer.Context, config_file: Path | None, **flags):
    """The run's settings: defaults, recipe, the TOML file, the flags and the other options."""
    from .training.config import load_config, parse_overrides

    overrides = {k: v for k, v in flags.items() if v is not None}
    return load_config(config_file, {**overrides, **parse_overrides(ctx.args)})


@app.command()
def models(pattern: Annotated[str, typer.Argument(help="filter, e.g. 'resnet*'")] = "*") -> None:
    """List the registered models with their kind and parameter count."""
    print_models(pattern)


@app.command()
def summary(
    name: Annotated[str, typer.Argument(help="a registered model, see `textcnn models`")],
    input_size: Annotated[
        str | None, typer.Option(help="C,H,W or one side; text: a length")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="model setting KEY=VALUE")] = None,
    depth: Annotated[int | None, typer.Option(min=1, help="merge layers to this depth")] = None,
    as_json: opt.JsonOpt = False,
) -> None:
    """Per layer: output shape, parameters, MACs and receptive field, then totals."""
    from .models import model_entry
    from .models.summary import summarize_registered
    from .training.config import parse_overrides

    try:
        entry = model_entry(name)
        shape = parse_input_size(input_size, entry.kind, entry.input_shape) if input_size else None
        settings = parse_overrides([f"--set={pair}" for pair in set_ or []])
        model, result = summarize_registered(name, shape, **settings)
    except (ValueError, TypeError, RuntimeError) as error:
        raise typer.BadParameter(str(error).splitlines()[0]) from None
    print_summary(name, result.grouped(depth, model) if depth else result, as_json)


@app.command(epilog=opt.SETTINGS_HELP, **opt.SETTINGS)
def train(
    ctx: typer.Context,
    data: opt.DataOpt = None,
    dev: Annotated[str | None, typer.Option(help="dev file (default: a split of --data)")] = None,
    test: Annotated[str | None, typer.Option(help="test file, scored once at the end")] = None,
    output: opt.OutputOpt = None,
    config: opt.ConfigOpt = None,
    epochs: opt.EpochsOpt = None,
    device: opt.DeviceOpt = None,
    seed: opt.SeedOpt = None,
    resume: Annotated[bool, typer.Option(help="continue the interrupted run in --output")] = False,
    nproc: Annotated[int, typer.Option(min=1, help="processes on this machine (DDP)")] = 1,
) -> None:
    """Train a text classifier (or, with --arch, an image one); writes OUTPUT/model-best and
    OUTPUT/model-last."""
    from .card import load_card
    from .training.pipeline import train_model

    setup_logging()
    flags = dict(data=data, dev=dev, test=test, output=output, epochs=epochs)
    with user_errors():
        cfg = _config(ctx, config, **flags, device=device, seed=seed)
        model_dir = train_model(cfg, resume, nproc, sys.argv[1:])
        if model_dir is not None:  # this process reports (rank 0, or the only one)
            print_trained(load_card(model_dir).metrics, model_dir)


@app.command(epilog=opt.SETTINGS_HELP, **opt.SETTINGS)
def cv(
    ctx: typer.Context,
    data: opt.DataOpt = None,
    folds: Annotated[int, typer.Option(min=2, help="number of folds")] = 10,
    output: opt.OutputOpt = None,
    config: opt.ConfigOpt = None,
    recipes: Annotated[
        str | None, typer.Option(help="compare recipes on the same folds: all, or a,b,...")
    ] = None,
) -> None:
    """k-fold cross-validation (the MR/Subj protocol): mean ± standard deviation of accuracy."""
    from .training.config import RECIPES
    from .training.pipeline import compare_recipes, cross_validate

    setup_logging()
    flags = dict(data=data, output=output)  # --epochs, --seed, ...: settings like any other
    with user_errors():
        if recipes:  # each in a folder of its own, on the same folds
            names = list(RECIPES) if recipes == "all" else recipes.split(",")
            configs = {name: _config(ctx, config, **flags, recipe=name) for name in names}
            results = compare_recipes(configs, folds, lambda _, i, fold: print_fold(i, fold))
        else:
            results = {"": cross_validate(_config(ctx, config, **flags), folds, print_fold)}
    print_cv(results, folds)


@app.command(epilog=opt.SETTINGS_HELP, **opt.SETTINGS)
def tune(
    ctx: typer.Context,
    data: opt.DataOpt = None,
    dev: Annotated[str | None, typer.Option(help="dev file (default: a split of --data)")] = None,
    test: Annotated[
        str | None, typer.Option(help="test file, scored once by the final model")
    ] = None,
    output: opt.OutputOpt = None,
    config: opt.ConfigOpt = None,
    budget: Annotated[str, typer.Option(help="search time: 20m, 1h30m, 600 (seconds)")] = "20m",
    metric: Annotated[str, typer.Option(help="accuracy | macro_f1 | f1:LABEL")] = "accuracy",
    max_model_mb: Annotated[
        float | None, typer.Option(min=0, help="largest model (weights and folded tables), MB")
    ] = None,
    folds: Annotated[
        int, typer.Option(min=0, help="score trials by K-fold CV of --data (small data)")
    ] = 0,
    trials: Annotated[int | None, typer.Option(min=1, help="stop after this many trials")] = None,
    seed: opt.SeedOpt = None,
    resume: Annotated[bool, typer.Option(help="continue the search in --output")] = False,
    nproc: Annotated[int, typer.Option(min=1, help="processes sharing the search")] = 1,
    join: Annotated[int, typer.Option(hidden=True)] = 0,
    progress: Annotated[bool, typer.Option(hidden=True)] = True,
) -> None:
    """Search the recipe and hyper-parameters on dev (or K folds) within a time budget;
    writes OUTPUT/model-best (its card records the search) and OUTPUT/search/. Settings
    given as options are kept fixed. Needs the tune extra (optuna; bash run.sh setup)."""
    from .training.config import parse_overrides
    from .training.tune import TuneOptions, parse_budget
    from .training.tune import tune as search

    setup_logging()
    with user_errors():
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ValueError("textcnn tune needs optuna: pip install 'textcnn[tune]'") from None
        base = {k: v for k, v in dict(data=data, dev=dev, test=test, output=output).items() if v}
        if seed is not None:
            base["seed"] = seed
        base.update(parse_overrides(ctx.args))  # fixed: not searched
        options = TuneOptions(
            parse_budget(budget), metric, max_model_mb, folds, trials, resume, nproc, join, progress
        )
        result = search(base, config, options)
    if result:
        print_tuned(result)


@app.command()
def evaluate(
    model_dir: opt.ModelDir,
    data: Annotated[str, typer.Option(help="labelled file or class folder to score")],
    format: opt.FormatOpt = None,
    text_field: opt.TextFieldOpt = "text",
    label_field: Annotated[str, typer.Option(help="column/key of the label")] = "label",
    skip_bad_rows: opt.SkipOpt = False,
    png: Annotated[
        Path | None, typer.Option(help="write its picture (confusion, F1) as a PNG")
    ] = None,
    min_score: opt.MinScoreOpt = None,
    as_json: opt.JsonOpt = False,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (for a
    multi-label model micro/macro-F1, subset accuracy and Hamming loss), calibration error;
    with --min-score, the share of texts answered and the accuracy on them.

    An image model takes a class folder, or fashion-mnist (its test split)."""
    from .loading import load
    from .text.corpora import ReaderOptions
    from .training.metrics import plot_evaluation
    from .training.pipeline import evaluate_data

    with user_errors():
        options = ReaderOptions(text_field, label_field, skip_bad_rows, format)
        report = evaluate_data(load(model_dir), data, options, min_score)
        if png:
            plot_evaluation(report, png)
    print_evaluation(report, as_json)


@app.command()
def predict(
    model_dir: opt.ModelDir,
    texts: Annotated[list[str] | None, typer.Argument(help="texts; none: lines of stdin")] = None,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="the k most probable labels (default: the answer)")
    ] = None,
    min_score: opt.MinScoreOpt = None,
    as_json: opt.JsonOpt = False,
) -> None:
    """Classify texts given as arguments (or on standard input, one per line); for an image
    model, image files. A multi-label model gives every label it assigns."""
    from .loading import load

    with user_errors():
        texts = texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
        results = load(model_dir).classify(texts, top_k or "auto", min_score=min_score)
    print_predictions(texts, results, as_json)


@app.command()
def cam(
    model_dir: Annotated[Path, typer.Argument(help="an image model directory (model-best)")],
    image: Annotated[Path, typer.Argument(help="an image file")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG to write")] = Path("cam.png"),
    label: Annotated[str | None, typer.Option(help="this class's map (default: predicted)")] = None,
) -> None:
    """Class activation map (Zhou et al. 2016): the image with the predicted class's heat map."""
    from .images.classifier import ImageClassifier
    from .loading import load

    with user_errors():
        classifier = load(model_dir)
        if not isinstance(classifier, ImageClassifier):
            raise ValueError(
                f"{model_dir}: a text model; class activation maps need an image model"
            )
        prediction = classifier.save_class_activation_map(image, output, label)
    typer.echo(
        f"{prediction.label} {prediction.score:.3f}: class activation map written to {output}"
    )


@app.command()
def score(
    model_dir: opt.ModelDir,
    input: Annotated[str, typer.Argument(help="CSV/TSV/JSONL, text file (a text a line), or -")],
    output: Annotated[str | None, typer.Option("--output", "-o", help=".jsonl or .csv")] = None,
    format: opt.FormatOpt = None,
    text_field: opt.TextFieldOpt = "text",
    id_field: Annotated[str | None, typer.Option(help="column/key of the row id")] = None,
    all_scores: Annotated[bool, typer.Option("--all-scores", help="every label's score")] = False,
    chunk_size: Annotated[int, typer.Option(min=1, help="texts scored at a time")] = 8192,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run into OUTPUT")] = False,
    skip_bad_rows: opt.SkipOpt = False,
    shard: Annotated[str | None, typer.Option(help="K/N: shard K of N (0-based)")] = None,
    min_score: opt.MinScoreOpt = None,
) -> None:
    """Score a large file in order, streaming in chunks; --resume continues an interrupted run."""
    from .text.scoring import score_model_file

    with user_errors():
        summary = score_model_file(
            model_dir,
            input,
            output,
            shard=shard,
            input_format=format,
            text_field=text_field,
            id_field=id_field,
            all_scores=all_scores,
            chunk_size=chunk_size,
            resume=resume,
            skip_bad_rows=skip_bad_rows,
            min_score=min_score,
        )
    print_scored(summary)


@app.command()
def merge(
    output: Annotated[str, typer.Argument(help="the merged .jsonl or .csv to write")],
    parts: Annotated[list[str], typer.Argument(help="the outputs of score --shard K/N")],
) -> None:
    """Join the outputs of `textcnn score --shard K/N` into one file in input order."""
    from .text.scoring import merge_shards

    with user_errors():
        rows = merge_shards(output, parts)
    errors.print(f"merged {len(parts)} parts, {rows} rows, into {output}")


@app.command()
def export(
    model_dir: opt.ModelDir,
    output: Annotated[Path, typer.Option("-o", "--output", help="the .onnx file to write")],
    int8: Annotated[
        bool, typer.Option("--int8", help="ONNX Runtime's dynamic quantisation: int8 weights")
    ] = False,
) -> None:
    """The model as an ONNX file, with tokenizer.json (text) and onnx.json (labels, inputs,
    outputs, temperature, thresholds) beside it: for ONNX Runtime or Triton, from any
    language. Needs the onnx extra (bash run.sh setup installs it)."""
    from .export import export_onnx

    with user_errors():
        inputs = ", ".join(export_onnx(model_dir, output, int8)["inputs"])
    mb = output.stat().st_size / 2**20
    typer.echo(f"wrote {output} ({mb:.1f} MB, input {inputs}) and onnx.json beside it")


@app.command()
def serve(
    model: Annotated[
        list[str] | None,
        typer.Option(help="a model directory, or NAME=DIR; repeat for several models"),
    ] = None,
    models_dir: Annotated[Path | None, typer.Option(help="serve every sub-folder of it")] = None,
    default: Annotated[
        str | None, typer.Option(help="the model a request without one asks")
    ] = None,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve POST /classify and the rest with uvicorn (default: runs/tweets/model-best)."""
    from .serving import model_sources, run_server

    with user_errors():
        sources = model_sources(model or [], models_dir)
        run_server(sources, default, host, port, workers)


def main() -> None:
    # A command is one run: what the imports made (torch's and numba's objects, most of the
    # heap) lives until exit, so it is left out of the cyclic collector: its full passes
    # walked all of it, and finalising the interpreter spent 0.8 s in them after every run.
    gc.freeze()
    app()


if __name__ == "__main__":
    main()
