"""Model directories written by textcnn 0.1.0 (tests/fixtures) load and answer exactly as
they did: every change since (typed cards, weights' sha256, calibration, multi-label,
checked tokenizers) keeps what those files meant."""

import json
from pathlib import Path

import torch

import textcnn
from tests.images.conftest import square_images

FIXTURES = Path(__file__).parent / "fixtures"


def test_an_old_text_model_gives_the_same_scores():
    expected = json.loads((FIXTURES / "text-v1.expected.json").read_text())
    for inference in ("compiled", "folded", "conv"):
        classifier = textcnn.load(FIXTURES / "text-v1", inference=inference)
        assert classifier.card.weights_sha256 is not None  # computed at load
        assert not classifier.multi_label and classifier.card.temperature == 1.0
        got = classifier.predict(expected["texts"], top_k=None)
        for predictions, want in zip(got, expected["predictions"], strict=True):
            assert [p.label for p in predictions] == [w["label"] for w in want]
            for p, w in zip(predictions, want, strict=True):
                assert abs(p.score - w["score"]) < 1e-6


def test_an_old_image_model_gives_the_same_probabilities():
    expected = json.loads((FIXTURES / "image-v1.expected.json").read_text())
    images, _, _ = square_images(expected["n"], expected["size"], seed=expected["seed"])
    probabilities = textcnn.load(FIXTURES / "image-v1").predict_proba(images)
    torch.testing.assert_close(
        probabilities, torch.tensor(expected["probabilities"]), atol=1e-6, rtol=0
    )
