"""The ``textcnn`` command: thin shims over the library."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import torch
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .models import create_model, list_models, model_entry
from .models.summary import Summary, summarize_registered

app = typer.Typer(
    help="Convolutional text and image classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# A wide console when piped, so tables are not cut to 80 columns.
console = Console(width=None if Console().is_terminal else 160)


def parse_input_size(text: str, kind: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """'3,224,224' or '3x224x224'; one number is a sequence length (text) or a square side."""
    try:
        sizes = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a list of integers such as 3,224,224") from None
    if not sizes or min(sizes) < 1:
        raise typer.BadParameter(f"{text!r}: sizes must be positive integers")
    if kind == "image" and len(sizes) == 1:
        sizes = (default[0], sizes[0], sizes[0])
    expected = 1 if kind == "text" else 3
    if len(sizes) != expected:
        raise typer.BadParameter(
            f"{text!r}: a {kind} model takes {'a sequence length' if kind == 'text' else 'C,H,W'}"
        )
    return sizes


def parse_settings(pairs: list[str]) -> dict:
    """KEY=VALUE pairs; values are read as JSON when they parse (2, true, [3,4]), else as text."""
    config = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    return config


def _fmt(n: float) -> str:
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def _shape(values: list) -> str:
    return "×".join(_fmt(v) for v in values)


def print_summary(name: str, summary: Summary) -> None:
    table = Table(title=f"{name} on input {_shape(summary.input_shape)}")
    for column in ("layer", "type", "output", "params", "MACs", "receptive field", "jump"):
        table.add_column(column, justify="right" if column in ("params", "MACs") else "left")
    for row in summary.rows:
        table.add_row(
            row.name + (" *" if row.cropped else ""),
            row.type,
            _shape(row.output_shape),
            _fmt(row.params),
            _fmt(row.macs),
            _shape(row.receptive_field),
            _shape(row.jump),
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        _shape(summary.output_shape),
        _fmt(summary.total_params),
        _fmt(summary.total_macs),
        "",
        "",
    )
    console.print(table)
    console.print(f"trainable parameters: {summary.trainable_params:,}")
    if any(row.cropped for row in summary.rows):
        console.print(
            "* the window does not reach the last rows/columns of its input: they are cropped"
        )


@app.command()
def models(
    pattern: Annotated[str, typer.Argument(help="shell-style filter, e.g. 'resnet*'")] = "*",
) -> None:
    """List the registered models with their kind and parameter count."""
    table = Table()
    for column in ("name", "kind", "params", "input", "description"):
        table.add_column(column, justify="right" if column == "params" else "left")
    for name in list_models(pattern):
        entry = model_entry(name)
        with torch.device("meta"):  # count parameters without allocating them
            params = sum(p.numel() for p in create_model(name).parameters())
        table.add_row(
            name, entry.kind, f"{params:,}", _shape(list(entry.input_shape)), entry.description
        )
    console.print(table)


@app.command()
def summary(
    name: Annotated[str, typer.Argument(help="a registered model, see `textcnn models`")],
    input_size: Annotated[
        str | None,
        typer.Option(help="C,H,W for images (or one side), a sequence length for text"),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="model setting KEY=VALUE, e.g. --set groups=2 (repeatable)"),
    ] = None,
    depth: Annotated[
        int | None, typer.Option(min=1, help="merge layers to this depth of module names")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON records and totals")] = False,
) -> None:
    """Per layer: output shape, parameters, MACs and receptive field, then totals."""
    try:
        entry = model_entry(name)
        shape = parse_input_size(input_size, entry.kind, entry.input_shape) if input_size else None
        model, result = summarize_registered(name, shape, **parse_settings(set_ or []))
    except (ValueError, TypeError, RuntimeError) as error:
        raise typer.BadParameter(str(error).splitlines()[0]) from None
    if depth is not None:
        result = result.grouped(depth, model)
    if as_json:
        typer.echo(json.dumps({"model": name, **result.to_dict()}, indent=2))
    else:
        print_summary(name, result)


# -- training, evaluation and prediction -------------------------------------------------


@contextlib.contextmanager
def user_errors():
    """A mistake in the input becomes a one-line message and exit status 1, not a traceback."""
    try:
        yield
    except ValueError as error:
        message = Text.assemble(("error: ", "red"), str(error))  # no markup: paths may hold [ ]
        Console(stderr=True).print(message, soft_wrap=True)
        raise typer.Exit(1) from None


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)


ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file of settings")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="any setting KEY=VALUE, e.g. --set num_filters=200 (repeatable)"),
]
DataOpt = Annotated[
    str | None, typer.Option(help="training file or class folder, or 'tweets' (built in)")
]
OutputOpt = Annotated[str | None, typer.Option("--output", "-o", help="run folder")]
EpochsOpt = Annotated[int | None, typer.Option(help="maximum epochs (early stopping on dev)")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto|cpu|cuda|mps")]
SeedOpt = Annotated[int | None, typer.Option(help="random seed")]
# Any other setting is an option of its own: --model.num_filters 200, --num-filters 200,
# --augment / --no-augment; `--arch` implies --task image.
SETTINGS_HELP = (
    "Any other setting goes as --SECTION.KEY VALUE or --KEY VALUE (e.g. --recipe ngram, "
    "--model.num_filters 200, --embedding-mode static, --vectors FILE, --arch lenet5, "
    "--augment); an unknown one is an error that lists them all. Text recipes: "
    "minilm-ngram (the default when MiniLM is installed), ngram, rand, glove, "
    "minilm-wordpiece, distilled."
)
OVERRIDES = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}
ALIASES = {"tokenizer": "tokenizer.kind"}


def setting_options(args: list[str]) -> dict:
    """``--key value``, ``--key=value``, ``--flag`` and ``--no-flag`` as settings; values
    parse as JSON when they can. ``--arch-option K=V`` sets one architecture option."""
    settings: dict = {}
    arch_options: dict = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"unexpected argument {arg!r}; settings go as --KEY VALUE")
        key, sep, value = arg[2:].partition("=")
        if not sep:
            if rest and not rest[0].startswith("--"):
                value = rest.pop(0)
            elif key.startswith("no-"):
                key, value = key[3:], "false"
            else:
                value = "true"
        key = key.replace("-", "_")
        if key == "arch_option":
            arch_options.update(parse_settings([value]))
            continue
        settings.update(parse_settings([f"{ALIASES.get(key, key)}={value}"]))
    if arch_options:
        settings["arch_options"] = arch_options
    return settings


def train_config(ctx: typer.Context, config_file: Path | None, set_: list[str] | None, **flags):
    """The settings of a run: defaults, the TOML file, the flags, then --set."""
    from .training.config import TrainConfig

    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.update(setting_options(ctx.args))
    overrides.update(parse_settings(set_ or []))
    return TrainConfig.load(config_file, overrides)


@app.command(epilog=SETTINGS_HELP, **OVERRIDES)
def train(
    ctx: typer.Context,
    data: DataOpt = None,
    dev: Annotated[str | None, typer.Option(help="dev file (default: a split of --data)")] = None,
    test: Annotated[str | None, typer.Option(help="test file, scored once at the end")] = None,
    output: OutputOpt = None,
    config: ConfigOpt = None,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    resume: Annotated[bool, typer.Option(help="continue the interrupted run in --output")] = False,
    nproc: Annotated[
        int, typer.Option(min=1, help="processes on this machine (DDP through torchrun)")
    ] = 1,
    set_: SetOpt = None,
) -> None:
    """Train a text classifier (or, with --arch, an image one); writes OUTPUT/model-best and
    OUTPUT/model-last."""
    from .card import load_card
    from .training.distributed import launched_by_torchrun
    from .training.pipeline import fit_and_save

    setup_logging()
    with user_errors():
        flags = dict(data=data, dev=dev, test=test, output=output, epochs=epochs)
        cfg = train_config(ctx, config, set_, **flags, device=device, seed=seed)
        again = f"textcnn train --output {cfg.data.run_folder()} --resume"
        if nproc > 1 and not launched_by_torchrun():
            args = [f"--{k}={v}" for k, v in {**flags, "device": device, "seed": seed}.items()]
            args += [f"--config={config}"] if config else []
            args += [f"--set={pair}" for pair in set_ or []] + ["--resume"] * resume
            code = run_torchrun(nproc, [a for a in args if not a.endswith("=None")] + ctx.args)
            if code:
                raise ValueError(
                    f"a training process failed (see above); the checkpoint keeps every "
                    f"finished epoch: continue with `{again} --nproc {nproc}` (same settings)"
                )
            return  # rank 0 has reported
        else:
            try:
                model_dir = fit_and_save(cfg, resume=resume)
            except KeyboardInterrupt:
                Console(stderr=True).print(f"interrupted; continue with: {again}")
                raise typer.Exit(130) from None
            except RuntimeError as error:  # a collective failed: a rank died or hangs
                if not launched_by_torchrun():
                    raise
                raise ValueError(
                    f"lost the other training processes ({str(error).splitlines()[0][:200]}); "
                    f"continue with `{again}` and the same number of processes"
                ) from None
            if os.environ.get("RANK", "0") != "0":
                return  # rank 0 reports
        metrics = load_card(model_dir).metrics
    for split, scores in metrics.items():
        console.print(
            f"{split}: accuracy {scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f}"
        )
    console.print(f"model written to {model_dir}")


@app.command(epilog=SETTINGS_HELP, **OVERRIDES)
def cv(
    ctx: typer.Context,
    data: DataOpt = None,
    folds: Annotated[int, typer.Option(min=2, help="number of folds")] = 10,
    output: OutputOpt = None,
    config: ConfigOpt = None,
    epochs: EpochsOpt = None,
    device: DeviceOpt = None,
    seed: SeedOpt = None,
    recipes: Annotated[
        str | None,
        typer.Option(help="compare recipes on the same folds: all, or names joined by commas"),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """k-fold cross-validation (the MR/Subj protocol): mean ± standard deviation of accuracy."""
    from .training.config import RECIPES
    from .training.pipeline import cross_validate

    setup_logging()
    results = {}
    with user_errors():
        names = list(RECIPES) if recipes == "all" else (recipes or "").split(",")
        unknown = [name for name in names if name and name not in RECIPES]
        if unknown:
            raise ValueError(f"unknown recipe {unknown[0]!r}; choose from {', '.join(RECIPES)}")
        for name in filter(None, names) if recipes else [None]:
            flags = dict(data=data, output=output, epochs=epochs, device=device, seed=seed)
            cfg = train_config(ctx, config, set_, recipe=name, **flags)
            if name:  # each recipe in a folder of its own
                folder = cfg.data.run_folder() / name
                cfg.data = replace(cfg.data, output=str(folder))
                console.print(f"recipe {name}")
            result = cross_validate(
                cfg, folds, lambda i, f: console.print(f"fold {i}: accuracy {f['accuracy']:.4f}")
            )
            results[cfg.recipe] = result
            console.print(
                f"{folds}-fold accuracy {100 * result['accuracy_mean']:.2f} ± "
                f"{100 * result['accuracy_std']:.2f} %, macro-F1 {result['macro_f1_mean']:.4f}, "
                f"{result['seconds_per_epoch']:.1f} s/epoch"
            )
    if len(results) > 1:
        table = Table("recipe", "accuracy (%)", "macro-F1", "s/epoch")
        for name, result in results.items():
            accuracy = f"{100 * result['accuracy_mean']:.2f} ± {100 * result['accuracy_std']:.2f}"
            f1 = f"{result['macro_f1_mean']:.4f}"
            table.add_row(name, accuracy, f1, f"{result['seconds_per_epoch']:.1f}")
        console.print(table)


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="a model directory (model-best)")],
    data: Annotated[str, typer.Option(help="labelled file or class folder to score")],
    format: Annotated[str | None, typer.Option(help="csv|tsv|jsonl|fasttext|folder")] = None,
    text_field: Annotated[str, typer.Option(help="column/key of the text")] = "text",
    label_field: Annotated[str, typer.Option(help="column/key of the label")] = "label",
    skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows")] = False,
    png: Annotated[Path | None, typer.Option(help="write the confusion matrix as a PNG")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    An image model takes a class folder, or fashion-mnist (its test split)."""
    from .predictor import load
    from .training.metrics import plot_confusion_matrix
    from .training.pipeline import evaluate_data

    with user_errors():
        predictor = load(model_dir)
        reading = {"format": format, "text_field": text_field, "label_field": label_field}
        reading["skip_bad_rows"] = skip_bad_rows
        report = evaluate_data(predictor, data, {f"data.{k}": v for k, v in reading.items()})
        if png:
            plot_confusion_matrix(report, png)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(
        f"{report['examples']} examples: accuracy {report['accuracy']:.4f}, "
        f"macro-F1 {report['macro_f1']:.4f}"
    )
    table = Table("label", "precision", "recall", "F1", "support")
    for label, scores in report["per_class"].items():
        table.add_row(
            label,
            f"{scores['precision']:.3f}",
            f"{scores['recall']:.3f}",
            f"{scores['f1']:.3f}",
            str(scores["support"]),
        )
    console.print(table)
    matrix = Table("true \\ predicted", *report["labels"], title="confusion matrix")
    for label, row in zip(report["labels"], report["confusion_matrix"], strict=True):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="a model directory (model-best)")],
    texts: Annotated[
        list[str] | None, typer.Argument(help="texts; none: one per line on stdin")
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="labels per text")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per text")] = False,
) -> None:
    """Classify texts given as arguments (or on standard input, one per line); for an image
    model, image files."""
    from .predictor import load

    with user_errors():
        classifier = load(model_dir)
        texts = texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
        results = classifier.predict(texts, top_k=top_k)
    for text, predictions in zip(texts, results, strict=True):
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "text": text,
                        "predictions": [
                            {"label": p.label, "score": round(p.score, 6)} for p in predictions
                        ],
                    }
                )
            )
        else:
            shown = ", ".join(f"{p.label} {p.score:.3f}" for p in predictions)
            typer.echo(f"{shown}\t{text}")


