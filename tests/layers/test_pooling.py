import pytest
import torch

from textcnn.layers import GlobalPool, KMaxPool, StochasticPool, max_over_time, pool

GRID = torch.tensor([[5, 3, 0, 3], [4, 0, 9, 4], [2, 4, 1, 2], [1, 3, 2, 3]], dtype=torch.float64)[
    None, None
]


def test_stochastic_pooling_evaluation_is_the_probability_weighted_average():
    layer = StochasticPool(2, 2, 2).eval()
    expected = torch.tensor([[50 / 12, 106 / 16], [30 / 10, 18 / 8]], dtype=torch.float64)
    torch.testing.assert_close(layer(GRID)[0, 0], expected)


def test_stochastic_pooling_training_picks_cells_in_proportion_to_their_values():
    torch.manual_seed(0)
    layer = StochasticPool(2, 2, 2).train()
    trials = 20_000
    picks = layer(GRID.expand(trials, 1, 4, 4).contiguous())  # trials x 1 x 2 x 2
    # top-left window [5, 3, 4, 0]: value v is picked with probability v / 12
    top_left = picks[:, 0, 0, 0]
    for value, p in ((5, 5 / 12), (3, 3 / 12), (4, 4 / 12), (0, 0.0)):
        frequency = (top_left == value).double().mean().item()
        # three standard errors of a binomial proportion
        assert abs(frequency - p) <= 3 * (p * (1 - p) / trials) ** 0.5 + 1e-9
    # every output is one of its window's cells
    assert set(picks[:, 0, 1, 1].unique().tolist()) <= {1.0, 2.0, 3.0}


def test_stochastic_pooling_gradient_reaches_only_the_picked_cell():
    torch.manual_seed(1)
    x = GRID.clone().requires_grad_(True)
    StochasticPool(2, 2, 2).train()(x).sum().backward()
    assert x.grad.sum().item() == 4  # one cell per window
    assert ((x.grad == 0) | (x.grad == 1)).all()
    # per window exactly one cell
    assert x.grad[0, 0].unfold(0, 2, 2).unfold(1, 2, 2).sum(dim=(-1, -2)).eq(1).all()


def test_stochastic_pooling_in_1d_and_on_all_zero_windows():
    layer = StochasticPool(1, 2).eval()
    out = layer(torch.tensor([[[0.0, 0.0, 1.0, 3.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[0.0, 10 / 4]]]))
    assert layer.train()(torch.zeros(3, 2, 6)).eq(0).all()


def test_max_over_time_ignores_padding():
    x = torch.tensor([[[1.0, 2.0, 9.0]], [[-5.0, -4.0, 9.0]]])  # N x 1 x L
    lengths = torch.tensor([2, 1])
    assert max_over_time(x, lengths).flatten().tolist() == [2.0, -5.0]
    assert GlobalPool("max")(x).flatten().tolist() == [9.0, 9.0]


def test_global_average_pool_2d():
    x = torch.arange(8.0).view(1, 2, 2, 2)
    assert GlobalPool("avg")(x).tolist() == [[1.5, 5.5]]


def test_k_max_pooling_keeps_order_and_skips_padding():
    x = torch.tensor([[[3.0, 1.0, 5.0, 2.0, 4.0, 8.0]]])
    assert KMaxPool(3)(x).tolist() == [[[5.0, 4.0, 8.0]]]
    assert KMaxPool(3)(x, torch.tensor([5])).tolist() == [[[3.0, 5.0, 4.0]]]
    assert KMaxPool(3)(x, torch.tensor([2])).tolist() == [[[3.0, 1.0, 0.0]]]
    with pytest.raises(ValueError, match="at least 7 positions"):
        KMaxPool(7)(x)


@pytest.mark.parametrize("mode", ["max", "avg", "stochastic", "fractional"])
def test_pool_factory_2d(mode):
    layer = pool(mode, 2, 2)
    out = layer(torch.rand(2, 3, 16, 16))
    assert out.shape[:2] == (2, 3)
    expected = 11 if mode == "fractional" else 8  # fractional: 16 / sqrt(2)
    assert out.shape[-1] == expected


def test_pool_factory_rejects_unknown_modes():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool("median", 2, 2)
    with pytest.raises(ValueError, match="2D"):
        pool("fractional", 1, 2)
