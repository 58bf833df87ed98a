"""Tokenizers (HF ``tokenizers``) trained on the training split only: word level or subwords."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tokenizers import Encoding, Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1  # fixed: the text model's padding_idx is PAD_ID
TokenizerKind = Literal["word", "bpe", "wordpiece"]
# Words, punctuation marks one by one, and the clitics "n't" and "'s"/"'re"/... as tokens of
# their own ("doesn't" -> does n't), as in the Penn Treebank tokenisation of the benchmark
# corpora (Kim's clean_str).
# On TREC this scored 89.3% against 88.7% for splitting "n't" into three (mean of 3 seeds).
WORDS = Regex(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]")
# A lone UTF-16 surrogate (valid in JSON as "\udc80", not in Unicode) cannot cross into the
# Rust tokenizer; it becomes U+FFFD, one character for one, so offsets into the text still hold.
SURROGATE = re.compile("[\ud800-\udfff]")
# Texts are cut to this many characters per allowed token before tokenizing, so a huge text
# costs no more than a long one; see encode_batch for why the ids stay the same.
CHARS_PER_TOKEN = 32


@dataclass
class TokenizerConfig:
    kind: TokenizerKind = "word"  # word | bpe | wordpiece
    min_frequency: int = 1  # rarer tokens become [UNK]
    vocab_size: int = 50_000  # upper bound on the vocabulary (all kinds)
    max_length: int = 256  # longer texts are truncated to this many tokens
    lowercase: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("word", "bpe", "wordpiece"):
            raise ValueError(f"tokenizer must be word, bpe or wordpiece, got {self.kind!r}")
        if self.max_length < 1 or self.min_frequency < 1 or self.vocab_size < 3:
            raise ValueError(
                "max_length and min_frequency must be at least 1, vocab_size at least 3"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> Tokenizer:
    """Learn a vocabulary from ``texts``; ids 0 and 1 are [PAD] and [UNK]."""
    special = [PAD, UNK]
    if config.kind == "word":
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(
            vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=special
        )
    elif config.kind == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=special
        )
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(
            vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=special
        )
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(WORDS, behavior="isolated")]
    )
    budget = config.max_length * CHARS_PER_TOKEN  # what lies beyond is truncated anyway
    tokenizer.train_from_iterator((clean_text(t)[:budget] for t in texts), trainer)
    tokenizer.enable_truncation(config.max_length)
    if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
        raise RuntimeError("special tokens did not get ids 0 and 1")
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    tokenizer.save(str(path))


def load_tokenizer(path: Path) -> Tokenizer:
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust side raises a bare Exception
        raise ValueError(
            f"{path}: not a readable tokenizer file ({error}); retrain the model"
        ) from None


def check_tokenizer(tokenizer: Tokenizer, vocab_size: int, model_dir: Path) -> None:
    """A model's tokenizer must give ids its embedding has and cut texts to a maximum length."""
    top = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)
    if top >= vocab_size:
        raise ValueError(
            f"{model_dir}/tokenizer.json: token id {top} is beyond the model's {vocab_size} "
            "embeddings; the tokenizer belongs to another model: retrain or copy it again"
        )
    if not tokenizer.truncation or tokenizer.truncation["max_length"] < 1:
        raise ValueError(
            f"{model_dir}/tokenizer.json: no maximum length (truncation); retrain or copy it again"
        )


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (same length)."""
    if text.isascii() or not SURROGATE.search(text):
        return text
    return SURROGATE.sub("\ufffd", text)


def char_budget(tokenizer: Tokenizer) -> int | None:
    """Characters worth tokenizing for a tokenizer that truncates, None when it does not."""
    truncation = tokenizer.truncation
    return truncation["max_length"] * CHARS_PER_TOKEN if truncation else None


def encode_batch(tokenizer: Tokenizer, texts: Sequence[str]) -> list[Encoding]:
    """``tokenizer.encode_batch`` of cleaned texts, without tokenizing what truncation drops.

    A text longer than the character budget is first encoded cut to the budget. If that
    still overflows the maximum length, the kept tokens all end before the cut, so they
    equal those of the whole text (pre-tokenization splits on whitespace and punctuation,
    locally); only otherwise (a text of very long words) is the cut doubled until it
    overflows or takes the whole text. Memory per text is then bounded by the budget.
    """
    texts = [clean_text(t) for t in texts]
    budget = char_budget(tokenizer)
    if budget is None:
        return tokenizer.encode_batch(texts)
    encodings = tokenizer.encode_batch([t[:budget] for t in texts])
    for i, text in enumerate(texts):
        cut = budget
        while len(text) > cut and not encodings[i].overflowing:
            cut *= 2
            encodings[i] = tokenizer.encode(text[:cut])
    return encodings


def encode(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of every text, truncated to the tokenizer's maximum length, unpadded."""
    return [encoding.ids for encoding in encode_batch(tokenizer, texts)]