@app.command()
def cam(
    model_dir: Annotated[Path, typer.Argument(help="an image model directory (model-best)")],
    image: Annotated[Path, typer.Argument(help="an image file")],
    output: Annotated[Path, typer.Option("--output", "-o", help="PNG to write")] = Path("cam.png"),
    label: Annotated[
        str | None, typer.Option(help="show this class's map (default: the predicted class)")
    ] = None,
) -> None:
    """Class activation map (Zhou et al. 2016): the image with the predicted class's heat map."""
    from .images.cam import save_overlay
    from .predictor import load

    with user_errors():
        classifier = load(model_dir)
        if classifier.task != "image":
            raise ValueError(
                f"{model_dir}: a text model; class activation maps need an image model"
            )
        if label is not None and label not in classifier.labels:
            raise ValueError(
                f"unknown label {label!r}; the model knows {', '.join(classifier.labels)}"
            )
        picture = classifier.read(image)
        prediction, heat = classifier.class_activation_map(picture, label)
        save_overlay(picture, heat, output, f"{prediction.label} ({prediction.score:.2f})")
    typer.echo(
        f"{prediction.label} {prediction.score:.3f}: class activation map written to {output}"
    )


@app.command()
def score(
    model_dir: Annotated[Path, typer.Argument(help="a model directory (model-best)")],
    input: Annotated[
        str, typer.Argument(help="CSV/TSV/JSONL file, text file (one per line), or -")
    ],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="output .jsonl or .csv (default: stdout)")
    ] = None,
    format: Annotated[
        str | None, typer.Option(help="csv|tsv|jsonl|lines (default: by name)")
    ] = None,
    text_field: Annotated[str, typer.Option(help="column/key of the text")] = "text",
    id_field: Annotated[
        str | None, typer.Option(help="column/key of the row id (default: line number)")
    ] = None,
    all_scores: Annotated[
        bool, typer.Option("--all-scores", help="the score of every label")
    ] = False,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="texts read, scored and written at a time")
    ] = 8192,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run into OUTPUT")] = False,
    skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows")] = False,
    shard: Annotated[
        str | None,
        typer.Option(help="K/N: score only shard K of N (0-based); `textcnn merge` joins them"),
    ] = None,
) -> None:
    """Score a large file in order, streaming in chunks; --resume continues an interrupted run."""
    from .predictor import load
    from .text.scoring import score_file

    err = Console(stderr=True)
    with user_errors():
        where = parse_shard(shard) if shard else None
        if where is None and "WORLD_SIZE" in os.environ:  # under torchrun: rank = shard
            where = (int(os.environ.get("RANK", "0")), int(os.environ["WORLD_SIZE"]))
            if output is None:
                raise ValueError("under torchrun every rank writes its own part: pass --output")
            output = str(rank_output(output, *where))
        classifier = load(model_dir)
        if classifier.task != "text":
            raise ValueError(f"{model_dir}: an image model; `textcnn score` scores text files")
        summary = score_file(
            classifier,
            input,
            output,
            input_format=format,
            text_field=text_field,
            id_field=id_field,
            all_scores=all_scores,
            chunk_size=chunk_size,
            resume=resume,
            skip_bad_rows=skip_bad_rows,
            shard=where,
        )
    counts = ", ".join(f"{label} {n}" for label, n in summary.labels.most_common())
    resumed = f" (after {summary.resumed_after} already written)" if summary.resumed_after else ""
    err.print(
        f"scored {summary.rows} rows{resumed} in {summary.seconds:.1f} s, "
        f"{summary.rows_per_second:,.0f} rows/s; labels: {counts or '-'}"
    )
    if summary.read.skipped:
        err.print(f"skipped bad rows: {dict(summary.read.skipped)}")


