"""Tokenizers (HF ``tokenizers``) trained on the training split only: word level or subwords."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tokenizers import Encoding, Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

PAD, UNK = "[PAD]", "[UNK]"
PAD_ID, UNK_ID = 0, 1  # fixed: the text model's padding_idx is PAD_ID
MAX_LENGTH = 65_536  # the longest maximum length a tokenizer may have (tokens)
MODEL_TYPES = ("WordLevel", "WordPiece", "BPE")
TokenizerKind = Literal["word", "bpe", "wordpiece", "minilm-wordpiece"]
TOKENIZER_KINDS = ("word", "bpe", "wordpiece", "minilm-wordpiece")
# Words, punctuation marks one by one, and the clitics "n't" and "'s"/"'re"/... as tokens of
# their own ("doesn't" -> does n't), as in the Penn Treebank tokenisation of the benchmark
# corpora (Kim's clean_str).
# On TREC this scored 89.3% against 88.7% for splitting "n't" into three (mean of 3 seeds).
WORDS_PATTERN = r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]"
WORDS = Regex(WORDS_PATTERN)
# A lone UTF-16 surrogate (valid in JSON as "\udc80", not in Unicode) cannot cross into the
# Rust tokenizer; it becomes U+FFFD, one character for one, so offsets into the text still hold.
SURROGATE = re.compile("[\ud800-\udfff]")
# Texts are cut to this many characters per allowed token before tokenizing, so a huge text
# costs no more than a long one; see encode_batch for why the ids stay the same.
CHARS_PER_TOKEN = 32


@dataclass
class TokenizerConfig:
    # word | bpe | wordpiece, learnt from the training texts; minilm-wordpiece: MiniLM's
    # vocabulary as it is (what --vectors minilm-wordpiece needs, and picks by itself)
    kind: TokenizerKind = "word"
    min_frequency: int = 1  # rarer tokens become [UNK]
    vocab_size: int = 50_000  # upper bound on the vocabulary (all kinds)
    max_length: int = 256  # longer texts are truncated to this many tokens
    lowercase: bool = True

    def __post_init__(self) -> None:
        if self.kind not in TOKENIZER_KINDS:
            raise ValueError(f"tokenizer must be one of {TOKENIZER_KINDS}, got {self.kind!r}")
        if not 1 <= self.max_length <= MAX_LENGTH:
            raise ValueError(f"max_length must be 1 to {MAX_LENGTH}, got {self.max_length}")
        if self.min_frequency < 1 or self.vocab_size < 3:
            raise ValueError("min_frequency must be at least 1, vocab_size at least 3")

    def to_dict(self) -> dict:
        return asdict(self)


# the tokenizers learnt from the training texts: kind -> (model, its trainer)
LEARNT = {
    "word": (models.WordLevel, trainers.WordLevelTrainer),
    "bpe": (models.BPE, trainers.BpeTrainer),
    "wordpiece": (models.WordPiece, trainers.WordPieceTrainer),
}


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> Tokenizer:
    """Learn a vocabulary from ``texts``; ids 0 and 1 are [PAD] and [UNK]."""
    special = [PAD, UNK]
    if config.kind == "minilm-wordpiece":  # a fixed vocabulary: nothing to learn
        tokenizer = minilm_tokenizer()
        tokenizer.enable_truncation(config.max_length)
        return tokenizer
    model, trainer_kind = LEARNT[config.kind]
    tokenizer = Tokenizer(model(unk_token=UNK))
    trainer = trainer_kind(
        vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=special
    )
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(WORDS, behavior="isolated")]
    )
    budget = config.max_length * CHARS_PER_TOKEN  # what lies beyond is truncated anyway
    tokenizer.train_from_iterator((t[:budget] for t in texts), trainer)
    tokenizer.enable_truncation(config.max_length)
    if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
        raise RuntimeError("special tokens did not get ids 0 and 1")
    tokenizer.encode_special_tokens = True
    return tokenizer


def minilm_tokenizer() -> Tokenizer:
    """MiniLM's WordPiece tokenizer (lower-casing, BERT pre-tokenization) with this project's
    id layout: [PAD] 0, [UNK] 1, then MiniLM's other tokens in their order."""
    from .minilm import minilm_dir  # only then: serving never imports the teacher's code

    source = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    order = sorted(source.get_vocab(), key=source.get_vocab().get)
    vocab = {
        token: i for i, token in enumerate([PAD, UNK, *(t for t in order if t not in (PAD, UNK))])
    }
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token=UNK, max_input_chars_per_word=100))
    tokenizer.normalizer = source.normalizer
    tokenizer.pre_tokenizer = source.pre_tokenizer
    tokenizer.add_special_tokens([PAD, UNK])
    tokenizer.encode_special_tokens = True
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    """``tokenizer.json`` without its maximum length, which the model card holds."""
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.save(str(path))


