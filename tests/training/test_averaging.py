import pytest
import torch
from torch import nn

from textcnn.artifacts import load_tensors
from textcnn.training.averaging import WeightAverage
from textcnn.training.optim import FitSettings
from textcnn.training.pipeline import fit_and_save

from ..conftest import tiny_config


def test_moving_average_of_weights_and_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.9)
    expected = model[0].weight.detach().clone()
    for t in range(1, 30):
        with torch.no_grad():
            model[0].weight.add_(1.0)
            model[1].running_mean.add_(1.0)
        average.update(model)
        d = min(0.9, (1 + t) / (10 + t))
        expected = d * expected + (1 - d) * model[0].weight.detach()
    assert torch.allclose(average.shadow["0.weight"], expected)
    assert 0 < average.shadow["1.running_mean"][0] < model[1].running_mean[0]
    assert "1.num_batches_tracked" not in average.shadow  # integers are not averaged

    own = model[0].weight.detach().clone()
    with average.applied(model):
        assert torch.equal(model[0].weight, average.shadow["0.weight"])
    assert torch.equal(model[0].weight, own)
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        WeightAverage(model, decay=1.0)


def test_averaged_run_keeps_the_average_and_resumes_exactly(tiny_corpus, tmp_path):
    plain = fit_and_save(tiny_config(tiny_corpus, tmp_path / "plain", average=0.0))
    averaged = fit_and_save(tiny_config(tiny_corpus, tmp_path / "avg", average=0.9))
    a = load_tensors(plain.parent / "model-last" / "model.safetensors")
    b = load_tensors(averaged.parent / "model-last" / "model.safetensors")
    assert not torch.equal(a["classifier.weight"], b["classifier.weight"])

    def interrupt(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    config = tiny_config(tiny_corpus, tmp_path / "resumed", average=0.9)
    with pytest.raises(KeyboardInterrupt):
        fit_and_save(config, on_epoch_end=interrupt)
    resumed = fit_and_save(config, resume=True)
    for name in ("model-best", "model-last"):
        x = load_tensors(averaged.parent / name / "model.safetensors")
        y = load_tensors(resumed.parent / name / "model.safetensors")
        assert all(torch.equal(x[k], y[k]) for k in x), name


def test_resume_with_another_averaging_setting_is_refused(tiny_corpus, tmp_path):
    def interrupt(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_and_save(tiny_config(tiny_corpus, tmp_path, average=0.0), on_epoch_end=interrupt)
    with pytest.raises(ValueError, match="started with average=0.0, not 0.9; resume it with"):
        fit_and_save(tiny_config(tiny_corpus, tmp_path, average=0.9), resume=True)


@pytest.mark.parametrize(("key", "value"), [("average", 1.0), ("average", -0.1), ("max_norm", -1)])
def test_out_of_range_settings_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        FitSettings(**{key: value})