def run_torchrun(nproc: int, train_args: list[str]) -> int:
    """``textcnn train`` in ``nproc`` processes on this machine, started by torchrun's elastic
    agent (the rendezvous on a free local port); its exit status."""
    import subprocess

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc-per-node={nproc}", "-m", "textcnn", "train", *train_args]
    return subprocess.call(command)


def rank_output(output: str, rank: int, size: int) -> Path:
    """The part a torchrun rank writes: ``scores.jsonl`` → ``scores.part-0-of-4.jsonl``."""
    path = Path(output)
    return path.with_name(f"{path.stem}.part-{rank}-of-{size}{path.suffix}")


def parse_shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    if not (sep and k.strip().isdigit() and n.strip().isdigit()):
        raise typer.BadParameter(f"{text!r} is not K/N, e.g. 0/4")
    return int(k), int(n)


@app.command()
def merge(
    output: Annotated[str, typer.Argument(help="the merged .jsonl or .csv to write")],
    parts: Annotated[list[str], typer.Argument(help="the outputs of score --shard K/N")],
) -> None:
    """Join the outputs of `textcnn score --shard K/N` into one file in input order."""
    from .text.scoring import merge_shards

    with user_errors():
        rows = merge_shards(output, parts)
    Console(stderr=True).print(f"merged {len(parts)} parts, {rows} rows, into {output}")


@app.command()
def serve(
    model: Annotated[Path, typer.Option("--model", help="model directory to serve")] = Path(
        "runs/tweets/model-best"
    ),
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve POST /classify (and /health, /ready, /info, /metrics, /docs) with uvicorn."""
    import uvicorn

    from .card import load_card

    with user_errors():
        if load_card(model).task != "text":  # a clear message now, not a 503
            raise ValueError(f"{model}: an image model; `textcnn serve` serves text classifiers")
    os.environ["TEXTCNN_MODEL_DIR"] = str(model)
    # By import string: the library does not import the service package itself.
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