def load_tokenizer(path: Path, max_length: int | None = None, vocab_size: int | None = None):
    """The tokenizer of ``path``, checked before it is used: a model it can run
    (word level, WordPiece, BPE) whose unknown token it holds, [PAD] and [UNK] at ids 0
    and 1, no padding, every id below ``vocab_size`` (the embedding's rows) and, when the
    file has a maximum length (models written before 0.2), ``max_length``: the card's,
    which it then truncates to. User text never becomes a special token (``[PAD]`` in a
    text is the characters ``[``, ``pad``, ``]``, as any other text)."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        spec = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(
            f"{path}: not a readable tokenizer file ({error}); retrain the model"
        ) from None
    problem = _tokenizer_problem(spec, max_length)
    if problem is None:
        try:
            tokenizer = Tokenizer.from_str(text)
        except Exception as error:  # the Rust side raises a bare Exception
            problem = f"not a readable tokenizer file ({error})"
    if problem is None:
        problem = _vocabulary_problem(tokenizer, vocab_size)
    if problem is not None:
        raise ValueError(
            f"{path}: {problem}; the model directory was damaged: retrain or copy it again"
        )
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
    tokenizer.encode_special_tokens = True
    return tokenizer


def _tokenizer_problem(spec, max_length: int | None) -> str | None:
    """What makes a tokenizer file unusable by a text model, or None."""
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), dict):
        return "not a tokenizer file (no model)"
    model = spec["model"]
    if model.get("type") not in MODEL_TYPES:
        return (
            f"a tokenizer of type {model.get('type')!r}; text models use {', '.join(MODEL_TYPES)}"
        )
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or model.get("unk_token") not in vocab:
        return f"its unknown token {model.get('unk_token')!r} is not in its vocabulary"
    if spec.get("padding") is not None:
        return "it pads texts (padding is set); the model pads them itself"
    truncation = spec.get("truncation")
    agrees = isinstance(truncation, dict) and truncation.get("max_length") == max_length
    if truncation is not None and max_length is not None and not agrees:
        return f"its maximum length is not config.json's tokenizer.max_length ({max_length})"
    return None


def _vocabulary_problem(tokenizer: Tokenizer, vocab_size: int | None) -> str | None:
    if tokenizer.token_to_id(PAD) != PAD_ID or tokenizer.token_to_id(UNK) != UNK_ID:
        return f"{PAD} and {UNK} must have ids {PAD_ID} and {UNK_ID}"
    if vocab_size is not None:
        ids = tokenizer.get_vocab(with_added_tokens=True).values()
        top, bottom = max(ids, default=0), min(ids, default=0)
        if top >= vocab_size or bottom < 0:
            return (
                f"token id {top if top >= vocab_size else bottom} is beyond the model's "
                f"{vocab_size} embeddings; the tokenizer belongs to another model"
            )
    return None


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
    """``tokenizer.encode_batch`` of texts (cleaned: :func:`clean_text`), without tokenizing
    what truncation drops.

    A text longer than the character budget is first encoded cut to the budget. If that
    still overflows the maximum length, the kept tokens all end before the cut, so they
    equal those of the whole text (pre-tokenization splits on whitespace and punctuation,
    locally); only otherwise (a text of very long words) is the cut doubled until it
    overflows or takes the whole text. Memory per text is then bounded by the budget.
    """
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
