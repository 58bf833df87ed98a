"""``textcnn tune``: a search over the recipe and the hyper-parameters of a text model on the
dev split (or K folds of the training data), against a time budget, with Optuna.

One search space serves every corpus (:func:`suggest`): the recipe (every text recipe whose
embeddings are installed, the teacher on or off), filter widths and counts, dropout,
optimizer, learning rate and schedule, epochs, maximum length, n-gram buckets and the
embedding mode; settings given on the command line are kept fixed instead. The first trial
is the default recipe as it is, so the search starts from what ``textcnn train`` gives.
TPE picks the next settings; a trial whose dev score after an epoch (a fold) is below the
median of the earlier trials' at that point is stopped. The study lives in ``study.db``
(SQLite) in the run folder: ``resume`` continues it, keeping every finished trial, and
several processes can work on one study. The test split is read once, by the final model.

The run folder ends with ``model-best`` (the best trial's model, or with folds, the best
settings trained on the whole data), whose card records the search, and ``search/``:
``trials.csv``, ``importance.json``, ``progress.png`` and ``search.json``.
"""

from __future__ import annotations

import csv
import importlib.metadata
import logging
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..artifacts import WEIGHTS_FILE, atomic_directory, read_json, write_json
from ..card import load_card, save_card
from ..models.folded import table_bytes
from ..text.minilm import WHEEL as MINILM_WHEEL
from ..text.shipped_vectors import SOURCES
from .config import RECIPES, load_config
from .labels import label_counts
from .pipeline import (
    cross_validate,
    evaluate,
    fit_and_save,
    headline,
    load_splits,
    task_of,
)

log = logging.getLogger(__name__)

STUDY = "textcnn-tune"
MIN_DEV = 100  # dev texts below which one text moves accuracy by more than a point
WIDTHS = {"3,4,5": (3, 4, 5), "2,3,4": (2, 3, 4), "1,2,3": (1, 2, 3), "2,3,4,5": (2, 3, 4, 5)}
#: every searched setting, by its name in the study, with the setting it sets
SETTINGS = {
    "recipe": "recipe",
    "kernel_sizes": "model.kernel_sizes",
    "num_filters": "model.num_filters",
    "dropout": "model.dropout",
    "optimizer": "training.optimizer",
    "lr": "training.lr",
    "schedule": "training.schedule",
    "epochs": "training.epochs",
    "max_length": "tokenizer.max_length",
    "ngram_buckets": "model.ngram_buckets",
    "embedding_mode": "model.embedding_mode",
}
LEARNING_RATES = {"adadelta": (0.1, 3.0), "adamw": (1e-4, 1e-2)}  # log-uniform ranges


@dataclass
class TuneOptions:
    budget: float  # seconds of search; a trial under way when it runs out is finished
    metric: str = "accuracy"  # accuracy | macro_f1 | f1:LABEL (that label's F1)
    max_model_mb: float | None = None  # weights plus the folded tables
    folds: int = 0  # > 1: score each trial by K-fold cross-validation of the training data
    trials: int | None = None  # stop after this many trials (of the study, resumed ones too)
    resume: bool = False
    nproc: int = 1  # processes working on the study (each with its share of the threads)
    join: int = 0  # > 0: helper k of another `tune` (--nproc): search only, no final model
    progress: bool = True


def parse_budget(text: str) -> float:
    """Seconds of ``20m``, ``1h30m``, ``90s`` or ``600``."""
    parts = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*", text
    )
    if not text.strip() or parts is None or not any(parts.groups()):
        raise ValueError(f"--budget {text!r}: give a time such as 20m, 1h30m, 90s or 600")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in parts.groups())
    total = 3600 * hours + 60 * minutes + seconds
    if total <= 0:
        raise ValueError(f"--budget {text!r} must be positive")
    return total


TEACHER_BUDGET = 3600  # seconds of search from which a CPU-only search tries the teacher


def available_recipes(budget: float) -> list[str]:
    """The text recipes whose embeddings (and teacher) are installed here. ``distilled``
    fine-tunes MiniLM before the CNN: a trial of it takes 10 minutes and more on two
    cores, so without a GPU it is searched only from a budget of an hour."""

    def installed(wheel: str) -> bool:
        try:
            importlib.metadata.distribution(wheel)
            return True
        except importlib.metadata.PackageNotFoundError:
            return False

    minilm = installed(MINILM_WHEEL)
    glove = installed(SOURCES["glove-6b-50d"].wheel) and installed("pyarrow")
    import torch

    teacher = minilm and (torch.cuda.is_available() or budget >= TEACHER_BUDGET)
    needs = {
        "glove": glove,
        "minilm-wordpiece": minilm,
        "minilm-ngram": minilm,
        "distilled": teacher,
    }
    return [name for name in RECIPES if needs.get(name, True)]


