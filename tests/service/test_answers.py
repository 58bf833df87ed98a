"""What /classify answers for a multi-label model, and with min_score for any model; /info
says how the model decides. The app in process (FastAPI's TestClient)."""

import pytest

import textcnn
from tests.conftest import tiny_config
from tests.service.test_hardening import started
from tests.training.test_multilabel import emotions, write_jsonl
from textcnn.training.pipeline import fit_and_save


@pytest.fixture(scope="module")
def multi(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("served-multi")
    data = write_jsonl(tmp / "train.jsonl", emotions(400))
    model_dir = fit_and_save(tiny_config(data, tmp / "run", epochs=12, dev_fraction=0.2))
    client = started(model_dir)
    yield client, textcnn.load(model_dir)
    client.__exit__(None, None, None)


def test_a_multi_label_model_answers_every_label_it_assigns(multi):
    client, classifier = multi
    body = client.post("/classify", json={"text": "so happy yet so scared", "explain": True}).json()
    [result] = body["results"]
    assert {e["label"] for e in result["labels"]} == {"joy", "fear"}
    assert all(e["assigned"] for e in result["labels"])
    assert result["label"] == result["labels"][0]["label"] and result["abstained"] is False
    assert all(e["explanation"] for e in result["labels"])  # spans per returned label
    [expected] = classifier.classify(["so happy yet so scared"])
    assert [e["label"] for e in result["labels"]] == list(expected.assigned)
    everything = client.post("/classify", json={"text": "angry", "top_k": None}).json()
    labels = everything["results"][0]["labels"]
    assert len(labels) == 3 and [e["assigned"] for e in labels].count(True) >= 1
    info = client.get("/info").json()
    assert info["multi_label"] is True and set(info["thresholds"]) == {"anger", "fear", "joy"}


def test_min_score_makes_the_answer_null_and_keeps_the_scores(model_dir):
    client = started(model_dir, min_score=0.5)
    try:
        ask = {"texts": ["a good film", "the the the"]}
        sure = client.post("/classify", json={**ask, "min_score": 0.0}).json()["results"]
        assert all(r["label"] is not None and r["abstained"] is False for r in sure)
        unsure = client.post("/classify", json={**ask, "min_score": 1.0}).json()["results"]
        for result, answered in zip(unsure, sure, strict=True):
            expected = answered["score"] < 1.0
            assert result["abstained"] is expected and (result["label"] is None) is expected
            assert result["score"] == answered["score"] and result["labels"]
        default = client.post("/classify", json=ask).json()["results"]  # the server's 0.5
        assert all(r["abstained"] is (r["score"] < 0.5) for r in default)
        bad = client.post("/classify", json={**ask, "min_score": 1.5})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "body.min_score"
    finally:
        client.__exit__(None, None, None)


def test_a_single_label_answer_keeps_its_old_shape(model_dir):
    client = started(model_dir)
    try:
        [result] = client.post("/classify", json={"text": "a good film"}).json()["results"]
        assert set(result) == {"label", "score", "labels", "truncated", "explanation", "abstained"}
        assert [set(e) for e in result["labels"]] == [{"label", "score"}]
        assert client.get("/reliability.png").content[:4] == b"\x89PNG"
    finally:
        client.__exit__(None, None, None)
