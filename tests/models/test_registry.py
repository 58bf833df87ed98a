import pytest
import torch

from textcnn.models import Classifier, create_model, list_models, model_entry
from textcnn.models.summary import example_input

ALL_MODELS = list_models()


def test_registry_lists_text_and_image_models():
    assert "textcnn" in list_models(kind="text")
    assert {
        "lenet5",
        "alexnet",
        "zfnet",
        "vgg16_bn",
        "nin",
        "googlenet",
        "resnet50",
        "preact_resnet18",
        "wrn_28_10",
    } <= set(list_models(kind="image"))
    assert list_models("vgg1?") == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown model 'resnet99'.*textcnn models"):
        create_model("resnet99")


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_trains_on_a_tiny_input(name):
    torch.manual_seed(0)
    entry = model_entry(name)
    model = create_model(name, **entry.small_config)
    assert isinstance(model, Classifier)
    x = example_input(entry.kind, entry.small_input_shape).repeat(
        2, *[1] * len(entry.small_input_shape)
    )
    if entry.kind == "image":
        x = torch.randn_like(x)
    else:
        x = torch.randint(1, model.config.vocab_size, x.shape)
    model.train()
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, model.num_classes)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss = loss + model.aux_loss_weight * sum(
        torch.nn.functional.cross_entropy(a, torch.tensor([0, 1])) for a in aux
    )
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and g.isfinite().all() for g in grads)
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        torch.testing.assert_close(model.forward_head(features), model(x))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_declares_its_head(name):
    model = create_model(name, **model_entry(name).small_config)
    head = model.get_classifier()
    if head is None:  # NiN: the last convolution makes one map per class
        assert model.global_pool == "avg"
    else:
        assert isinstance(head, torch.nn.Linear) and head.out_features == model.num_classes
        # it is the last layer: the logits are its output
        assert head is [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]


def test_a_two_dimensional_block_is_one_argument_away_from_text():
    model = create_model("text_resnet", **model_entry("text_resnet").small_config)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d)]
    assert convolutions and all(isinstance(m, torch.nn.Conv1d) for m in convolutions)
    assert "text_resnet" in list_models(kind="text")


# Architectures whose 2D form cannot run over sequences, and why (none so far).
NOT_1D: dict[str, str] = {}
IMAGE_MODELS = [name for name in list_models(kind="image") if name not in NOT_1D]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_image_architecture_builds_and_runs_in_1d(name):
    """``dim=1`` gives the same network over sequences: every layer 1D, the same classes."""
    entry = model_entry(name)
    config = {**entry.small_config, "dim": 1}
    model = create_model(name, **config).eval()
    channels, length = entry.small_input_shape[0], entry.small_input_shape[-1]
    with torch.no_grad():
        logits = model(torch.randn(2, channels, length))
    assert logits.shape == (2, model.num_classes)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv1d | torch.nn.Conv2d)]
    assert convolutions and all(isinstance(m, torch.nn.Conv1d) for m in convolutions)
