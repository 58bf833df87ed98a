"""Text classification end to end: corpus → tokenizer → (vectors) → TextCNN → model directory."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from ..artifacts import TOKENIZER_FILE
from ..card import TextCard
from ..models import TextCNN
from ..text.builtin import BUILTIN_CORPORA, load_builtin
from ..text.classifier import TextClassifier, pad_batch
from ..text.corpora import Corpus, ReaderOptions, read_corpus
from ..text.shipped_vectors import SOURCES, shipped_vectors
from ..text.tokenizer import (
    PAD_ID,
    UNK_ID,
    clean_text,
    encode,
    encode_batch,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from ..text.vectors import embedding_matrix, load_vectors, train_vectors
from .config import TextTrainConfig, run_settings
from .distill import DISTILLED_FILE, distilled_set, load_distilled, save_distilled
from .distributed import local_device
from .objectives import Distillation, SingleLabel
from .optim import pick_device
from .task import Fitted, Run, Splits
from .trainer import Trainer

log = logging.getLogger(__name__)
CHECKPOINT_TOKENIZER = "checkpoint-tokenizer.json"  # the tokenizer of an unfinished run
TEACHER_DIR = "teacher"  # the teacher's checkpoint while it is fine-tuned


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


def read_texts(spec: str, options: ReaderOptions) -> Corpus:
    """The corpus of a file or folder, or a built-in corpus name (``tweets``)."""
    if spec in BUILTIN_CORPORA and not Path(spec).exists():
        return load_builtin(spec)
    return read_corpus(spec, options)


def reader_options(config: TextTrainConfig) -> ReaderOptions:
    d = config.data
    return ReaderOptions(d.text_field, d.label_field, d.skip_bad_rows, d.format)


def class_weights(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (k * count): every class carries the same total weight."""
    counts = torch.bincount(targets, minlength=num_classes).float().clamp(min=1)
    return len(targets) / (num_classes * counts)


def unlabeled_texts(config: TextTrainConfig) -> list[str]:
    """The non-blank lines of ``data.unlabeled`` (none without one)."""
    if not config.data.unlabeled:
        return []
    path = Path(config.data.unlabeled)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (--unlabeled)")
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [clean_text(line.strip()) for line in handle if line.strip()]


def _distilled(config: TextTrainConfig, labels: list[str], train: Corpus, dev: Corpus, run: Run):
    """The teacher's soft-labelled training set (see :mod:`.distill`): made by rank 0 and kept
    beside the checkpoint, so that the other ranks and a resumed run use the same one."""
    path = run.workdir / DISTILLED_FILE
    if run.world.is_main and not (run.resume and path.is_file()):
        index = {label: i for i, label in enumerate(labels)}

        def pairs(corpus: Corpus) -> tuple[list[str], torch.Tensor]:
            known = [i for i, label in enumerate(corpus.labels) if label in index]
            texts = [corpus.texts[i] for i in known]
            return texts, torch.tensor([index[corpus.labels[i]] for i in known])

        test = read_texts(config.data.test, reader_options(config)) if config.data.test else None
        distilled = distilled_set(
            config.distill,
            labels,
            pairs(train),
            pairs(dev),
            pairs(test) if test is not None else None,
            unlabeled_texts(config),
            config.training.seed,
            run.workdir / TEACHER_DIR,
            run.resume,
            local_device(pick_device(config.training.device)),
        )
        save_distilled(distilled, path)
        return distilled
    return load_distilled(path, wait=not run.world.is_main)


def _embeddings(config: TextTrainConfig, tokenizer: Tokenizer, texts: list[str]):
    v = config.vectors
    if v.vectors and v.train_vectors:
        raise ValueError("use either --vectors or --train-vectors, not both")
    if not (v.vectors or v.train_vectors):
        if config.model.embedding_mode != "rand":
            raise ValueError(
                f"embedding mode {config.model.embedding_mode!r} needs word vectors: "
                "pass --vectors FILE (or a shipped source: glove-6b-50d, minilm-wordpiece) "
                "or --train-vectors word2vec|fasttext"
            )
        return None
    if v.vectors in SOURCES:
        vectors = shipped_vectors(v.vectors)
    elif v.vectors:
        vectors = load_vectors(v.vectors, v.vectors_format)
    else:
        corpus = list(texts) + unlabeled_texts(config)
        sentences = [e.tokens for e in encode_batch(tokenizer, corpus)]
        vectors = train_vectors(
            sentences,
            v.train_vectors,
            config.model.embed_dim,
            config.training.seed,
            v.vector_epochs,
        )
    return embedding_matrix(tokenizer.get_vocab(), vectors, {PAD_ID, UNK_ID}, config.training.seed)


