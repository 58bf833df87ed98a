"""Architectures checked against the numbers in their papers and the course material."""

import pytest
import torch

from textcnn.models import create_model
from textcnn.models.summary import summarize, summarize_registered


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_params(name: str, **config) -> int:
    with torch.device("meta"):
        return n_params(create_model(name, **config))


@pytest.mark.parametrize(
    ("name", "config", "expected"),
    [
        ("alexnet", {}, 62_378_344),
        ("alexnet", {"groups": 2}, 60_965_224),
        ("vgg16", {}, 138_357_544),
        ("vgg19", {}, 143_667_240),
        ("resnet18", {}, 11_689_512),
        ("resnet34", {}, 21_797_672),
        ("resnet50", {}, 25_557_032),
    ],
)
def test_parameter_counts(name, config, expected):
    assert meta_params(name, **config) == expected


def test_wide_resnet_28_10():
    assert meta_params("wrn_28_10") == pytest.approx(36.5e6, rel=0.01)


def test_wide_resnet_depth_must_be_6n_plus_4():
    from textcnn.models.resnet import wide_resnet

    with pytest.raises(ValueError, match="6n\\+4"):
        wide_resnet(27, 2)


def test_alexnet_layer_shapes():
    _, summary = summarize_registered("alexnet")
    shapes = [r.output_shape for r in summary.rows if r.type in ("Conv2d", "MaxPool2d", "Linear")]
    assert shapes == [
        [96, 55, 55],
        [96, 27, 27],
        [256, 27, 27],
        [256, 13, 13],
        [384, 13, 13],
        [384, 13, 13],
        [256, 13, 13],
        [256, 6, 6],
        [4096],
        [4096],
        [1000],
    ]
    assert summary.total_params == 62_378_344


def test_preactivation_resnet_is_resnet_with_the_norm_switched():
    post, pre = create_model("resnet18"), create_model("preact_resnet18")
    assert list(post.features[1][0].body[0]._modules) == ["conv", "norm", "act"]
    assert list(pre.features[1][0].body[0]._modules) == ["norm", "act", "conv"]
    assert type(post) is type(pre)


GOOGLENET_MACS = {  # the paper's table 1, in millions ("ops")
    "inception3a": 128, "inception3b": 304, "inception4a": 73,
    "inception4b": 88, "inception4c": 100, "inception4d": 119, "inception4e": 170,
    "inception5b": 71, "fc": 1,
}  # fmt: skip
GOOGLENET_WEIGHTS = {  # the paper's "params" column, in units of 1024 weights, biases excluded
    "inception3a": 159, "inception3b": 380, "inception4a": 364, "inception4b": 437,
    "inception4d": 580, "inception4e": 840, "inception5b": 1388, "fc": 1000,
}  # fmt: skip


def test_googlenet_against_the_paper():
    model, summary = summarize_registered("googlenet")
    # "second conv" is the 1x1 reduction plus the 3x3 convolution
    second_conv = summary.macs_of("stem.3") + summary.macs_of("stem.4")
    assert second_conv / 1e6 == pytest.approx(360, rel=0.02)
    for name, millions in GOOGLENET_MACS.items():
        # within 2%, or within the table's rounding to whole millions (fc: 1.024M is "1M")
        error = abs(summary.macs_of(name) / 1e6 - millions)
        assert error <= max(0.02 * millions, 0.5), (name, summary.macs_of(name))
    for name, kilo in GOOGLENET_WEIGHTS.items():
        weights = sum(
            p.numel()
            for n, p in model.named_parameters()
            if n.startswith(name + ".") and n.endswith("weight")
        )
        assert weights / 1024 == pytest.approx(kilo, rel=0.02), name
    assert summary.rows[-1].output_shape == [1000]


def test_three_stacked_3x3_convolutions_see_7x7():
    c = 16
    stack = torch.nn.Sequential(*(torch.nn.Conv2d(c, c, 3, bias=False) for _ in range(3)))
    single = torch.nn.Conv2d(c, c, 7, bias=False)
    x = torch.zeros(1, c, 15, 15)
    stacked, one = summarize(stack, x), summarize(single, x)
    assert stacked.rows[-1].receptive_field == one.rows[-1].receptive_field == [7, 7]
    assert stacked.total_params == 27 * c * c
    assert one.total_params == 49 * c * c


def test_dilated_3x3_sees_5x5_with_9_weights():
    conv = torch.nn.Conv2d(1, 1, 3, dilation=2, bias=False)
    summary = summarize(conv, torch.zeros(1, 1, 9, 9))
    assert summary.rows[0].receptive_field == [5, 5]
    assert summary.total_params == 9


def test_small_input_variants():
    for name, config, shape in [
        ("lenet5", {"input_size": 28}, (1, 28, 28)),
        ("vgg11", {"input_size": 32, "num_classes": 10}, (3, 32, 32)),
        ("googlenet", {"small_input": True, "input_size": 28, "num_classes": 10}, (1, 28, 28)),
        ("nin", {"small_input": True, "num_classes": 10, "in_channels": 1}, (1, 28, 28)),
        ("resnet18", {"num_classes": 10, "in_channels": 1}, (1, 28, 28)),
    ]:
        if name == "googlenet":
            config["in_channels"] = 1
        model = create_model(name, **config).eval()
        assert model(torch.zeros(2, *shape)).shape == (2, config.get("num_classes", 10)), name
