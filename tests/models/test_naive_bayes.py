"""The n-gram channel: naive Bayes over a text's distinct uni- and bigrams, added to the CNN's
logits with the weight training picked on dev."""

import json
import math

import pytest
import torch

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.models import TextCNN, TextCNNConfig
from textcnn.models.folded import FoldedTextCNN
from textcnn.models.naive_bayes import BIGRAM_HASH, NaiveBayesChannel
from textcnn.text.classifier import pad_batch
from textcnn.training.config import load_config
from textcnn.training.pipeline import fit_and_save

VOCAB, BUCKETS = 10, 7


def bigram(a: int, b: int) -> int:
    return VOCAB + (a * BIGRAM_HASH + b) % BUCKETS


def test_the_features_of_a_known_text_are_its_distinct_uni_and_bigrams():
    channel = NaiveBayesChannel(VOCAB, BUCKETS, num_classes=2, padding_idx=0)
    # "5 7 5 7" then padding: unigrams 5, 7; bigrams (5,7) twice and (7,5) once
    rows, present = channel.ngrams(torch.tensor([[5, 7, 5, 7, 0, 0]]))
    counted = sorted(rows[present].tolist())
    assert counted == sorted([5, 7, bigram(5, 7), bigram(7, 5)])
    assert 0 not in counted  # padding and bigrams that touch it count for nothing


def test_the_scores_are_multinomial_naive_bayes_with_laplace_smoothing():
    channel = NaiveBayesChannel(VOCAB, BUCKETS, num_classes=2, padding_idx=0)
    texts = torch.tensor([[2, 3, 0], [2, 4, 0], [5, 5, 5]])  # class 0, class 0, class 1
    channel.fit([(texts, torch.tensor([0, 0, 1]))], alpha=1.0)
    seen = {2, 3, 4, 5, bigram(2, 3), bigram(2, 4), bigram(5, 5)}
    counts = {
        0: {2: 2, 3: 1, 4: 1, bigram(2, 3): 1, bigram(2, 4): 1},
        1: {5: 1, bigram(5, 5): 1},
    }
    scores = channel(torch.tensor([[2, 3, 9]]))  # 9 was never seen: it adds nothing
    for c in (0, 1):
        total = sum(counts[c].values()) + len(seen)
        likelihood = sum(math.log((counts[c].get(g, 0) + 1) / total) for g in (2, 3, bigram(2, 3)))
        prior = math.log((2 if c == 0 else 1) + 1) - math.log(3 + 2)
        assert scores[0, c].item() == pytest.approx(likelihood + prior, abs=1e-5)
    assert scores[0, 0] > scores[0, 1]


def small_model(weight: float) -> TextCNN:
    torch.manual_seed(0)
    config = TextCNNConfig(
        vocab_size=VOCAB,
        embed_dim=4,
        num_filters=3,
        kernel_sizes=(2, 3),
        num_classes=2,
        ngram_buckets=BUCKETS,
        ngram_weight=weight,
    )
    model = TextCNN(config).eval()
    model.naive_bayes.fit([(torch.tensor([[2, 3, 0], [5, 6, 5]]), torch.tensor([0, 1]))])
    return model


def test_the_channel_adds_its_weighted_scores_to_the_logits_in_both_inference_paths():
    ids = pad_batch([[2, 3, 4], [5, 6], [7]])
    off, on = small_model(0.0), small_model(0.5)
    with torch.no_grad():
        cnn = off(ids)
        expected = cnn + 0.5 * on.naive_bayes(ids)
        torch.testing.assert_close(on(ids), expected)
        torch.testing.assert_close(FoldedTextCNN(on)(ids), expected, atol=1e-5, rtol=0)
        assert not torch.allclose(on(ids), cnn)


def test_a_model_trained_with_the_channel_keeps_its_counts_and_weight(tmp_path):
    data = write_tsv(tmp_path / "train.tsv", tiny_texts(80))
    model_dir = fit_and_save(tiny_config(data, tmp_path / "run", ngram_buckets=64, epochs=2))
    card = json.loads((model_dir / "config.json").read_text())
    weight = card["model"]["ngram_weight"]
    assert card["model"]["ngram_buckets"] == 64
    ids = pad_batch([[2, 3, 4], [5, 6], [7, 8, 9, 10]])
    for folder in ("model-best", "model-last"):
        loaded = textcnn.load(tmp_path / "run" / folder, inference="conv").model
        counts = loaded.naive_bayes.log_likelihood
        assert (counts != 0).any(), f"{folder}: the n-gram counts were not saved"
        with torch.no_grad():  # the served logits are the CNN's plus the card's weight x n-grams
            cnn = loaded.forward_head(loaded.forward_features(ids))
            expected = cnn + weight * loaded.naive_bayes(ids)
            torch.testing.assert_close(loaded(ids), expected)
    with pytest.raises(ValueError, match="ngram_weight is taken from the dev split"):
        load_config(overrides={"model.ngram_weight": 1.0})


def test_stacking_on_dev_weighs_an_informative_channel_in():
    """An untrained CNN is noise; n-grams that decide the class get a weight, and the mix
    classifies the dev texts the channel can."""
    from textcnn.training.config import DecisionConfig
    from textcnn.training.decisions import chunks, fit_decisions

    generator = torch.Generator().manual_seed(0)
    texts = torch.randint(4, VOCAB, (200, 6), generator=generator)
    labels = (texts[:, 0] % 2 == 0).long()  # the first word decides the class
    texts[:, 0] = 2 + labels  # word 2 in class 0, word 3 in class 1
    ids = texts.tolist()
    model = small_model(0.0)
    weight, temperature, _ = fit_decisions(
        model,
        chunks(ids[:150], labels[:150]),
        (ids[150:], labels[150:]),
        multi_label=False,
        decision=DecisionConfig(),
    )
    assert temperature > 0
    assert weight > 0
    dev = torch.tensor(ids[150:])
    with torch.no_grad():
        mixed = model.forward_head(model.forward_features(dev)) + weight * model.naive_bayes(dev)
    assert (mixed.argmax(1) == labels[150:]).float().mean() > 0.95