def _chunks(ids: list[list[int]], targets: torch.Tensor, size: int = 512):
    for start in range(0, len(ids), size):
        yield pad_batch(ids[start : start + size]), targets[start : start + size]


def ngram_buckets(wanted: int, vocab_size: int, classes: int, limit_mb: float) -> int:
    """The bigram rows the n-gram channel can have: its table takes (vocabulary + rows) x
    classes floats, twice while it is counted; halved until that fits in ``limit_mb``
    (``model.ngram_max_mb``), 0 (no channel) when not even 1,024 rows fit. Said in the log
    when it is cut."""

    def megabytes(buckets: int) -> float:
        return 2 * (vocab_size + buckets) * classes * 4 / 2**20

    if wanted == 0 or megabytes(wanted) <= limit_mb:
        return wanted
    buckets = wanted
    while buckets > 1024 and megabytes(buckets) > limit_mb:
        buckets //= 2
    if megabytes(buckets) > limit_mb:
        log.warning(
            "n-gram channel off: for %d classes its table would take %.0f MB even with %d "
            "bigram rows, over the %d MB it may use (model.ngram_max_mb)",
            classes,
            megabytes(buckets),
            buckets,
            limit_mb,
        )
        return 0
    log.warning(
        "n-gram channel: %d bigram rows instead of %d, so that its table for %d classes "
        "fits in %d MB (model.ngram_max_mb)",
        buckets,
        wanted,
        classes,
        limit_mb,
    )
    return buckets


