"""One training pipeline for every task: data → fit → evaluate → model directories.

A :class:`~textcnn.training.task.Task` (text, image) supplies what differs: how its data
is read and split, which network is built and how batches are made, and the predictor and
card of the result. Everything else (the loop, early stopping, checkpoints, evaluation, the atomic
model directories, cross-validation) is here once.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from ..artifacts import (
    CONFUSION_FILE,
    LABEL_F1_FILE,
    METRICS_FILE,
    RELIABILITY_FILE,
    WEIGHTS_FILE,
    atomic_directory,
    file_sha256,
    save_tensors,
    write_json,
)
from ..card import Card, save_card
from ..images.classifier import ImageClassifier
from ..predictor import Predictor
from ..text.classifier import TextClassifier
from ..text.corpora import ReaderOptions
from ..text.splits import stratified_folds, stratified_split
from .calibration import calibration_report, plot_reliability
from .checkpoint import remove_checkpoint
from .config import ImageTrainConfig, TextTrainConfig, TrainConfig
from .distributed import World, join, leave
from .image import ImageTask
from .launch import run_processes
from .metrics import (
    MAX_PICTURED_CLASSES,
    classification_report,
    multilabel_report,
    plot_evaluation,
)
from .optim import pick_device
from .task import Dataset, Run, Splits, Task
from .text import TextTask

log = logging.getLogger(__name__)

# The task of a run's settings and of a trained predictor.
TASKS: dict[type, type[Task]] = {
    TextTrainConfig: TextTask,
    ImageTrainConfig: ImageTask,
    TextClassifier: TextTask,
    ImageClassifier: ImageTask,
}


def task_of(config_or_predictor: TrainConfig | Predictor) -> Task:
    return TASKS[type(config_or_predictor)]()


def load_splits(task: Task, config: TrainConfig) -> Splits:
    """Given dev/test data as they are; otherwise a seeded, stratified dev split of train."""
    d = config.data
    if d.stream:
        if not isinstance(task, TextTask):
            raise ValueError("--stream reads text files; image data are read as they are")
        return task.read_streamed(config)
    train = task.read(config, d.data)
    if d.dev:
        dev = task.read(config, d.dev, train)
    else:
        train, dev = hold_out_dev(task, train, config)
    test = task.read(config, d.test, train) if d.test else None
    return Splits(train, dev, test)


def hold_out_dev(task: Task, data: Dataset, config: TrainConfig) -> tuple[Dataset, Dataset]:
    """(train, dev): a seeded, stratified ``dev_fraction`` of ``data`` held out."""
    fraction = config.data.dev_fraction
    kept, held = stratified_split(task.class_names(data), fraction, config.training.seed)
    if not held:
        raise ValueError(
            f"{data.source}: {len(data)} rows are too few to hold out a dev split "
            f"({fraction:.0%} of every label, and a label needs 2 rows to give one); "
            "add rows, or pass a dev file with --dev"
        )
    return data.subset(kept), data.subset(held)


def evaluate(
    predictor: Predictor, task: Task, data: Dataset, name: str = "", min_score: float | None = None
) -> dict:
    """How ``predictor`` does on ``data``: accuracy, macro-F1, per-class scores and the
    confusion matrix (multi-label: micro and macro F1, per-label scores, subset accuracy,
    Hamming loss), and its calibration (expected calibration error and log-loss, before and
    after). With ``min_score``, also the share of texts it answers there and how well."""
    inputs, targets = task.examples(predictor, data)
    targets = torch.as_tensor(targets)
    probabilities = predictor.predict_proba(inputs)
    chosen = predictor.assigned(probabilities)
    if predictor.multi_label:
        report = multilabel_report(targets.numpy(), chosen.numpy(), predictor.labels)
    else:
        predicted = chosen.float().argmax(1).numpy()
        report = classification_report(targets.numpy(), predicted, predictor.labels)
    temperature = predictor.card.temperature if predictor.card is not None else 1.0
    raw = probabilities if temperature == 1 else predictor.predict_proba(inputs, calibrated=False)
    report["calibration"] = calibration_report(raw, probabilities, targets, predictor.multi_label)
    if min_score is not None:
        report["abstention"] = abstention_report(probabilities, chosen, targets, min_score)
    report["data"] = name or data.source
    return report


def abstention_report(probabilities, chosen, targets, min_score: float) -> dict:
    """With answers only when the top score reaches ``min_score``: the share of texts
    answered (coverage) and the accuracy (multi-label: micro-F1) on them."""
    covered = probabilities.max(1).values >= min_score
    report = {
        "min_score": min_score,
        "coverage": float(covered.float().mean()) if len(covered) else 0.0,
    }
    if chosen.shape[1] and covered.any():
        mine, truth = chosen[covered], targets[covered]
        if truth.dim() == 1:
            report["accuracy_covered"] = float((mine.float().argmax(1) == truth).float().mean())
        else:
            true_pos = (mine & truth.bool()).sum().item()
            report["micro_f1_covered"] = (
                2 * true_pos / max(1, mine.sum().item() + truth.sum().item())
            )
    report["covered"] = int(covered.sum())
    return report


def evaluate_data(
    predictor: Predictor,
    spec: str,
    options: ReaderOptions | None = None,
    min_score: float | None = None,
) -> dict:
    """:func:`evaluate` on the labelled data named by ``spec``, read with ``options`` (the
    format, the columns) as ``predictor`` needs it."""
    task = task_of(predictor)
    data = task.read_for(predictor, spec, options or ReaderOptions())
    return evaluate(predictor, task, data, min_score=min_score)


def train_model(
    config: TrainConfig, resume: bool = False, nproc: int = 1, argv: list[str] | None = None
) -> Path | None:
    """``textcnn train``: :func:`fit_and_save`, or with ``nproc`` > 1 (and not already under
    torchrun) the same command (``argv``) in ``nproc`` processes. The model-best directory
    for the process that reports it (the only one, or rank 0); None for the others. A
    failed or interrupted run is a ``ValueError`` that says how to resume it."""
    again = f"textcnn train --output {config.data.run_folder()} --resume"
    world = World.from_env()
    if nproc > 1 and not world.under_torchrun:
        if not run_processes(nproc, without_nproc(argv or [])):
            raise ValueError(
                f"a training process failed (see above); the checkpoint keeps every finished "
                f"epoch: continue with `{again} --nproc {nproc}` (same settings)"
            )
        return None  # rank 0 has reported
    try:
        model_dir = fit_and_save(config, resume=resume)
    except KeyboardInterrupt:
        raise ValueError(f"interrupted; continue with: {again}") from None
    except RuntimeError as error:  # under torchrun, a collective failed: a rank died or hangs
        if world.size == 1:
            raise
        raise ValueError(
            f"lost the other training processes ({str(error).splitlines()[0][:200]}); "
            f"continue with `{again}` and the same number of processes"
        ) from None
    return model_dir if world.is_main else None


def without_nproc(argv: list[str]) -> list[str]:
    """The command line again, for each of the processes, less ``--nproc N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def fit_and_save(
    config: TrainConfig, resume: bool = False, on_epoch_end: Callable[[dict], None] | None = None
) -> Path:
    """Train, evaluate, write ``output/model-best`` and ``output/model-last``; return model-best.

    The test data scores the chosen model only; model-last gets its dev scores."""
    task = task_of(config)
    world = join_world(config)
    output = config.data.run_folder()
    splits = load_splits(task, config)
    log.info("data: %s", task.describe(splits))
    run = Run(output, resume, on_epoch_end, world, identity(splits.train, splits.dev))
    fitted = task.fit(config, splits.train, splits.dev, run)
    if not world.is_main:  # rank 0 evaluates and writes; the others are done
        leave()
        return output / "model-best"
    predictor, result = fitted.predictor, fitted.result
    seconds = [h["seconds"] for h in result.history]
    card = replace(
        fitted.card,
        best_epoch=result.best_epoch,
        epochs_run=len(result.history),
        seconds_per_epoch=statistics.median(seconds) if seconds else 0.0,
        world_size=world.size,
    )
    for folder, state in (("model-best", result.best_state), ("model-last", result.last_state)):
        predictor.model.load_state_dict(state)
        predictor.model.eval()
        metrics = {"dev": evaluate(predictor, task, splits.dev, "dev")}
        if splits.test is not None and folder == "model-best":
            metrics["test"] = evaluate(predictor, task, splits.test, "test")
        last = None if folder == "model-best" else len(result.history)
        write_model_dir(output / folder, predictor, replace(card, epoch=last), metrics, task)
    predictor.model.load_state_dict(result.best_state)
    remove_checkpoint(output)
    task.finish(output)
    leave()
    return output / "model-best"


