"""The app in process (FastAPI's TestClient): what a failing or tampered model does to it."""

import json
import shutil
import time

import pytest
from fastapi.testclient import TestClient
from safetensors.torch import load_file, save_file

from service.app import create_app
from service.settings import Settings


def started(model_dir, **settings):
    """A TestClient whose model has finished loading (or failed to)."""
    client = TestClient(create_app(Settings(model_dir=model_dir, **settings)))
    client.__enter__()
    deadline = time.monotonic() + 30
    while client.app.state.batcher is None and client.app.state.load_error is None:
        assert time.monotonic() < deadline, "the model neither loaded nor failed"
        time.sleep(0.05)
    return client


def test_a_failing_forward_pass_is_a_500_counted_in_metrics_and_the_server_goes_on(model_dir):
    client = started(model_dir)
    try:
        classifier = client.app.state.classifier
        real = classifier.classify

        def classify(texts, **kwargs):
            if any("boom" in t for t in texts):
                raise RuntimeError("simulated failure inside the model")
            return real(texts, **kwargs)

        classifier.classify = classify
        failed = client.post("/classify", json={"text": "boom"})
        assert failed.status_code == 500
        assert failed.json() == {"detail": "internal error; see the server log"}
        assert client.post("/classify", json={"text": "a good film"}).status_code == 200
        metrics = client.get("/metrics").text
        assert 'textcnn_requests_total{route="/classify",status="500"} 1.0' in metrics
        assert 'textcnn_requests_total{route="/classify",status="200"} 1.0' in metrics
    finally:
        client.__exit__(None, None, None)


def tampered(model_dir, tmp_path, change):
    target = tmp_path / "tampered"
    shutil.copytree(model_dir, target)
    change(target)
    return target


def edit_config(**fields):
    def change(folder):
        config = json.loads((folder / "config.json").read_text())
        for key, value in fields.items():
            section, _, name = key.partition("__")
            if name:
                config[section][name] = value
            else:
                config[section] = value
        (folder / "config.json").write_text(json.dumps(config))

    return change


def nan_weights(folder):
    state = load_file(folder / "model.safetensors")
    state["classifier.weight"][0, 0] = float("nan")
    save_file(state, folder / "model.safetensors")


def foreign_token(folder):
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"]["zzzz"] = 10**6
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))


TAMPERED = {
    "fewer labels": (edit_config(labels=["positive"]), "1 labels for a network with 2 outputs"),
    "token id past the embedding": (foreign_token, "token id 1000000 is beyond"),
    "NaN weights": (nan_weights, "NaN or infinite"),
    "huge vocabulary": (edit_config(model__vocab_size=10**8), "weights do not match config"),
    "float size": (edit_config(model__embed_dim=16.0), "embed_dim must be an integer"),
    "labels not strings": (edit_config(labels=[1, 2]), "labels must be distinct"),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_model_is_refused_at_load_with_the_reason(model_dir, tmp_path, case):
    change, reason = TAMPERED[case]
    client = started(tampered(model_dir, tmp_path, change))
    try:
        ready = client.get("/ready")
        assert ready.status_code == 503 and reason in ready.json()["detail"]
        answer = client.post("/classify", json={"text": "good"})
        assert answer.status_code == 503 and reason in answer.json()["detail"]
    finally:
        client.__exit__(None, None, None)


def test_with_a_key_ready_is_a_bare_status_and_the_reason_needs_the_key(model_dir, tmp_path):
    broken = tampered(model_dir, tmp_path, nan_weights)
    client = started(broken, api_key="s3cret")
    try:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"status": "not ready"}
        assert str(tmp_path) not in ready.text
        assert client.get("/info").status_code == 401
        info = client.get("/info", headers={"Authorization": "Bearer s3cret"})
        assert info.status_code == 503 and "NaN" in info.json()["detail"]
    finally:
        client.__exit__(None, None, None)
    client = started(model_dir, api_key="s3cret")
    try:
        assert client.get("/ready").json() == {"status": "ready"}
    finally:
        client.__exit__(None, None, None)


def test_the_inference_path_is_a_setting_and_shown_in_info(model_dir):
    for settings, path in [({}, "folded"), ({"inference": "conv"}, "conv")]:
        client = started(model_dir, **settings)
        try:
            assert client.get("/info").json()["inference"]["path"] == path
            assert client.post("/classify", json={"text": "a good film"}).status_code == 200
        finally:
            client.__exit__(None, None, None)
    client = started(model_dir, max_table_mb=0)
    try:
        info = client.get("/info").json()["inference"]
        assert info["path"] == "conv" and "MB >" in info["reason"]
    finally:
        client.__exit__(None, None, None)
