"""Text classification end to end: corpus → tokenizer → (vectors) → TextCNN → model directory."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
from tokenizers import Tokenizer

from ..card import TextCard
from ..models import TextCNN
from ..text.builtin import BUILTIN_CORPORA, load_builtin
from ..text.classifier import TOKENIZER_FILE, TextClassifier, pad_batch
from ..text.corpora import Corpus, ReaderOptions, read_corpus
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
from .config import TrainConfig
from .distill import (
    DISTILLED_FILE,
    distillation_loss,
    distilled_set,
    load_distilled,
    save_distilled,
)
from .task import Fitted, Run, Splits
from .trainer import Trainer

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


def read_data(config: TrainConfig, path: str) -> Corpus:
    """The corpus of a file or folder, or a built-in corpus name (``tweets``)."""
    if path in BUILTIN_CORPORA and not Path(path).exists():
        return load_builtin(path)
    d = config.data
    options = ReaderOptions(d.text_field, d.label_field, d.skip_bad_rows, d.format)
    return read_corpus(path, options)


def class_weights(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (k * count): every class carries the same total weight."""
    counts = torch.bincount(targets, minlength=num_classes).float().clamp(min=1)
    return len(targets) / (num_classes * counts)


def unlabeled_texts(config: TrainConfig) -> list[str]:
    """The non-blank lines of ``data.unlabeled`` (none without one)."""
    if not config.data.unlabeled:
        return []
    path = Path(config.data.unlabeled)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (--unlabeled)")
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [clean_text(line.strip()) for line in handle if line.strip()]


def _distilled(config: TrainConfig, labels: list[str], train: Corpus, dev: Corpus, run: Run):
    """The teacher's soft-labelled training set (see :mod:`.distill`): made by rank 0 and kept
    beside the checkpoint, so that the other ranks and a resumed run use the same one."""
    path = run.workdir / DISTILLED_FILE
    if run.world.is_main and not (run.resume and path.is_file()):
        index = {label: i for i, label in enumerate(labels)}

        def pairs(corpus: Corpus) -> tuple[list[str], torch.Tensor]:
            known = [i for i, label in enumerate(corpus.labels) if label in index]
            texts = [corpus.texts[i] for i in known]
            return texts, torch.tensor([index[corpus.labels[i]] for i in known])

        test = read_data(config, config.data.test) if config.data.test else None
        distilled = distilled_set(
            config.distill,
            labels,
            pairs(train),
            pairs(dev),
            pairs(test) if test is not None else None,
            unlabeled_texts(config),
            config.training.seed,
        )
        save_distilled(distilled, path)
        return distilled
    return load_distilled(path, wait=not run.world.is_main)


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


class TextTask:
    """Texts → tokenizer (→ word vectors) → :class:`~textcnn.models.TextCNN`."""

    def read(self, config: TrainConfig, spec: str, like=None) -> Corpus:
        return read_data(config, spec)  # unknown labels are caught by ``examples``

    def class_names(self, data: Corpus) -> list[str]:
        return data.labels

    def describe(self, splits: Splits) -> str:
        test = f", {len(splits.test)} test" if splits.test else ""
        labels = dict(Counter(splits.train.labels))
        return f"{len(splits.train)} train, {len(splits.dev)} dev{test} examples; labels {labels}"

    def examples(self, predictor: TextClassifier, data: Corpus) -> tuple[list[str], torch.Tensor]:
        return data.texts, predictor.label_ids(data.labels, data.source)

    def write_files(self, predictor: TextClassifier, folder: Path) -> None:
        save_tokenizer(predictor.tokenizer, folder / TOKENIZER_FILE)

    def finish(self, workdir: Path) -> None:
        (workdir / CHECKPOINT_TOKENIZER).unlink(missing_ok=True)
        (workdir / DISTILLED_FILE).unlink(missing_ok=True)

    def fit(self, config: TrainConfig, train: Corpus, dev: Corpus, run: Run) -> Fitted:
        """Tokenizer, vectors and network trained on ``train``, the best epoch picked on ``dev``."""
        labels = sorted(set(train.labels))
        if len(labels) < 2:
            raise ValueError(
                f"{train.source}: the training data has only one label ({labels[0]!r})"
            )
        run.workdir.mkdir(parents=True, exist_ok=True)
        distilled = _distilled(config, labels, train, dev, run) if config.distill.teacher else None
        tokenizer_path = run.workdir / CHECKPOINT_TOKENIZER
        if not (run.resume and tokenizer_path.is_file()) and run.world.is_main:
            vocabulary = train.texts + (unlabeled_texts(config) if distilled else [])
            save_tokenizer(train_tokenizer(vocabulary, config.tokenizer), tokenizer_path)
        run.world.barrier()  # every rank uses rank 0's tokenizer: the same token ids
        tokenizer = load_tokenizer(tokenizer_path)
        init = _embeddings(config, tokenizer, train.texts)
        mode = config.model.embedding_mode
        if init is not None and mode == "rand":
            log.warning("word vectors given with embedding mode 'rand': using 'non-static'")
            mode = "non-static"
        model_config = replace(
            config.model,
            vocab_size=tokenizer.get_vocab_size(),
            embed_dim=init.matrix.shape[1] if init is not None else config.model.embed_dim,
            num_classes=len(labels),
            embedding_mode=mode,
            padding_idx=PAD_ID,
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
        soft_loss = partial(distillation_loss, hard_weight=config.distill.hard_weight)
        trainer = Trainer(model, config.training, run.workdir, weights, run.world, soft_loss)
        if distilled is None:
            training = TextBatches(encode(tokenizer, train.texts), train_targets)
        else:  # the teacher's logits and the gold labels, on the training and extra texts
            training = TextBatches(encode(tokenizer, distilled.texts), distilled.targets)
        result = trainer.fit(
            training,
            TextBatches(encode(tokenizer, dev.texts), dev_targets),
            resume=run.resume,
            on_epoch_end=run.on_epoch_end,
        )
        model.to("cpu")
        card = TextCard(
            architecture="textcnn",
            name=run.workdir.name,
            labels=labels,
            model=model_config,
            tokenizer=config.tokenizer.to_dict(),
            settings=config.to_dict(),  # everything the run was given
            data={
                "train": {
                    "source": train.source,
                    "examples": len(train),
                    "fingerprint": train.fingerprint(),
                },
                "dev": {"source": dev.source, "examples": len(dev)},
            },
            vector_coverage=None if init is None else init.coverage,
            teacher=None if distilled is None else distilled.teacher,
        )
        return Fitted(classifier, card, result)