def join_world(config: TrainConfig) -> World:
    """The torchrun group this process is a rank of (see :mod:`.distributed`), or one
    process; only rank 0 logs progress."""
    world = join(pick_device(config.training.device), config.training.timeout)
    if not world.is_main:
        logging.getLogger("textcnn").setLevel(logging.WARNING)
    return world


def identity(train: Dataset, dev: Dataset) -> dict:
    """What identifies a run's data: a resumed run must be given the same."""
    return {
        "train": {"source": train.source, "fingerprint": train.fingerprint()},
        "dev": {"source": dev.source, "fingerprint": dev.fingerprint()},
    }


def write_model_dir(path: Path, predictor, card: Card, metrics: dict, task: Task) -> None:
    """config.json (with the weights' sha256), model.safetensors, metrics.json, the
    evaluation picture (confusion.png up to :data:`MAX_PICTURED_CLASSES` classes, or a
    multi-label model's label_f1.png), reliability.png and the task's own files, all at
    once: a temporary folder, then a rename."""
    with atomic_directory(path) as tmp:
        save_tensors(predictor.model.state_dict(), tmp / WEIGHTS_FILE)
        task.write_files(predictor, tmp)
        write_json(tmp / METRICS_FILE, metrics)
        shown = metrics.get("test") or metrics.get("dev")
        title = f"{path.name} on {shown['data']}"
        if len(shown["labels"]) <= MAX_PICTURED_CLASSES:
            picture = LABEL_F1_FILE if shown.get("multi_label") else CONFUSION_FILE
            plot_evaluation(shown, tmp / picture, title)
        plot_reliability(shown["calibration"], tmp / RELIABILITY_FILE, title)
        digest = file_sha256(tmp / WEIGHTS_FILE)
        save_card(replace(card, metrics=headline(metrics), weights_sha256=digest), tmp)


