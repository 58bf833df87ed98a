"""Text classification end to end: corpus → tokenizer → (vectors) → TextCNN → model directory."""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from ..artifacts import write_json
from ..models import TextCNN, TextCNNConfig
from ..text.builtin import BUILTIN_CORPORA, load_builtin
from ..text.classifier import TOKENIZER_FILE, TextClassifier, pad_batch
from ..text.corpora import Corpus, ReaderOptions, read_corpus
from ..text.splits import stratified_folds, stratified_split
from ..text.tokenizer import (
    PAD_ID,
    UNK_ID,
    encode,
    encode_batch,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from ..text.vectors import embedding_matrix, load_vectors, train_vectors
from .config import TrainConfig
from .metrics import classification_report
from .model_dir import model_meta, write_model_dir
from .trainer import Trainer, remove_checkpoint

log = logging.getLogger(__name__)
CHECKPOINT_TOKENIZER = "checkpoint-tokenizer.json"  # the tokenizer of an unfinished run


class TextBatches:
    """Token-id sequences and class indices; each batch is padded to its longest text."""

    def __init__(self, ids: list[list[int]], targets: torch.Tensor) -> None:
        self.ids = ids
        self.targets = targets
        self.lengths = [len(i) for i in ids]  # the trainer batches texts of similar length

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return pad_batch([self.ids[i] for i in indices]), self.targets[indices]


@dataclass
class Splits:
    train: Corpus
    dev: Corpus
    test: Corpus | None


def read_data(path: str, config: TrainConfig) -> Corpus:
    if path in BUILTIN_CORPORA and not Path(path).exists():
        return load_builtin(path)
    d = config.data
    options = ReaderOptions(d.text_field, d.label_field, d.skip_bad_rows, d.format)
    return read_corpus(path, options)


def load_splits(config: TrainConfig) -> Splits:
    """Given dev/test files as they are; otherwise a seeded, stratified dev split of train."""
    train = read_data(config.data.data, config)
    if config.data.dev:
        dev = read_data(config.data.dev, config)
    else:
        train, dev = hold_out_dev(train, config)
    test = read_data(config.data.test, config) if config.data.test else None
    return Splits(train, dev, test)


def hold_out_dev(corpus: Corpus, config: TrainConfig) -> tuple[Corpus, Corpus]:
    """(train, dev): a seeded, stratified ``dev_fraction`` of ``corpus`` held out."""
    fraction = config.data.dev_fraction
    kept, held = stratified_split(corpus.labels, fraction, config.training.seed)
    if not held:
        raise ValueError(
            f"{corpus.source}: {len(corpus)} rows are too few to hold out a dev split "
            f"({fraction:.0%} of every label, and a label needs 2 rows to give one); "
            "add rows, or pass a dev file with --dev"
        )
    return corpus.subset(kept), corpus.subset(held)


def class_weights(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (k * count): every class carries the same total weight."""
    counts = torch.bincount(targets, minlength=num_classes).float().clamp(min=1)
    return len(targets) / (num_classes * counts)


@dataclass
class FittedText:
    classifier: TextClassifier
    last_state: dict[str, torch.Tensor]
    model_config: TextCNNConfig
    best_epoch: int
    history: list[dict]
    vector_coverage: float | None
    seconds_per_epoch: float


def _embeddings(config: TrainConfig, tokenizer: Tokenizer, texts: list[str]):
    v = config.vectors
    if v.vectors and v.train_vectors:
        raise ValueError("use either --vectors or --train-vectors, not both")
    if not (v.vectors or v.train_vectors):
        if config.model.embedding_mode != "rand":
            raise ValueError(
                f"embedding mode {config.model.embedding_mode!r} needs word vectors: "
                "pass --vectors FILE or --train-vectors word2vec|fasttext"
            )
        return None
    if v.vectors:
        vectors = load_vectors(v.vectors, v.vectors_format)
    else:
        corpus = list(texts)
        if v.unlabeled:
            path = Path(v.unlabeled)
            if not path.is_file():
                raise ValueError(f"{path}: no such file (--unlabeled)")
            with path.open(encoding="utf-8", errors="replace") as handle:
                corpus += [line for line in handle if line.strip()]
        sentences = [e.tokens for e in encode_batch(tokenizer, corpus)]
        vectors = train_vectors(
            sentences,
            v.train_vectors,
            config.model.embed_dim,
            config.training.seed,
            v.vector_epochs,
        )
    return embedding_matrix(tokenizer.get_vocab(), vectors, {PAD_ID, UNK_ID}, config.training.seed)


def fit_text(
    config: TrainConfig,
    train: Corpus,
    dev: Corpus,
    workdir: Path,
    resume: bool = False,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> FittedText:
    """Tokenizer, vectors and network trained on ``train``, the best epoch picked on ``dev``."""
    labels = sorted(set(train.labels))
    if len(labels) < 2:
        raise ValueError(f"{train.source}: the training data has only one label ({labels[0]!r})")
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer_path = workdir / CHECKPOINT_TOKENIZER
    if resume and tokenizer_path.is_file():
        tokenizer = load_tokenizer(tokenizer_path)
    else:
        tokenizer = train_tokenizer(train.texts, config.tokenizer)
        save_tokenizer(tokenizer, tokenizer_path)
    init = _embeddings(config, tokenizer, train.texts)
    mode = config.model.embedding_mode
    if init is not None and mode == "rand":
        log.warning("word vectors given with embedding mode 'rand': using 'non-static'")
        mode = "non-static"
    model_config = TextCNNConfig(
        vocab_size=tokenizer.get_vocab_size(),
        embed_dim=init.matrix.shape[1] if init is not None else config.model.embed_dim,
        num_classes=len(labels),
        kernel_sizes=tuple(config.model.kernel_sizes),
        num_filters=config.model.num_filters,
        dropout=config.model.dropout,
        embedding_mode=mode,
        padding_idx=PAD_ID,
        wide=config.model.wide,
    )
    torch.manual_seed(config.training.seed)
    model = TextCNN(model_config, None if init is None else init.matrix)
    classifier = TextClassifier(model, tokenizer, labels)
    train_targets = classifier.label_ids(train.labels, train.source)
    dev_targets = classifier.label_ids(dev.labels, f"{dev.source} (dev)")
    weights = (
        class_weights(train_targets, len(labels)) if config.class_weights == "balanced" else None
    )
    trainer = Trainer(model, config.training, workdir, weights)
    result = trainer.fit(
        TextBatches(encode(tokenizer, train.texts), train_targets),
        TextBatches(encode(tokenizer, dev.texts), dev_targets),
        resume=resume,
        on_epoch_end=on_epoch_end,
    )
    model.load_state_dict(result.best_state)
    model.to("cpu").eval()
    seconds = [h["seconds"] for h in result.history]
    return FittedText(
        classifier=classifier,
        last_state=result.last_state,
        model_config=model_config,
        best_epoch=result.best_epoch,
        history=result.history,
        vector_coverage=None if init is None else init.coverage,
        seconds_per_epoch=statistics.median(seconds) if seconds else 0.0,
    )


def evaluate(classifier: TextClassifier, corpus: Corpus, name: str = "") -> dict:
    """Accuracy, macro-F1, per-class scores and confusion matrix of ``classifier`` on ``corpus``."""
    targets = classifier.label_ids(corpus.labels, corpus.source)
    predicted = classifier.predict_proba(corpus.texts).argmax(dim=1)
    report = classification_report(targets.numpy(), predicted.numpy(), classifier.labels)
    report["data"] = name or corpus.source
    return report


def train_text(
    config: TrainConfig, resume: bool = False, on_epoch_end: Callable[[dict], None] | None = None
) -> Path:
    """Train, evaluate, write ``output/model-best`` and ``output/model-last``; return model-best."""
    output = config.data.run_folder()
    splits = load_splits(config)
    log.info(
        "data: %d train, %d dev%s examples; labels %s",
        len(splits.train),
        len(splits.dev),
        f", {len(splits.test)} test" if splits.test else "",
        dict(Counter(splits.train.labels)),
    )
    fitted = fit_text(config, splits.train, splits.dev, output, resume, on_epoch_end)
    classifier = fitted.classifier
    meta = {
        **model_meta("text", "textcnn", output.name),
        "model": fitted.model_config.to_dict(),
        "labels": classifier.labels,
        "tokenizer": config.tokenizer.to_dict(),
        "settings": config.to_dict(),  # everything the run was given
        "data": {
            "train": {
                "source": splits.train.source,
                "examples": len(splits.train),
                "fingerprint": splits.train.fingerprint(),
            },
            "dev": {"source": splits.dev.source, "examples": len(splits.dev)},
        },
        "best_epoch": fitted.best_epoch,
        "epochs_run": len(fitted.history),
        "seconds_per_epoch": fitted.seconds_per_epoch,
        "vector_coverage": fitted.vector_coverage,
    }
    best_metrics = {"dev": evaluate(classifier, splits.dev, "dev")}
    if splits.test:
        best_metrics["test"] = evaluate(classifier, splits.test, "test")

    def save_tok(folder: Path) -> None:
        save_tokenizer(classifier.tokenizer, folder / TOKENIZER_FILE)

    write_model_dir(output / "model-best", classifier.model, meta, best_metrics, save_tok)
    last = TextClassifier(TextCNN(fitted.model_config), classifier.tokenizer, classifier.labels)
    last.model.load_state_dict(fitted.last_state)
    last_metrics = {"dev": evaluate(last, splits.dev, "dev")}
    write_model_dir(
        output / "model-last",
        last.model,
        {**meta, "epoch": len(fitted.history)},
        last_metrics,
        save_tok,
    )
    finish_run(output)
    return output / "model-best"


def finish_run(workdir: Path) -> None:
    """Drop the checkpoint and its tokenizer once nothing needs them to resume."""
    remove_checkpoint(workdir)
    (workdir / CHECKPOINT_TOKENIZER).unlink(missing_ok=True)


def cross_validate(
    config: TrainConfig, folds: int = 10, on_fold_end: Callable[[int, dict], None] | None = None
) -> dict:
    """k-fold cross-validation: each fold is tested once, the rest trained on with a dev split."""
    corpus = read_data(config.data.data, config)
    output = config.data.run_folder()
    results = []
    for i, test_indices in enumerate(stratified_folds(corpus.labels, folds, config.training.seed)):
        held = set(test_indices)
        rest = corpus.subset([j for j in range(len(corpus)) if j not in held])
        train, dev = hold_out_dev(rest, config)
        fitted = fit_text(config, train, dev, output / f"fold-{i + 1}")
        finish_run(output / f"fold-{i + 1}")
        report = evaluate(fitted.classifier, corpus.subset(test_indices), f"fold {i + 1}")
        fold = {
            "fold": i + 1,
            "accuracy": report["accuracy"],
            "macro_f1": report["macro_f1"],
            "best_epoch": fitted.best_epoch,
            "seconds_per_epoch": fitted.seconds_per_epoch,
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
    output.mkdir(parents=True, exist_ok=True)
    write_json(output / "cv.json", summary)
    return summary
