"""Text classification end to end: corpus → tokenizer → (vectors) → TextCNN → model directory."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from tokenizers import Tokenizer

from ..artifacts import TOKENIZER_FILE
from ..card import TextCard
from ..models import TextCNN
from ..text.builtin import BUILTIN_CORPORA, load_builtin
from ..text.classifier import TextClassifier, pad_batch
from ..text.corpora import Corpus, ReaderOptions, read_corpus
from ..text.shipped_vectors import SOURCES, shipped_vectors
from ..text.stream import StreamedCorpus, scan_corpus
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
from .decisions import chunks, fit_decisions
from .distill import DISTILLED_FILE, distilled_set, load_distilled, save_distilled
from .distributed import local_device
from .labels import (
    MultiHot,
    balancing,
    check_labels,
    label_counts,
    positive_weights,
    targets_of,
)
from .objectives import Distillation, MultiLabel, SingleLabel
from .optim import pick_device
from .streaming import StreamBatches
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


def reader_options(config: TextTrainConfig, like: Corpus | None = None) -> ReaderOptions:
    """How the run's data are read; with ``like`` (the training data), as it was: dev and
    test data of a multi-label corpus are multi-label too."""
    d = config.data
    multi_label = like.multi_label if like is not None else d.multi_label
    return ReaderOptions(
        d.text_field, d.label_field, d.skip_bad_rows, d.format, None, multi_label, d.label_separator
    )


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

    def read(self, config: TextTrainConfig, spec: str, like: Corpus | None = None) -> Corpus:
        """The corpus of ``spec``; training data (no ``like``) have their labels checked
        before anything else is done with them (unknown labels of dev and test data: see
        ``targets_of``)."""
        corpus = read_texts(spec, reader_options(config, like))
        if like is None:
            check_labels(corpus, config)
        return corpus

    def read_streamed(self, config: TextTrainConfig) -> Splits:
        """The training file as a :class:`~textcnn.text.stream.StreamedCorpus` (one pass
        over it, see :func:`~textcnn.text.stream.scan_corpus`), the dev split held out of
        it by hash unless a dev file is given, and the test file (in memory)."""
        d = config.data
        if config.distill.teacher:
            raise ValueError("--stream does not distil (the teacher labels texts in memory)")
        options = reader_options(config)
        train, dev = scan_corpus(
            d.data, options, None if d.dev else d.dev_fraction, config.training.seed
        )
        check_labels(train, config)
        if d.dev:
            dev = self.read(config, d.dev, train)
        test = self.read(config, d.test, train) if d.test else None
        return Splits(train, dev, test)

    def read_for(self, predictor: TextClassifier, spec: str, options: ReaderOptions) -> Corpus:
        separator = predictor.card.label_separator if predictor.card else ","
        options = replace(options, multi_label=predictor.multi_label, label_separator=separator)
        return read_texts(spec, options)

    def class_names(self, data: Corpus) -> list[str]:
        """What stratified splits keep in proportion: the label, or (multi-label) each
        row's rarest label, so that rare labels reach every split."""
        if not data.multi_label:
            return data.labels
        counts = label_counts(data)
        return [min(row, key=lambda label: (counts[label], label)) for row in data.labels]

    def describe(self, splits: Splits) -> str:
        test = f", {len(splits.test)} test" if splits.test else ""
        labels = dict(label_counts(splits.train).most_common(20))
        kind = "multi-label " if splits.train.multi_label else ""
        return (
            f"{len(splits.train)} train, {len(splits.dev)} dev{test} {kind}examples; "
            f"labels {labels}"
        )

    def examples(self, predictor: TextClassifier, data: Corpus) -> tuple[list[str], torch.Tensor]:
        """(texts, class indices, or N x labels 0/1 for a multi-label model)."""
        targets = targets_of(predictor, data, predictor.multi_label)
        return data.texts, targets.dense() if isinstance(targets, MultiHot) else targets

    def write_files(self, predictor: TextClassifier, folder: Path) -> None:
        save_tokenizer(predictor.tokenizer, folder / TOKENIZER_FILE)

    def finish(self, workdir: Path) -> None:
        (workdir / CHECKPOINT_TOKENIZER).unlink(missing_ok=True)
        (workdir / DISTILLED_FILE).unlink(missing_ok=True)
        shutil.rmtree(workdir / TEACHER_DIR, ignore_errors=True)

    def fit(self, config: TextTrainConfig, train: Corpus, dev: Corpus, run: Run) -> Fitted:
        """Tokenizer, vectors and network trained on ``train``, the best epoch picked on ``dev``;
        then the n-gram weight, the temperature and (multi-label) the thresholds fitted on dev."""
        labels, multi_label = train.label_names(), train.multi_label
        if len(labels) < (1 if multi_label else 2):
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
        streamed = isinstance(train, StreamedCorpus)
        train_targets = None if streamed else targets_of(classifier, train, multi_label)
        dev_targets = targets_of(classifier, dev, multi_label, " (dev)")
        balanced = config.class_weights == "balanced"
        if multi_label:
            objective = MultiLabel(positive_weights(train_targets) if balanced else None)
        else:
            counts = label_counts(train)
            weights = (
                balancing(torch.tensor([counts[label] for label in labels])) if balanced else None
            )
            objective = (
                SingleLabel(weights)
                if distilled is None
                else Distillation(config.distill.hard_weight, weights)
            )
        settings = config.training
        if multi_label and settings.optimizer == "auto":
            settings = replace(settings, optimizer="adamw")
        trainer = Trainer(model, settings, run.workdir, objective, run.world)
        if streamed:
            index = {label: i for i, label in enumerate(labels)}
            training = StreamBatches(
                train,
                tokenizer,
                index,
                settings.batch_size,
                run.world,
                settings.seed,
                config.data.stream_buffer,
            )
            if not training.steps(1):
                raise ValueError(
                    f"{train.source}: {len(train)} training rows in {len(train.block_rows)} "
                    f"blocks give no whole batch of {settings.batch_size} over "
                    f"{run.world.size} process(es); lower --batch-size or --nproc, or drop "
                    "--stream (a file this small fits in memory)"
                )
        elif distilled is None:
            training = TextBatches(encode(tokenizer, train.texts), train_targets)
        else:  # the teacher's logits and the gold labels, on the training and extra texts
            training = TextBatches(encode(tokenizer, distilled.texts), distilled.targets)
        dev_batches = TextBatches(encode(tokenizer, dev.texts), dev_targets)
        result = trainer.fit(training, dev_batches, run.resume, run.on_epoch_end, data=run.data)
        model.to("cpu")
        model.load_state_dict(result.best_state)  # decisions fitted for the best weights
        if streamed:  # every training row, in file order, read again if the channel counts
            gold = training.all_batches()
        else:
            gold = chunks(encode(tokenizer, train.texts), train_targets)
        weight, temperature, thresholds = fit_decisions(
            model, gold, (dev_batches.ids, dev_targets), multi_label, config.decision
        )
        model.config = model_config = replace(model_config, ngram_weight=weight)
        if model.naive_bayes is not None:  # counted once, for the best and the last weights
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
                }
                | ({"streamed": True, "skipped": dict(train.report.skipped)} if streamed else {}),
                "dev": {"source": dev.source, "examples": len(dev)},
            },
            vector_coverage=None if init is None else init.coverage,
            vector_licence=None if vector_source is None else vector_source.licence,
            teacher=None if distilled is None else distilled.teacher,
            temperature=temperature,
            multi_label=multi_label,
            thresholds=thresholds,
            min_labels=min(config.decision.min_labels, len(labels)) if multi_label else 1,
            label_separator=config.data.label_separator,
        )
        classifier.card = card
        return Fitted(classifier, card, result)