HEADLINE = ("accuracy", "micro_f1", "macro_f1", "subset_accuracy", "examples")


def headline(metrics: dict) -> dict:
    """The main scores and size of every evaluated split, and its calibration error, for
    the card."""
    return {
        split: {key: r[key] for key in HEADLINE if key in r}
        | {"ece": round(r["calibration"]["ece_after"], 4)}
        for split, r in metrics.items()
    }


def cross_validate(
    config: TrainConfig,
    folds: int = 10,
    on_fold_end: Callable[[int, dict], None] | None = None,
    max_folds: int | None = None,
) -> dict:
    """k-fold cross-validation: each fold is tested once, the rest trained on with a dev split.
    ``max_folds`` runs only the first folds (the same splits), when each costs minutes."""
    task = task_of(config)
    if config.data.stream:
        raise ValueError("cross-validation splits a corpus in memory; drop --stream")
    world = join_world(config)
    data = task.read(config, config.data.data)
    output = config.data.run_folder()
    results = []
    labels = task.class_names(data)
    splits = stratified_folds(labels, folds, config.training.seed)[:max_folds]
    for i, test_indices in enumerate(splits):
        held = set(test_indices)
        rest = data.subset([j for j in range(len(data)) if j not in held])
        train, dev = hold_out_dev(task, rest, config)
        workdir = output / f"fold-{i + 1}"
        fitted = task.fit(config, train, dev, Run(workdir, world=world, data=identity(train, dev)))
        fitted.predictor.model.load_state_dict(fitted.result.best_state)
        fitted.predictor.model.eval()
        if world.is_main:
            remove_checkpoint(workdir)
            task.finish(workdir)
        report = evaluate(fitted.predictor, task, data.subset(test_indices), f"fold {i + 1}")
        seconds = [h["seconds"] for h in fitted.result.history]
        fold = {
            "fold": i + 1,
            "accuracy": report.get("accuracy", report.get("subset_accuracy")),  # multi: all right
            "macro_f1": report["macro_f1"],
            "f1": {label: scores["f1"] for label, scores in report["per_class"].items()},
            "best_epoch": fitted.result.best_epoch,
            "seconds_per_epoch": statistics.median(seconds) if seconds else 0.0,
            "teacher": getattr(fitted.card, "teacher", None),  # text cards have one
        }
        results.append(fold)
        if on_fold_end is not None:
            on_fold_end(i + 1, fold)
    accuracies = [r["accuracy"] for r in results]
    summary = {
        "folds": results,
        "accuracy_mean": statistics.mean(accuracies),
        "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
        "macro_f1_mean": statistics.mean(r["macro_f1"] for r in results),
        "seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in results),
    }
    if world.is_main:
        output.mkdir(parents=True, exist_ok=True)
        write_json(output / "cv.json", summary)
    leave()
    return summary


def compare_recipes(
    configs: dict[str, TrainConfig],
    folds: int,
    on_fold_end: Callable[[str, int, dict], None] | None = None,
) -> dict[str, dict]:
    """:func:`cross_validate` of each recipe's settings on the same folds, each in a folder
    of its own (``output/<recipe>``); the summaries by recipe."""
    results = {}
    for name, config in configs.items():
        folder = config.data.run_folder() / name
        config = replace(config, data=replace(config.data, output=str(folder)))
        report = None if on_fold_end is None else (lambda i, f, name=name: on_fold_end(name, i, f))
        results[name] = cross_validate(config, folds, report)
    return results
