import torch
from torch import nn

from textcnn.layers import ConvBlock, Parallel
from textcnn.models.summary import summarize


def naive_inception() -> Parallel:
    return Parallel(
        {
            "1x1": ConvBlock(2, 256, 128, 1),
            "3x3": ConvBlock(2, 256, 192, 3, padding=1),
            "5x5": ConvBlock(2, 256, 96, 5, padding=2),
            "pool": nn.MaxPool2d(3, 1, padding=1),
        }
    )


def bottleneck_inception() -> Parallel:
    return Parallel(
        {
            "1x1": ConvBlock(2, 256, 128, 1),
            "3x3": nn.Sequential(ConvBlock(2, 256, 64, 1), ConvBlock(2, 64, 192, 3, padding=1)),
            "5x5": nn.Sequential(ConvBlock(2, 256, 64, 1), ConvBlock(2, 64, 96, 5, padding=2)),
            "pool": nn.Sequential(nn.MaxPool2d(3, 1, padding=1), ConvBlock(2, 256, 64, 1)),
        }
    )


def test_parallel_concatenates_branches_along_channels():
    x = torch.zeros(1, 256, 28, 28)
    assert naive_inception()(x).shape == (1, 128 + 192 + 96 + 256, 28, 28)
    assert bottleneck_inception()(x).shape == (1, 128 + 192 + 96 + 64, 28, 28)


def test_lecture_inception_cost_example():
    x = torch.zeros(1, 256, 28, 28)
    naive = summarize(naive_inception(), x).total_macs
    assert round(naive / 1e6) == 854
    assert naive == 28 * 28 * 256 * (128 + 192 * 9 + 96 * 25)
    # The slide claims 358M for the bottleneck version; its own rows add up to ~271M.
    reduced = summarize(bottleneck_inception(), x).total_macs
    assert reduced == 28 * 28 * (256 * 64 * 3 + 256 * 128 + 64 * 192 * 9 + 64 * 96 * 25)
    assert reduced == 271_351_808
    assert round(reduced / 1e6) == 271


def test_parallel_passes_extra_arguments_to_every_branch():
    class Scale(nn.Module):
        def forward(self, x, factor):
            return x * factor

    out = Parallel({"a": Scale(), "b": Scale()})(torch.ones(1, 1, 2), factor=3)
    assert out.eq(3).all() and out.shape == (1, 2, 2)
