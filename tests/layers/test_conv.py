import pytest
import torch

from textcnn.layers import ConvBlock, output_size, same_padding
from textcnn.models.summary import summarize

IMAGE = torch.tensor(
    [
        [207, 210, 195, 63, 57, 56, 59],
        [204, 212, 197, 82, 76, 74, 75],
        [202, 198, 202, 72, 65, 67, 63],
        [209, 201, 187, 78, 69, 71, 64],
    ],
    dtype=torch.float32,
)


def test_lecture_cross_correlation_example():
    block = ConvBlock(2, 1, 1, 3, bias=False, activation_name=None)
    with torch.no_grad():
        block.conv.weight.copy_(torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]))
    out = block(IMAGE[None, None])[0, 0]
    assert out.shape == (2, 5)
    assert out[0, :4].tolist() == [-26, -533, -517, -28]
    assert out[1, :4].tolist() == [-29, -505, -513, -25]


def test_valid_convolution_output_size():
    block = ConvBlock(2, 3, 32, 5)
    assert block(torch.zeros(1, 3, 224, 224)).shape == (1, 32, 220, 220)
    assert output_size(224, 5) == 220


def test_same_padding():
    assert same_padding(9) == 4
    block = ConvBlock(2, 10, 4, 9, padding="same")
    assert block.conv.padding == (4, 4)
    assert block(torch.zeros(1, 10, 64, 64)).shape[-2:] == (64, 64)
    # dilation widens the kernel: 3 taps with dilation 2 span 5, so padding 2
    assert same_padding(3, dilation=2) == 2


def test_same_padding_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="odd"):
        same_padding(4)
    with pytest.raises(ValueError, match="stride 1"):
        ConvBlock(2, 3, 3, 3, stride=2, padding="same")


def test_a_stride_that_does_not_fit_is_an_error_unless_cropping_is_asked_for():
    with pytest.raises(ValueError, match="no whole number of positions"):
        output_size(7, 3, stride=3)
    assert output_size(7, 3, stride=3, allow_crop=True) == 2
    # the inspector flags the crop that PyTorch's layer does silently
    summary = summarize(ConvBlock(2, 1, 1, 3, stride=3), torch.zeros(1, 1, 7, 7))
    assert summary.rows[0].cropped
    assert summary.rows[0].output_shape == [1, 2, 2]


def test_parameter_count_of_eight_5x5_filters_over_three_channels():
    block = ConvBlock(2, 3, 8, 5)
    assert sum(p.numel() for p in block.parameters()) == (5 * 5 * 3 + 1) * 8 == 608


@pytest.mark.parametrize("dim", [1, 2])
def test_norm_positions(dim):
    post = ConvBlock(dim, 4, 8, 3, norm="post")
    pre = ConvBlock(dim, 4, 8, 3, norm="pre")
    plain = ConvBlock(dim, 4, 8, 3)
    assert list(post._modules) == ["conv", "norm", "act"]
    assert list(pre._modules) == ["norm", "act", "conv"]
    assert list(plain._modules) == ["conv", "act"]
    assert post.norm.num_features == 8 and pre.norm.num_features == 4
    assert post.conv.bias is None  # the BN right after it would cancel a bias
    x = torch.randn(2, 4, *([9] * dim))
    for block in (post, pre, plain):
        assert block(x).shape == (2, 8, *([7] * dim))


def test_groups_and_dilation_in_1d():
    block = ConvBlock(1, 4, 8, 3, dilation=2, groups=2, activation_name=None)
    assert block(torch.zeros(1, 4, 10)).shape == (1, 8, 6)
    assert block.conv.weight.shape == (8, 2, 3)


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="dim"):
        ConvBlock(3, 1, 1, 3)
    with pytest.raises(ValueError, match="norm"):
        ConvBlock(2, 1, 1, 3, norm="middle")
    with pytest.raises(ValueError, match="activation"):
        ConvBlock(2, 1, 1, 3, activation_name="swishy")
