import pytest
import torch
import torch.nn.functional as F
from torch import nn

from textcnn import Predictor, load
from textcnn.artifacts import load_tensors
from textcnn.images.cam import class_activation_maps
from textcnn.images.data import ImageBatches, ImageSet, Normalization
from textcnn.images.models import build_image_model, image_model_config
from textcnn.layers import ConvBlock, GlobalPool
from textcnn.models import Classifier, create_model, list_models, model_entry
from textcnn.training.config import TrainConfig, load_config
from textcnn.training.image import ImageTask
from textcnn.training.optim import FitSettings
from textcnn.training.pipeline import evaluate, fit_and_save, load_splits
from textcnn.training.trainer import Trainer

from .conftest import squares_on_ground, write_image_folder


def random_batches(shape, num_classes, n=2):
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8)
    data = ImageSet(images, torch.arange(n) % num_classes, [str(i) for i in range(num_classes)], "")
    return ImageBatches(data, Normalization.of(images))


@pytest.mark.parametrize("arch", list_models(kind="image"))
def test_one_training_step_of_every_image_architecture(arch, tmp_path):
    entry = model_entry(arch)
    torch.manual_seed(0)
    model = create_model(arch, **{**entry.small_config, "num_classes": 3})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = FitSettings(optimizer="sgd", lr=0.01, batch_size=2, epochs=1, max_norm=0)
    settings.progress = False
    record = Trainer(model, settings, tmp_path).train_epoch(
        random_batches(entry.small_input_shape, 3), epoch=1
    )
    assert torch.isfinite(torch.tensor(record["train_loss"]))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, f"{arch}: no weight changed after one step"


def test_googlenet_auxiliary_losses_only_in_training(tmp_path):
    torch.manual_seed(0)
    model = create_model("googlenet", small_input=True, input_size=32, num_classes=4)
    trainer = Trainer(model, FitSettings(optimizer="sgd", max_norm=0), tmp_path)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 3])

    model.train()
    torch.manual_seed(1)
    loss, _ = trainer.batch_loss(x, y)
    torch.manual_seed(1)  # the same dropout masks
    logits, aux = model(x, return_aux=True)
    assert len(aux) == 2 and all(a.shape == (2, 4) for a in aux)
    main = F.cross_entropy(logits, y)
    expected = main + 0.3 * sum(F.cross_entropy(a, y) for a in aux)
    assert torch.allclose(loss, expected) and not torch.allclose(loss, main)

    model.eval()
    loss, logits = trainer.batch_loss(x, y)
    assert model(x, return_aux=True)[1] == []
    assert torch.allclose(loss, F.cross_entropy(model(x), y))


class TinyGAP(Classifier):
    """conv layers, then one map per class averaged into the logits (NiN's head)."""

    global_pool = "avg"  # what class activation maps need

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            ConvBlock(2, 1, 16, 3, padding=1),
            ConvBlock(2, 16, 32, 3, padding=1),
            ConvBlock(2, 32, 32, 3, padding=1),
        )
        self.fc = nn.Linear(32, num_classes)
        self.pool = GlobalPool("avg")

    def forward_features(self, x):
        return self.features(x)

    def forward_head(self, features):
        return self.fc(self.pool(features))


