"""Teacher distillation (Tang et al. 2019, "Distilling task-specific knowledge from BERT into
simple neural networks"): fine-tune a pretrained encoder on the training split, label the
training texts, augmented copies of them and any unlabeled texts with its logits, and train
the CNN on those soft targets together with the gold labels.

The served model stays the CNN at its own speed; the teacher is needed only to train.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..artifacts import read_json, write_json
from ..text.minilm import LICENCE, MASK, MiniLM, TeacherBatches
from .optim import FitSettings
from .trainer import Trainer

log = logging.getLogger(__name__)
TEACHERS = ("minilm",)
DISTILLED_FILE = "checkpoint-distilled.json"  # the soft-labelled set of an unfinished run


@dataclass
class DistillConfig:
    teacher: str | None = None  # minilm: distil a fine-tuned MiniLM into the CNN; None: gold only
    teacher_epochs: int = 2  # fine-tuning epochs (the best on dev is kept)
    teacher_lr: float = 5e-5  # AdamW, linear warm-up and decay
    teacher_batch_size: int = 32
    teacher_max_length: int = 64  # tokens (WordPiece) per text for the teacher
    copies: int = 8  # augmented copies per training text
    mask_prob: float = 0.1  # each word of a copy becomes [MASK] with this probability
    swap_prob: float = 0.1  # ... or one of its nearest neighbours in the teacher's embeddings
    neighbours: int = 10  # the neighbours a word is swapped with, one at random
    ngram_prob: float = 0.25  # with this probability a copy keeps one random n-gram only
    max_ngram: int = 5
    hard_weight: float = 0.5  # the gold labels' share of the loss; the rest is the teacher's

    def __post_init__(self) -> None:
        if self.teacher not in (None, *TEACHERS):
            raise ValueError(f"teacher must be one of {TEACHERS} or none, got {self.teacher!r}")
        if self.copies < 0 or min(self.max_ngram, self.teacher_epochs, self.neighbours) < 1:
            raise ValueError("copies must be >= 0, max_ngram, teacher_epochs, neighbours >= 1")
        if self.mask_prob + self.swap_prob > 1:
            raise ValueError("mask_prob + swap_prob must be at most 1")
        for name in ("mask_prob", "swap_prob", "ngram_prob", "hard_weight"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def augment(
    texts: list[str],
    config: DistillConfig,
    seed: int,
    neighbours: dict[str, list[str]] | None = None,
) -> list[str]:
    """``copies`` variants of every text, new ones only (Tang et al.): each word masked with
    probability ``mask_prob``, else swapped for one of its ``neighbours`` with probability
    ``swap_prob``; then, with probability ``ngram_prob``, one random n-gram kept."""
    rng = random.Random(seed)
    neighbours = neighbours or {}
    seen = set(texts)
    out = []

    def variant_of(word: str) -> str:
        draw = rng.random()
        if draw < config.mask_prob:
            return MASK
        near = neighbours.get(word.lower())
        if near and draw < config.mask_prob + config.swap_prob:
            return rng.choice(near)
        return word

    for text in texts:
        words = text.split()
        if not words:
            continue
        for _ in range(config.copies):
            variant = [variant_of(w) for w in words]
            if rng.random() < config.ngram_prob:
                n = rng.randint(1, min(config.max_ngram, len(variant)))
                start = rng.randint(0, len(variant) - n)
                variant = variant[start : start + n]
            joined = " ".join(variant)
            if joined not in seen:
                seen.add(joined)
                out.append(joined)
    return out


@torch.no_grad()
def embedding_neighbours(teacher: MiniLM, words: set[str], k: int) -> dict[str, list[str]]:
    """The ``k`` nearest whole words (cosine, in the teacher's input embeddings) of each of
    ``words`` (lower-cased) that the teacher's vocabulary holds whole."""
    vocab = teacher.tokenizer.get_vocab()
    table = F.normalize(teacher.model.embeddings.word_embeddings.weight.float().cpu(), dim=1)
    candidates = sorted(t for t in vocab if t.isalpha() and t.isascii() and len(t) > 1)
    queries = sorted({w.lower() for w in words} & set(candidates))
    if not queries:
        return {}
    keys = table[[vocab[t] for t in candidates]]  # C x E
    out = {}
    for start in range(0, len(queries), 1024):
        chunk = queries[start : start + 1024]
        similarity = table[[vocab[w] for w in chunk]] @ keys.T
        nearest = similarity.topk(k + 1, dim=1).indices.tolist()
        for word, row in zip(chunk, nearest, strict=True):
            out[word] = [candidates[i] for i in row if candidates[i] != word][:k]
    return out


def fine_tune_settings(config: DistillConfig, seed: int, device: str) -> FitSettings:
    """How the shared loop fine-tunes the teacher: AdamW with weight decay 0.01, a linear
    warm-up over 10% of the steps then linear decay, gradients clipped to norm 1 (BERT's
    recipe), the best dev epoch kept."""
    return FitSettings(
        epochs=config.teacher_epochs,
        batch_size=config.teacher_batch_size,
        optimizer="adamw",
        lr=config.teacher_lr,
        schedule="linear",
        warmup=0.1,
        clip_norm=1.0,
        weight_decay=0.01,
        max_norm=0.0,
        patience=0,
        device=device,
        seed=seed,
    )


@dataclass
class Distilled:
    """The student's training set: texts, N x (classes + 1) targets (see
    :func:`distillation_loss`), and what the teacher scored."""

    texts: list[str]
    targets: torch.Tensor
    teacher: dict


def distilled_set(
    config: DistillConfig,
    labels: list[str],
    train: tuple[list[str], torch.Tensor],
    dev: tuple[list[str], torch.Tensor],
    test: tuple[list[str], torch.Tensor] | None,
    unlabeled: list[str],
    seed: int,
    workdir: Path,
    resume: bool = False,
    device: torch.device | str = "cpu",
) -> Distilled:
    """Fine-tune the teacher (on ``device``, checkpointed in ``workdir``: ``resume``
    continues it), then label the training texts, their augmented copies and the
    unlabeled texts with its logits."""
    started = time.perf_counter()
    torch.manual_seed(seed)  # the classifier head's initial weights
    teacher = MiniLM(labels, config.teacher_max_length, device)
    words = {w for text in train[0] for w in text.split()}
    neighbours = embedding_neighbours(teacher, words, config.neighbours) if config.swap_prob else {}
    trainer = Trainer(teacher.model, fine_tune_settings(config, seed, str(device)), workdir)
    fitted = trainer.fit(
        TeacherBatches(teacher, *train),
        TeacherBatches(teacher, *dev),
        resume=resume and (workdir / "checkpoint").is_dir(),
    )
    teacher.model.load_state_dict(fitted.best_state)
    dev_accuracy = fitted.best_dev_score
    extra = augment(train[0], config, seed, neighbours) + [t for t in unlabeled if t.strip()]
    log.info("teacher: labelling %d training and %d extra texts", len(train[0]), len(extra))
    texts = train[0] + extra
    logits = teacher.logits(texts)
    gold = torch.cat([train[1].float(), torch.full((len(extra),), -1.0)])
    report = {
        "name": "minilm",
        "licence": LICENCE,
        "dev_accuracy": dev_accuracy,
        "extra_texts": len(extra),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if test is not None:
        predicted = teacher.logits(test[0]).argmax(1)
        report["test_accuracy"] = (predicted == test[1]).float().mean().item()
    return Distilled(texts, torch.cat([logits, gold[:, None]], dim=1), report)


def save_distilled(distilled: Distilled, path: Path) -> None:
    write_json(
        path,
        {
            "texts": distilled.texts,
            "targets": distilled.targets.tolist(),
            "teacher": distilled.teacher,
        },
    )


def load_distilled(path: Path, wait: bool = False) -> Distilled:
    """The set :func:`save_distilled` wrote; with ``wait``, once it appears (the other ranks
    of a torchrun job wait, outside any collective, while rank 0 fine-tunes the teacher)."""
    while wait and not path.is_file():
        time.sleep(1.0)
    data = read_json(path)
    return Distilled(data["texts"], torch.tensor(data["targets"]), data["teacher"])