@torch.no_grad()
def fit_ngram_channel(
    model: TextCNN, train: tuple[list[list[int]], torch.Tensor], dev: TextBatches
) -> float:
    """Count the n-gram channel on the training texts (gold labels), then weigh it against
    the CNN by stacking on the dev split: the ``a x CNN + b x n-grams`` of lowest dev
    log-loss (a two-feature logistic regression), whose decisions are those of
    ``CNN + (b / a) x n-grams``; b / a is returned (0 when the channel does not help)."""
    model.eval()
    model.naive_bayes.fit(_chunks(*train))
    cnn, ngrams = [], []
    for ids, _ in _chunks(dev.ids, dev.targets):
        cnn.append(model.forward_head(model.forward_features(ids)))
        ngrams.append(model.naive_bayes(ids))
    cnn, ngrams = torch.cat(cnn), torch.cat(ngrams)
    scales = torch.tensor([1.0, 0.0], requires_grad=True)
    optimizer = torch.optim.LBFGS([scales], max_iter=100, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        with torch.enable_grad():
            value = F.cross_entropy(scales[0] * cnn + scales[1] * ngrams, dev.targets)
            value.backward()
        return value

    optimizer.step(loss)
    a, b = scales.tolist()
    weight = b / a if a > 0 and b > 0 else 0.0

    def accuracy(w: float) -> float:
        return ((cnn + w * ngrams).argmax(1) == dev.targets).float().mean().item()

    log.info(
        "n-gram channel: weight %.3g from dev (CNN x %.3f + n-grams x %.3f); dev accuracy "
        "%.4f -> %.4f",
        weight,
        a,
        b,
        accuracy(0.0),
        accuracy(weight),
    )
    return weight


def _tokenizer_for_vectors(config: TextTrainConfig) -> TextTrainConfig:
    """``config`` with the tokenizer a shipped vector source needs (MiniLM's WordPiece)."""
    source = SOURCES.get(config.vectors.vectors)
    if source is None or source.tokenizer in (None, config.tokenizer.kind):
        return config
    if config.tokenizer.kind != "word":  # the default: an explicit other choice is an error
        raise ValueError(
            f"--vectors {source.name} needs --tokenizer {source.tokenizer}, "
            f"not {config.tokenizer.kind}"
        )
    log.info("--vectors %s: tokenizing with %s", source.name, source.tokenizer)
    return replace(config, tokenizer=replace(config.tokenizer, kind=source.tokenizer))


class TextTask:
    """Texts → tokenizer (→ word vectors) → :class:`~textcnn.models.TextCNN`."""

    def read(self, config: TextTrainConfig, spec: str, like=None) -> Corpus:
        return read_texts(spec, reader_options(config))  # unknown labels: see ``examples``

    def read_for(self, predictor: TextClassifier, spec: str, options: ReaderOptions) -> Corpus:
        return read_texts(spec, options)

    def class_names(self, data: Corpus) -> list[str]:
        return data.labels

    def describe(self, splits: Splits) -> str:
        test = f", {len(splits.test)} test" if splits.test else ""
        labels = dict(Counter(splits.train.labels).most_common(20))
        return f"{len(splits.train)} train, {len(splits.dev)} dev{test} examples; labels {labels}"

    def examples(self, predictor: TextClassifier, data: Corpus) -> tuple[list[str], torch.Tensor]:
        return data.texts, predictor.label_ids(data.labels, data.source)

    def write_files(self, predictor: TextClassifier, folder: Path) -> None:
        save_tokenizer(predictor.tokenizer, folder / TOKENIZER_FILE)

    def finish(self, workdir: Path) -> None:
        (workdir / CHECKPOINT_TOKENIZER).unlink(missing_ok=True)
        (workdir / DISTILLED_FILE).unlink(missing_ok=True)
        shutil.rmtree(workdir / TEACHER_DIR, ignore_errors=True)

    def fit(self, config: TextTrainConfig, train: Corpus, dev: Corpus, run: Run) -> Fitted:
        """Tokenizer, vectors and network trained on ``train``, the best epoch picked on ``dev``."""
        labels = sorted(set(train.labels))
        if len(labels) < 2:
            raise ValueError(
                f"{train.source}: the training data has only one label ({labels[0]!r})"
            )
        run.workdir.mkdir(parents=True, exist_ok=True)
        config = _tokenizer_for_vectors(config)
        distilled = _distilled(config, labels, train, dev, run) if config.distill.teacher else None
        tokenizer_path = run.workdir / CHECKPOINT_TOKENIZER
        if not (run.resume and tokenizer_path.is_file()) and run.world.is_main:
            vocabulary = train.texts + (unlabeled_texts(config) if distilled else [])
            save_tokenizer(train_tokenizer(vocabulary, config.tokenizer), tokenizer_path)
        run.world.barrier()  # every rank uses rank 0's tokenizer: the same token ids
        tokenizer = load_tokenizer(tokenizer_path, config.tokenizer.max_length)
        init = _embeddings(config, tokenizer, train.texts)
        mode = config.model.embedding_mode
        if init is not None and mode == "rand":
            log.warning("word vectors given with embedding mode 'rand': using 'non-static'")
            mode = "non-static"
        vocab_size = tokenizer.get_vocab_size()
        model_config = replace(
            config.model,
            vocab_size=vocab_size,
            embed_dim=init.matrix.shape[1] if init is not None else config.model.embed_dim,
            num_classes=len(labels),
            embedding_mode=mode,
            padding_idx=PAD_ID,
            ngram_buckets=ngram_buckets(
                config.model.ngram_buckets, vocab_size, len(labels), config.model.ngram_max_mb
            ),
        )
        torch.manual_seed(config.training.seed)
        model = TextCNN(model_config, None if init is None else init.matrix)
        classifier = TextClassifier(model, tokenizer, labels)
        train_targets = classifier.label_ids(train.labels, train.source)
        dev_targets = classifier.label_ids(dev.labels, f"{dev.source} (dev)")
        weights = (
            class_weights(train_targets, len(labels))
            if config.class_weights == "balanced"
            else None
        )
        objective = (
            SingleLabel(weights)
            if distilled is None
            else Distillation(config.distill.hard_weight, weights)
        )
        trainer = Trainer(model, config.training, run.workdir, objective, run.world)
        if distilled is None:
            training = TextBatches(encode(tokenizer, train.texts), train_targets)
        else:  # the teacher's logits and the gold labels, on the training and extra texts
            training = TextBatches(encode(tokenizer, distilled.texts), distilled.targets)
        dev_batches = TextBatches(encode(tokenizer, dev.texts), dev_targets)
        result = trainer.fit(training, dev_batches, run.resume, run.on_epoch_end, data=run.data)
        model.to("cpu")
        if model.naive_bayes is not None:  # counted once, for the best and the last weights
            model.load_state_dict(result.best_state)
            gold = (encode(tokenizer, train.texts), train_targets)
            weight = fit_ngram_channel(model, gold, dev_batches)
            model.config = model_config = replace(model_config, ngram_weight=weight)
            counts = {f"naive_bayes.{k}": v for k, v in model.naive_bayes.state_dict().items()}
            result = replace(
                result,
                best_state=result.best_state | counts,
                last_state=result.last_state | counts,
            )
        vector_source = SOURCES.get(config.vectors.vectors)
        card = TextCard(
            architecture="textcnn",
            name=run.workdir.name,
            labels=labels,
            model=model_config,
            tokenizer=config.tokenizer,
            settings=run_settings(config),
            data={
                "train": {
                    "source": train.source,
                    "examples": len(train),
                    "fingerprint": train.fingerprint(),
                },
                "dev": {"source": dev.source, "examples": len(dev)},
            },
            vector_coverage=None if init is None else init.coverage,
            vector_licence=None if vector_source is None else vector_source.licence,
            teacher=None if distilled is None else distilled.teacher,
        )
        return Fitted(classifier, card, result)