def test_class_activation_map_peaks_on_the_square(tmp_path):
    """Where the square is decides the class (the ground under it), so the map of the predicted
    class should peak on the square: inside it, or on its one-pixel rim where it meets the
    ground (the evidence for "on dark" is the dark ground right next to the bright square)."""
    images, targets, _ = squares_on_ground(400, seed=0)
    data = ImageSet(images, targets, ["on dark", "on light"], "squares")
    norm = Normalization.of(images)
    torch.manual_seed(0)
    model = TinyGAP()
    settings = FitSettings(optimizer="adamw", lr=3e-3, batch_size=32, epochs=12, max_norm=0)
    settings.progress = False
    result = Trainer(model, settings, tmp_path).fit(
        ImageBatches(data, norm), ImageBatches(data, norm)
    )
    assert result.best_dev_score > 0.9

    test_images, test_targets, corners = squares_on_ground(40, seed=1)
    logits, maps = class_activation_maps(model, norm(test_images))
    assert maps.shape == (40, 2, 24, 24)
    assert torch.allclose(maps.mean(dim=(2, 3)), logits, atol=1e-4)  # they average to the logits
    assert (logits.argmax(1) == test_targets).float().mean() > 0.9
    inside = on_square = 0
    for i, (top, left) in enumerate(corners):
        row, col = divmod(int(maps[i, logits[i].argmax()].argmax()), 24)
        inside += top <= row < top + 5 and left <= col < left + 5
        on_square += top - 1 <= row <= top + 5 and left - 1 <= col <= left + 5
    assert on_square >= 36, f"the map peaked on the square in only {on_square} of 40 images"
    assert inside >= 16, f"the map peaked inside the square in only {inside} of 40 images"


def image_config(data, output, **overrides) -> TrainConfig:
    settings = {
        "task": "image",
        "arch": "lenet5",
        "data": str(data),
        "output": str(output),
        "image_size": 28,
        "channels": 1,
        "epochs": 2,
        "batch_size": 16,
        "progress": False,
        **overrides,
    }
    return load_config(overrides=settings)


def test_trained_image_model_saved_and_reloaded_gives_identical_outputs(tmp_path):
    root = write_image_folder(tmp_path / "images", n=80)
    config = image_config(root, tmp_path / "run", arch_options={"pool_mode": "fractional"})
    model_dir = fit_and_save(config)
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "config.json",
        "confusion.png",
        "metrics.json",
        "model.safetensors",
        "reliability.png",
    ]
    dev = load_splits(ImageTask(), config).dev
    first, second = load(model_dir), load(model_dir)
    assert isinstance(first, Predictor) and first.task == "image"
    out = first.predict_proba(dev.images)
    assert torch.equal(out, second.predict_proba(dev.images))
    assert torch.equal(out, first.predict_proba(dev.images))  # fractional pooling is fixed in eval
    saved = first.card.metrics["dev"]["accuracy"]
    assert evaluate(second, ImageTask(), dev)["accuracy"] == saved
    assert first.card.model.options == {
        "input_size": 28,
        "num_classes": 4,
        "in_channels": 1,
        "pool_mode": "fractional",
    }


def test_interrupted_augmented_run_resumed_ends_with_the_same_weights(tmp_path):
    """Augmentation draws from the RNG the checkpoint saves, and the cosine schedule is a
    function of the step, so a resumed run repeats the uninterrupted one exactly."""
    root = write_image_folder(tmp_path / "images", n=48)
    settings = {"augment": True, "epochs": 3, "arch_options": {"pool_mode": "stochastic"}}
    straight = fit_and_save(image_config(root, tmp_path / "straight", **settings))

    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    config = image_config(root, tmp_path / "resumed", **settings)
    with pytest.raises(KeyboardInterrupt):
        fit_and_save(config, on_epoch_end=interrupt)
    assert not (tmp_path / "resumed" / "model-best").exists()
    resumed = fit_and_save(config, resume=True)
    for name in ("model-best", "model-last"):
        a = load_tensors(straight.parent / name / "model.safetensors")
        b = load_tensors(resumed.parent / name / "model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_architectures_with_batch_norm_build_for_fashion_mnist_inputs():
    for arch in ("resnet18", "preact_resnet18", "wrn_16_1", "googlenet", "nin"):
        config = image_model_config(arch, 10, 1, 28)
        with torch.device("meta"):
            model = build_image_model(arch, config, (1, 28, 28))
        assert model.num_classes == 10
    with pytest.raises(ValueError, match="vgg11 cannot take 1x28x28 inputs"):
        build_image_model("vgg11", image_model_config("vgg11", 10, 1, 28), (1, 28, 28))
