from textcnn.text.tokenizer import (
    PAD_ID,
    UNK_ID,
    TokenizerConfig,
    encode,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)

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
        again = load_tokenizer(tmp_path / f"{kind}.json")
        probe = TEXTS + ["Unseen Words, greatness!"]
        assert encode(again, probe) == encode(tokenizer, probe), kind
        assert again.truncation == tokenizer.truncation


def test_subword_tokenizers_split_unseen_words():
    tokenizer = train_tokenizer(TEXTS * 5, TokenizerConfig(kind="bpe", vocab_size=60))
    assert len(tokenizer.encode("greatness").tokens) >= 2