def suggest(trial, recipes: list[str], fixed: set[str], given_recipe: str) -> dict[str, Any]:
    """The settings of ``trial`` (``section.key`` overrides), the ``fixed`` ones (given on
    the command line) left out; ``given_recipe`` is the recipe when it is fixed."""

    def pick(name: str, draw) -> None:
        if not {name, SETTINGS[name], SETTINGS[name].split(".")[-1]} & fixed:
            out[SETTINGS[name]] = draw()

    out: dict[str, Any] = {}
    pick("recipe", lambda: trial.suggest_categorical("recipe", recipes))
    recipe = RECIPES[out.get("recipe", given_recipe)]
    pick("kernel_sizes", lambda: WIDTHS[trial.suggest_categorical("kernel_sizes", list(WIDTHS))])
    pick("num_filters", lambda: trial.suggest_int("num_filters", 50, 300, step=50))
    pick("dropout", lambda: trial.suggest_float("dropout", 0.1, 0.7))
    pick("optimizer", lambda: trial.suggest_categorical("optimizer", list(LEARNING_RATES)))
    optimizer = out.get("training.optimizer")
    if optimizer is not None:  # each optimizer its own range: two settings in the study
        low, high = LEARNING_RATES[optimizer]
        pick("lr", lambda: trial.suggest_float(f"lr_{optimizer}", low, high, log=True))
    pick("schedule", lambda: trial.suggest_categorical("schedule", ["constant", "cosine"]))
    pick("epochs", lambda: trial.suggest_int("epochs", 5, 25, step=5))
    pick("max_length", lambda: trial.suggest_categorical("max_length", [32, 64, 128, 256]))
    if recipe.get("model.ngram_buckets"):
        pick("ngram_buckets", lambda: 2 ** trial.suggest_int("ngram_buckets_log2", 16, 20))
    if recipe.get("vectors.vectors"):
        modes = ["static", "non-static", "multichannel"]
        pick("embedding_mode", lambda: trial.suggest_categorical("embedding_mode", modes))
    return out


def default_params(recipe: str, multi_label: bool) -> dict:
    """The study's parameters of ``textcnn train`` as it is (the first trial): the recipe and
    the settings' defaults, with the optimizer ``auto`` picks."""
    optimizer = "adamw" if multi_label else "adadelta"
    return {
        "recipe": recipe,
        "kernel_sizes": "3,4,5",
        "num_filters": 100,
        "dropout": 0.5,
        "optimizer": optimizer,
        f"lr_{optimizer}": 1e-3 if multi_label else 1.0,
        "schedule": "constant",
        "epochs": 25,
        "max_length": 256,
        "ngram_buckets_log2": 18,
        "embedding_mode": "non-static",
    }


class BudgetTooShort(ValueError):
    """The first trial ran past the whole budget."""


