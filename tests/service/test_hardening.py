"""The app in process (FastAPI's TestClient): what a failing or tampered model does to it."""

import time

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.tampering import TAMPERED, copy_model


def started(model_dir, **settings):
    """A TestClient whose model has finished loading (or failed to)."""
    if model_dir is not None:
        settings["model_dir"] = model_dir
    client = TestClient(create_app(Settings(**settings)))
    client.__enter__()
    deadline = time.monotonic() + 30
    models = client.app.state.models
    while any(m.state == "loading" for m in models.served.values()):
        assert time.monotonic() < deadline, "the model neither loaded nor failed"
        time.sleep(0.05)
    return client


def test_a_failing_forward_pass_is_a_500_counted_in_metrics_and_the_server_goes_on(model_dir):
    client = started(model_dir)
    try:
        models = client.app.state.models
        classifier = models.served[models.default].classifier
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
        assert 'textcnn_requests_total{model="run",route="/classify",status="500"} 1.0' in metrics
        assert 'textcnn_requests_total{model="run",route="/classify",status="200"} 1.0' in metrics
    finally:
        client.__exit__(None, None, None)


@pytest.mark.parametrize("case", TAMPERED)
def test_a_tampered_model_is_refused_at_load_with_the_reason(model_dir, tmp_path, case):
    change, reason = TAMPERED[case]
    client = started(copy_model(model_dir, tmp_path / "tampered", change))
    try:
        ready = client.get("/ready")
        assert ready.status_code == 503 and reason in ready.json()["detail"]
        answer = client.post("/classify", json={"text": "good"})
        assert answer.status_code == 503 and reason in answer.json()["detail"]
    finally:
        client.__exit__(None, None, None)


def test_a_picture_that_links_out_of_the_model_directory_is_not_served(model_dir, tmp_path):
    def link_out(folder):
        (folder / "confusion.png").unlink()
        (folder / "confusion.png").symlink_to("/etc/passwd")

    client = started(copy_model(model_dir, tmp_path / "linked", link_out))
    try:
        assert client.get("/ready").status_code == 200  # the picture is not the model
        response = client.get("/confusion.png")
        assert response.status_code == 404 and "root:" not in response.text
    finally:
        client.__exit__(None, None, None)


def test_with_a_key_ready_is_a_bare_status_and_the_reason_needs_the_key(model_dir, tmp_path):
    broken = copy_model(model_dir, tmp_path / "broken", TAMPERED["NaN weights"][0])
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
    for settings, path in [
        ({}, "compiled"),
        ({"inference": "folded"}, "folded"),
        ({"inference": "conv"}, "conv"),
    ]:
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
