import json

import pytest
import torch

import textcnn
from tests.conftest import tiny_config
from textcnn.training.pipeline import fit_and_save


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from tests.conftest import tiny_texts, write_tsv

    tmp = tmp_path_factory.mktemp("model")
    data = write_tsv(tmp / "train.tsv", tiny_texts())
    return fit_and_save(tiny_config(data, tmp / "run"))


def test_predict_is_always_batched(model_dir):
    classifier = textcnn.load(model_dir)
    results = classifier.predict(["a good film", "awful"], top_k=2)
    assert len(results) == 2 and all(len(r) == 2 for r in results)
    assert {p.label for p in results[0]} == {"positive", "negative"}
    assert results[0][0].score >= results[0][1].score
    assert abs(sum(p.score for p in results[0]) - 1) < 1e-5
    assert len(classifier.predict(["x"], top_k=None)[0]) == 2
    assert classifier.predict([]) == []
    with pytest.raises(TypeError, match="list of texts"):
        classifier.predict("a good film")
    with pytest.raises(ValueError, match="top_k"):
        classifier.predict(["x"], top_k=0)


def copy_model(model_dir, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(model_dir, target)
    return target


def test_truncated_weights_give_a_clear_error(model_dir, tmp_path):
    target = copy_model(model_dir, tmp_path)
    weights = target / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="damaged weights file.*retrain"):
        textcnn.load(target)


def test_unknown_format_version_gives_a_clear_error(model_dir, tmp_path):
    target = copy_model(model_dir, tmp_path)
    config = json.loads((target / "config.json").read_text())
    config["format_version"] = 99
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="format version 99 is not supported"):
        textcnn.load(target)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"task": "audio"}, "a model of task 'audio'; this textcnn loads text, image models"),
        ({"best_epoch": "3"}, "best_epoch must be an integer"),
        ({"surprise": 1}, "unknown field surprise"),
        ({"labels": None}, "labels must be a list"),
    ],
)
def test_a_card_of_another_task_or_shape_is_refused(model_dir, tmp_path, edit, message):
    target = copy_model(model_dir, tmp_path)
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(ValueError, match=message):
        textcnn.load(target)


def test_a_card_written_before_the_typed_card_still_loads(model_dir, tmp_path):
    """Cards of textcnn 0.1.0 had no world_size and no epoch; they load as they are."""
    target = copy_model(model_dir, tmp_path)
    config = json.loads((target / "config.json").read_text())
    del config["world_size"], config["epoch"]
    (target / "config.json").write_text(json.dumps(config))
    card = textcnn.load(target).card
    assert card.world_size == 1 and card.model.num_classes == 2


def test_other_damage_gives_clear_errors(model_dir, tmp_path):
    target = copy_model(model_dir, tmp_path)
    (target / "tokenizer.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable tokenizer"):
        textcnn.load(target)
    (target / "config.json").write_text("{")
    with pytest.raises(ValueError, match="damaged JSON"):
        textcnn.load(target)
    with pytest.raises(ValueError, match="not a model directory"):
        textcnn.load(tmp_path / "nothing")


def test_the_device_argument_places_the_whole_model(model_dir):
    # safetensors files hold no device: the loader puts every tensor where it is asked to
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        classifier = textcnn.load(model_dir, device=device)
        tensors = [*classifier.model.parameters(), *classifier.network.parameters()]
        assert {t.device for t in tensors} == {torch.device(device)}