class Search:
    """One ``textcnn tune`` run: the study, its trials, the final model."""

    def __init__(self, base: dict, config_file: Path | None, options: TuneOptions) -> None:
        import optuna

        self.optuna = optuna
        self.options = options
        self.base = {**base, "progress": False}
        self.config_file = config_file
        self.config = load_config(config_file, {**self.base, "test": None})
        if self.config.task != "text":
            raise ValueError("textcnn tune searches text models; --arch is for `textcnn train`")
        self.output = self.config.data.run_folder()
        self.trials_dir = self.output / "trials"
        self.recipes = available_recipes(options.budget)
        self.fixed = set(base) - {"data", "dev", "test", "output", "seed", "device"}
        self.deadline = 0.0
        self.too_short: str | None = None

    def check_data(self) -> bool:
        """The metric names a label of the data, and the dev split can rank trials; whether
        the data are multi-label."""
        task = task_of(self.config)
        splits = load_splits(task, self.config)
        labels = set(label_counts(splits.train))
        metric = self.options.metric
        if metric not in ("accuracy", "macro_f1") and not metric.startswith("f1:"):
            raise ValueError(f"--metric must be accuracy, macro_f1 or f1:LABEL, got {metric!r}")
        if metric.startswith("f1:") and metric[3:] not in labels:
            shown = ", ".join(sorted(labels)[:20])
            raise ValueError(f"--metric {metric}: no label {metric[3:]!r} in the data ({shown})")
        if self.options.folds < 2 and len(splits.dev) < MIN_DEV:
            step = 100 / max(1, len(splits.dev))
            raise ValueError(
                f"the dev split has {len(splits.dev)} texts: one text moves the score by "
                f"{step:.1f} points, more than trials differ by, so it cannot rank them; give "
                f"a dev file of {MIN_DEV}+ texts (--dev), a larger --dev-fraction, or --folds 5"
            )
        return splits.train.multi_label

    def study(self, multi_label: bool):
        optuna = self.optuna
        database = self.output / "study.db"
        if database.exists() and not (self.options.resume or self.options.join):
            raise ValueError(
                f"{self.output} holds a search already: continue it with --resume, or choose "
                "another --output"
            )
        self.output.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials: one line each, below
        seed = self.config.training.seed + self.options.join  # helpers: draws of their own
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
        study = optuna.create_study(
            storage=f"sqlite:///{database}",
            study_name=STUDY,
            direction="maximize",
            sampler=sampler,
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            load_if_exists=True,
        )
        # the recipes of a study stay those it began with (a resumed one may have another
        # budget): a setting's choices may not change within a study
        if "recipes" not in study.user_attrs and not self.options.join:
            study.set_user_attr("recipes", self.recipes)
        self.recipes = study.user_attrs.get("recipes", self.recipes)
        if self.options.join:
            return study
        running = optuna.trial.TrialState.RUNNING
        for stale in study.get_trials(deepcopy=False, states=(running,)):  # killed mid-trial
            study._storage.set_trial_state_values(stale._trial_id, optuna.trial.TrialState.FAIL)
            shutil.rmtree(self.trials_dir / f"trial-{stale.number}", ignore_errors=True)
        if not study.trials:  # the first trial: what `textcnn train` does
            study.enqueue_trial(default_params(self.config.recipe, multi_label))
        return study

    def objective(self, trial) -> float:
        overrides = suggest(trial, self.recipes, self.fixed, self.config.recipe)
        folder = self.trials_dir / f"trial-{trial.number}"
        shutil.rmtree(folder, ignore_errors=True)
        settings = {**self.base, **overrides, "test": None, "output": str(folder)}
        config = load_config(self.config_file, settings)
        shown = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
        trial.set_user_attr("settings", shown)
        trial.set_user_attr("recipe", config.recipe)
        started = time.perf_counter()
        try:
            if self.options.folds > 1:
                return self._folds(trial, config)
            return self._dev(trial, config, folder, started)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 1))

    def _stop_if_over(self, trial, step: int, started: float, steps: int, unit: str) -> None:
        """The first trial may not outlast the whole budget: the search could not rank
        anything, so it says how long a trial takes instead."""
        if time.time() < self.deadline or _finished(trial.study):
            return
        took = time.perf_counter() - started
        self.too_short = (
            f"the budget ({_clock(self.options.budget)}) is shorter than one trial: trial "
            f"{trial.number} took {_clock(took)} for {step} of up to {steps} {unit}; "
            f"give --budget {math.ceil(took / step * steps * 5 / 60)}m or more (five trials)"
        )
        raise BudgetTooShort(self.too_short)

    def _dev(self, trial, config, folder: Path, started: float) -> float:
        def epoch_end(record: dict) -> None:
            key = next(k for k in record if k.startswith("dev_") and k != "dev_loss")
            trial.report(record[key], record["epoch"])
            self._stop_if_over(trial, record["epoch"], started, config.training.epochs, "epochs")
            if trial.should_prune():
                raise self.optuna.TrialPruned(f"pruned after epoch {record['epoch']}")

        model_dir = fit_and_save(config, on_epoch_end=epoch_end)
        card = load_card(model_dir)
        size = (model_dir / WEIGHTS_FILE).stat().st_size + table_bytes(card.model)
        trial.set_user_attr("model_mb", round(size / 2**20, 1))
        if self.options.max_model_mb is not None:  # the sampler learns to stay under it
            over = max(0.0, size / 2**20 - self.options.max_model_mb)
            trial.set_user_attr("over_mb", over)
            trial.set_constraint("model_mb", over)
        shutil.rmtree(folder / "model-last", ignore_errors=True)
        return metric_of(read_json(model_dir / "metrics.json")["dev"], self.options.metric)

    def _folds(self, trial, config) -> float:
        scores: list[float] = []
        started = time.perf_counter()

        def fold_end(number: int, fold: dict) -> None:
            scores.append(metric_of(fold, self.options.metric))
            trial.report(statistics.mean(scores), number)
            self._stop_if_over(trial, number, started, self.options.folds, "folds")
            if trial.should_prune():
                raise self.optuna.TrialPruned(f"pruned after fold {number}")

        cross_validate(config, self.options.folds, fold_end)
        shutil.rmtree(config.data.run_folder(), ignore_errors=True)
        return statistics.mean(scores)

    def keep_best(self, study) -> None:
        """Delete the folders of every finished trial but the best one."""
        best = best_trial(study)
        for trial in study.get_trials(deepcopy=False):
            if trial.state.is_finished() and (best is None or trial.number != best.number):
                shutil.rmtree(self.trials_dir / f"trial-{trial.number}", ignore_errors=True)

    def run(self) -> dict:
        from tqdm.auto import tqdm

        started = time.time()
        self.deadline = started + self.options.budget
        if self.options.nproc > 1:  # the cores shared among the processes
            import torch

            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.options.nproc))
        study = self.study(self.check_data())
        helpers = self._helpers()
        wanted = None
        if self.options.trials is not None:
            wanted = max(0, self.options.trials - len(_finished(study)))
        bar = tqdm(desc="tune", unit="trial", disable=not self.options.progress or None)

        def after(study, trial) -> None:
            if trial.state == self.optuna.trial.TrialState.FAIL and not self.too_short:
                reason = trial.system_attrs.get("fail_reason", "").strip().splitlines()
                log.warning("trial %d failed: %s", trial.number, reason[-1] if reason else "?")
            self.keep_best(study)
            best = best_trial(study)
            left = _clock(max(0.0, self.deadline - time.time()))
            bar.update(1)
            bar.set_postfix_str(
                f"best {best.value:.4f} (trial {best.number}), {left} left"
                if best
                else f"{left} left"
            )
            if self.too_short or (
                self.options.trials is not None and len(_finished(study)) >= self.options.trials
            ):
                study.stop()

        if wanted != 0:
            study.optimize(
                self.objective,
                n_trials=wanted,
                timeout=max(1.0, self.deadline - time.time()),
                callbacks=[after],
                catch=(ValueError, RuntimeError),  # a failed trial is recorded; the search goes on
            )
        bar.close()
        for helper in helpers:
            helper.wait()
        if self.options.join:
            return {}
        return self.finish(study, started)

    def _helpers(self) -> list[subprocess.Popen]:
        """With ``nproc`` > 1, the other processes: this command again, with ``--join``."""
        if self.options.nproc < 2 or self.options.join:
            return []
        command = [sys.executable, "-m", "textcnn.cli", *sys.argv[1:], "--no-progress"]
        return [
            subprocess.Popen([*command, "--join", str(k)]) for k in range(1, self.options.nproc)
        ]

    def finish(self, study, started: float) -> dict:
        states = self.optuna.trial.TrialState
        finished = _finished(study)
        best = best_trial(study)
        if best is None:
            if self.too_short:
                raise ValueError(self.too_short + "; --resume continues this search")
            failed = [t for t in finished if t.state == states.FAIL]
            reason = failed[-1].system_attrs.get("fail_reason", "") if failed else ""
            why = reason.strip().splitlines()[-1] if reason else "none within --max-model-mb"
            raise ValueError(f"no trial finished: {why}")
        seconds = [t.user_attrs["seconds"] for t in finished if "seconds" in t.user_attrs]
        search = {
            "budget_s": self.options.budget,
            "seconds": round(time.time() - started, 1),
            "metric": self.options.metric,
            "folds": self.options.folds if self.options.folds > 1 else None,
            "trials": len(finished),
            "complete": sum(t.state == states.COMPLETE for t in finished),
            "pruned": sum(t.state == states.PRUNED for t in finished),
            "failed": sum(t.state == states.FAIL for t in finished),
            "trial_seconds_median": statistics.median(seconds) if seconds else None,
            "best_trial": best.number,
            "recipe": best.user_attrs.get("recipe"),
            "settings": dict(best.user_attrs.get("settings", {})),
            "dev_score": best.value,
            "seed": self.config.training.seed,
        }
        model_dir = self._final_model(best, search["settings"])
        save_card(replace(load_card(model_dir), search=search), model_dir)
        write_report(self.output / "search", study, search)
        return {"model_dir": str(model_dir), **search}

    def _final_model(self, best, settings: dict) -> Path:
        """``output/model-best``: the best trial's model with the test split scored now,
        once; with folds, the best settings trained on the training data."""
        final = load_config(self.config_file, {**self.base, **settings, "output": str(self.output)})
        if self.options.folds > 1:
            return fit_and_save(final)
        target = self.output / "model-best"
        with atomic_directory(target) as tmp:
            shutil.copytree(
                self.trials_dir / f"trial-{best.number}" / "model-best", tmp, dirs_exist_ok=True
            )
            if final.data.test:
                from ..loading import load

                task = task_of(final)
                metrics = read_json(tmp / "metrics.json")
                test = load_splits(task, final).test
                metrics["test"] = evaluate(load(tmp), task, test, "test")
                write_json(tmp / "metrics.json", metrics)
                save_card(replace(load_card(tmp), metrics=headline(metrics)), tmp)
        shutil.rmtree(self.trials_dir, ignore_errors=True)
        return target


