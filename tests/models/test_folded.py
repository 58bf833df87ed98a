"""The folded n-gram tables, in PyTorch and compiled, give the convolution path's scores and
explanations."""

import numpy as np
import pytest
import torch

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.models import TextCNN, TextCNNConfig
from textcnn.models.compiled import PARALLEL_FROM, CompiledTextCNN
from textcnn.models.folded import FoldedTextCNN, table_bytes
from textcnn.text.classifier import pad_batch
from textcnn.training.pipeline import fit_and_save

EDGE_TEXTS = [
    "   ",  # nothing after tokenization
    "good",  # one token
    "dull film",  # shorter than the widest filter (3)
    " ".join(["the plot was good and the story was fun"] * 4),  # past max_length (12)
    "the movie was awful and boring",
    "a wonderful, great film",
]
MODES = [
    ("rand", True),
    ("rand", False),
    ("non-static", True),
    ("multichannel", True),
    ("multichannel", False),
    ("ngram", True),  # with the n-gram channel
    ("ngram", False),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tsv(tmp_path_factory.mktemp("folded") / "train.tsv", tiny_texts(80))


@pytest.mark.parametrize(("mode", "wide"), MODES)
def test_folded_tables_match_the_convolutions(corpus, tmp_path, mode, wide):
    settings = {"train_vectors": "word2vec", "embedding_mode": mode}
    if mode == "rand":
        settings = {}
    elif mode == "ngram":
        settings = {"ngram_buckets": 64}
    cfg = tiny_config(corpus, tmp_path / "run", wide=wide, max_length=12, **settings)
    model_dir = fit_and_save(cfg)
    conv = textcnn.load(model_dir, inference="conv")
    folded = textcnn.load(model_dir, inference="folded")
    compiled = textcnn.load(model_dir, inference="compiled")
    paths = conv.inference["path"], folded.inference["path"], compiled.inference["path"]
    assert paths == ("conv", "folded", "compiled")
    ids = pad_batch(conv.encode(EDGE_TEXTS).ids)
    with torch.inference_mode():
        assert torch.allclose(conv.network(ids), folded.network(ids), atol=1e-4)
    expected = conv.classify(EDGE_TEXTS, top_k=None, explain=True)
    for other in (folded, compiled):
        same_answers(expected, other.classify(EDGE_TEXTS, top_k=None, explain=True))


def same_answers(expected, got) -> None:
    for want, have in zip(expected, got, strict=True):
        assert [p.label for p in have.predictions] == [p.label for p in want.predictions]
        for a, b in zip(have.predictions, want.predictions, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)
        assert have.truncated == want.truncated
        assert [(e.start, e.end, e.text) for e in have.evidence] == [
            (e.start, e.end, e.text) for e in want.evidence
        ]
        for a, b in zip(have.evidence, want.evidence, strict=True):
            assert a.weight == pytest.approx(b.weight, abs=1e-3)
    assert got[3].truncated and got[0].evidence == []


def test_half_tables_and_the_size_limit():
    torch.manual_seed(0)
    model = TextCNN(TextCNNConfig(vocab_size=300, embed_dim=16, num_filters=8)).eval()
    ids = torch.randint(2, 300, (5, 9))
    half = FoldedTextCNN(model, torch.float16)
    with torch.inference_mode():
        assert torch.allclose(model(ids), half(ids), atol=1e-2)
    assert table_bytes(model.config, torch.float16) * 2 == table_bytes(model.config)
    assert table_bytes(model.config) == (3 * 301 + 1 + 4 * 301 + 1 + 5 * 301 + 1) * 8 * 4


def test_auto_falls_back_to_the_convolutions_above_the_table_limit(corpus, tmp_path):
    model_dir = fit_and_save(tiny_config(corpus, tmp_path / "run", epochs=1))
    assert textcnn.load(model_dir).inference["path"] == "compiled"  # the default
    small = textcnn.load(model_dir, max_table_mb=0.001)
    assert small.inference["path"] == "conv" and "MB >" in small.inference["reason"]
    with pytest.raises(ValueError, match="inference must be"):
        textcnn.load(model_dir, inference="fast")


@pytest.mark.parametrize("wide", [True, False])
@pytest.mark.parametrize("ties", [False, True])
def test_compiled_windows_match_the_folded_tables_at_every_length(wide, ties):
    """The compiled kernel keeps only the windows still open (a ring per width): texts of
    every length from none to past the widest window, with widths 1, 2 and 5, pool the
    same features in the same winning windows as PyTorch's folded tables, in a batch the
    threads share; with whole-number weights, windows tie and the first one wins in both."""
    torch.manual_seed(0)
    cfg = TextCNNConfig(
        vocab_size=50, embed_dim=8, num_classes=3, kernel_sizes=(2, 5, 1), num_filters=7, wide=wide
    )
    model = TextCNN(cfg).eval()
    if ties:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.copy_(torch.randint(-2, 3, parameter.shape))
            model.embedding.weight[cfg.padding_idx] = 0  # as training keeps it
    folded, compiled = FoldedTextCNN(model), CompiledTextCNN(model, sigmoid=False)
    texts = [torch.randint(1, 50, (length,)).tolist() for length in range(12) for _ in range(6)]
    assert len(texts) >= PARALLEL_FROM
    flat = np.array([token for text in texts for token in text], dtype=np.int64)
    offsets = np.cumsum([0] + [len(text) for text in texts]).astype(np.int64)
    got = compiled.ngram_evidence(flat, offsets)
    with torch.no_grad():
        want = folded.ngram_evidence(pad_batch(texts))
    assert torch.allclose(got[0], want[0], atol=1e-5)
    assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])
    probabilities, _, _ = compiled(flat, offsets)
    with torch.no_grad():
        expected = folded(pad_batch(texts)).softmax(dim=1).numpy()
        convolved = model(pad_batch(texts))  # a text of no tokens too: no NaN
    assert np.allclose(probabilities, expected, atol=1e-5)
    assert torch.allclose(convolved, folded(pad_batch(texts)), atol=1e-4)
