import pytest
import torch

from textcnn.models import TextCNN, TextCNNConfig, create_model


def tiny(**overrides) -> TextCNN:
    config = {"vocab_size": 30, "embed_dim": 8, "num_filters": 5, "num_classes": 3, **overrides}
    return TextCNN(TextCNNConfig(**config)).eval()


def test_kim_parameter_count():
    model = create_model("textcnn", vocab_size=18_765, embed_dim=300, num_classes=2)
    assert sum(p.numel() for p in model.parameters()) == 5_990_402


def test_texts_shorter_than_the_widest_kernel_work():
    model = tiny()
    out = model(torch.tensor([[4], [5]]))
    assert out.shape == (2, 3) and out.isfinite().all()


def test_padding_never_changes_a_prediction():
    model = tiny()
    ids = torch.tensor([[3, 9, 4, 7, 2, 8]])
    alone = model(ids)
    padded = model(torch.cat([ids, torch.zeros(1, 20, dtype=torch.long)], dim=1))
    torch.testing.assert_close(alone, padded)
    # a short text batched with a long one gives the same answer as alone
    short = torch.tensor([[5, 6]])
    batch = torch.tensor([[5, 6, 0, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7, 8]])
    torch.testing.assert_close(model(short)[0], model(batch)[0])


def test_padding_positions_never_win_the_max():
    model = tiny(kernel_sizes=(2,))
    with torch.no_grad():  # make the all-padding window the largest possible response
        model.ngrams.width2.conv.conv.bias.fill_(100.0)
        model.ngrams.width2.conv.conv.weight.fill_(-1.0)
        model.embedding.weight[1:].abs_()
    features = model.forward_features(torch.tensor([[1, 2, 3, 0, 0, 0]]))
    # only the windows (1,2) and (2,3) count; the padding windows would give 100
    assert features.max() < 100


@pytest.mark.parametrize("mode", ["rand", "static", "non-static", "multichannel"])
def test_embedding_modes(mode):
    vectors = torch.randn(30, 8)
    model = TextCNN(
        TextCNNConfig(vocab_size=30, embed_dim=8, num_filters=4, embedding_mode=mode),
        None if mode == "rand" else vectors,
    )
    if mode != "rand":
        torch.testing.assert_close(model.embedding.weight[1:], vectors[1:])
    assert model.embedding.weight[0].eq(0).all()  # padding is a zero vector
    assert model.embedding.weight.requires_grad == (mode != "static")
    if mode == "multichannel":
        assert not model.static_embedding.weight.requires_grad
        torch.testing.assert_close(model.static_embedding.weight, model.embedding.weight)
    model(torch.tensor([[1, 2, 3, 4, 5]])).sum().backward()
    if mode == "multichannel":
        assert model.embedding.weight.grad is not None
        assert model.static_embedding.weight.grad is None


def test_multichannel_applies_each_filter_to_both_channels_and_adds():
    model = TextCNN(
        TextCNNConfig(
            vocab_size=30,
            embed_dim=8,
            num_filters=4,
            kernel_sizes=(3,),
            embedding_mode="multichannel",
        ),
        torch.randn(30, 8),
    ).eval()
    with torch.no_grad():
        model.embedding.weight[1:] += 1.0  # the tuned channel drifts from the frozen one
    ids = torch.tensor([[1, 2, 3, 4]])
    conv = model.ngrams.width3.conv.conv
    tuned = model.embedding(ids).transpose(1, 2)
    frozen = model.static_embedding(ids).transpose(1, 2)
    both = (
        torch.nn.functional.conv1d(tuned, conv.weight, padding=2)
        + torch.nn.functional.conv1d(frozen, conv.weight, padding=2)
        + conv.bias[None, :, None]
    )
    expected = torch.relu(both).amax(-1)
    torch.testing.assert_close(model.forward_features(ids), expected)


def test_bad_configurations_are_value_errors():
    with pytest.raises(ValueError, match="embedding_mode"):
        TextCNNConfig(embedding_mode="frozen")
    with pytest.raises(ValueError, match="shape"):
        TextCNN(
            TextCNNConfig(vocab_size=10, embed_dim=4, embedding_mode="static"), torch.zeros(9, 4)
        )
    with pytest.raises(ValueError, match="dropout"):
        TextCNNConfig(dropout=1.5)


@pytest.mark.parametrize("wide", [True, False])
def test_predictions_do_not_depend_on_batch_padding_in_either_convolution(wide):
    model = tiny(wide=wide)
    texts = [torch.tensor([[4, 9]]), torch.tensor([[3, 9, 4, 7, 2, 8, 5]])]
    batch = torch.tensor([[4, 9, 0, 0, 0, 0, 0, 0, 0], [3, 9, 4, 7, 2, 8, 5, 0, 0]])
    together = model(batch)
    for row, ids in enumerate(texts):
        torch.testing.assert_close(model(ids)[0], together[row])


def test_wide_convolution_sees_the_edges():
    narrow, wide = tiny(wide=False, kernel_sizes=(3,)), tiny(wide=True, kernel_sizes=(3,))
    ids = torch.tensor([[5, 6, 7, 8]])
    assert narrow.ngrams.width3.conv(narrow.embedding(ids).transpose(1, 2)).shape[-1] == 2
    assert wide.ngrams.width3.conv(wide.embedding(ids).transpose(1, 2)).shape[-1] == 6