def metric_of(report: dict, metric: str) -> float:
    """``metric`` of an evaluation report (or a cross-validation fold)."""
    if metric.startswith("f1:"):
        per_class = report.get("per_class") or {}
        if metric[3:] in per_class:
            return float(per_class[metric[3:]]["f1"])
        return float(report.get("f1", {}).get(metric[3:], 0.0))
    if metric == "accuracy":
        return float(report.get("accuracy", report.get("subset_accuracy", 0.0)))
    return float(report[metric])


def best_trial(study):
    """The best finished trial within the size limit, or None."""
    import optuna

    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.user_attrs.get("over_mb", 0.0) <= 0
    ]
    return max(complete, key=lambda t: (t.value, -t.number), default=None)


def _finished(study) -> list:
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def write_report(folder: Path, study, search: dict) -> None:
    """trials.csv, importance.json, progress.png and search.json in ``folder``."""
    import optuna

    with atomic_directory(folder) as tmp:
        trials = study.get_trials(deepcopy=False)
        names = sorted({name for t in trials for name in t.params})
        with (tmp / "trials.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["trial", "status", "score", "seconds", "model_mb", *names])
            for t in trials:
                writer.writerow(
                    [
                        t.number,
                        t.state.name.lower(),
                        "" if t.value is None else f"{t.value:.4f}",
                        t.user_attrs.get("seconds", ""),
                        t.user_attrs.get("model_mb", ""),
                        *(t.params.get(name, "") for name in names),
                    ]
                )
        try:
            with warnings.catch_warnings():  # "importances will be equal": said by the values
                warnings.simplefilter("ignore")
                importance = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as error:  # too few finished trials to tell
            importance = {"unknown": str(error).splitlines()[0]}
        write_json(
            tmp / "importance.json",
            {k: round(v, 4) if isinstance(v, float) else v for k, v in importance.items()},
        )
        write_json(tmp / "search.json", search)
        plot_progress(trials, tmp / "progress.png")


def plot_progress(trials, path: Path) -> None:
    """Each finished trial's score against the minutes since the search began, and the best
    so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in trials if t.value is not None and t.datetime_complete is not None]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if done:
        begin = min(t.datetime_start for t in trials if t.datetime_start is not None)
        minutes = [(t.datetime_complete - begin).total_seconds() / 60 for t in done]
        values = [t.value for t in done]
        order = sorted(range(len(done)), key=lambda i: minutes[i])
        best, curve = -math.inf, []
        for i in order:
            best = max(best, values[i])
            curve.append(best)
        ax.scatter(minutes, values, s=14, label="trial")
        ax.step([minutes[i] for i in order], curve, where="post", color="C1", label="best so far")
        ax.legend(loc="lower right")
    ax.set_xlabel("minutes")
    ax.set_ylabel("dev score")
    ax.set_title("textcnn tune")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def tune(base: dict, config_file: Path | None, options: TuneOptions) -> dict:
    """``textcnn tune``: search, then write ``output/model-best`` and ``output/search/``."""
    search = Search(base, config_file, options)
    try:
        return search.run()
    except KeyboardInterrupt:
        raise ValueError(
            f"interrupted; the finished trials are kept: continue with `textcnn tune ... "
            f"--output {search.output} --resume` (the same settings)"
        ) from None
