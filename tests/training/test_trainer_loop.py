import math

import torch
from torch import nn

from textcnn.models import Classifier
from textcnn.training.optim import FitSettings
from textcnn.training.trainer import BUCKET_BATCHES, Trainer, epoch_batches


class Sized:
    def __init__(self, lengths):
        self.lengths = lengths

    def __len__(self):
        return len(self.lengths)


def test_length_bucketing_keeps_every_example_once_and_groups_similar_lengths():
    lengths = torch.randint(1, 60, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
    batches = epoch_batches(Sized(lengths), 10, torch.Generator().manual_seed(1))
    assert sorted(i for b in batches for i in b) == list(range(2000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 3  # random batches of 10 spread ~48 tokens
    # batches come in a random order, not sorted by length
    firsts = [lengths[b[0]] for b in batches[:BUCKET_BATCHES]]
    assert firsts != sorted(firsts)
    # the same generator seed gives the same epoch (resume depends on it)
    again = epoch_batches(Sized(lengths), 10, torch.Generator().manual_seed(1))
    assert again == batches


def test_data_without_lengths_is_batched_in_plain_shuffled_order():
    data = [0] * 25
    batches = epoch_batches(data, 10, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert sorted(i for b in batches for i in b) == list(range(25))


class Points:
    def __len__(self):
        return 40

    def batch(self, indices):
        x = torch.linspace(-1, 1, 40)[indices, None]
        return x, (x[:, 0] > 0).long()


class Line(Classifier):
    num_classes = 2

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 2)

    def forward_features(self, x):
        return x

    def forward_head(self, features):
        return self.fc(features)

    def get_classifier(self):
        return self.fc


def test_cosine_schedule_decays_the_learning_rate_to_zero(tmp_path):
    settings = FitSettings(optimizer="sgd", lr=0.1, schedule="cosine", epochs=4, batch_size=10)
    settings.max_norm = 0
    settings.progress = False
    trainer = Trainer(Line(), settings, tmp_path)
    seen = []
    for epoch in range(1, 5):
        trainer.train_epoch(Points(), epoch)
        seen.append(trainer.optimizer.param_groups[0]["lr"])
    # the rate of each epoch's last step (step 3 of 4): 0.1 * (1 + cos(pi * t / 16)) / 2
    expected = [0.05 * (1 + math.cos(math.pi * (4 * e + 3) / 16)) for e in range(4)]
    assert all(math.isclose(a, b) for a, b in zip(seen, expected, strict=True))
    assert seen[-1] < 0.002


def test_default_max_norm_bounds_each_class_weight_vector_as_kim_did(tmp_path):
    # Kim's s = 3 bounds weights that see unscaled dropout inputs; PyTorch's dropout
    # doubles kept inputs at p = 0.5, so the same bound on these weights is 1.5
    settings = FitSettings(optimizer="sgd", lr=5.0, epochs=1, batch_size=10, progress=False)
    assert settings.max_norm == 1.5
    model = Line()
    trainer = Trainer(model, settings, tmp_path)
    for epoch in range(1, 4):
        trainer.train_epoch(Points(), epoch)
    norms = model.fc.weight.norm(dim=1)
    assert torch.all(norms <= 1.5 + 1e-5)
    assert torch.any(norms > 1.49)  # the bound was reached and held, not merely unneeded
