"""Several models behind one server, and a new version swapped in without dropping a
request: the app in process (FastAPI's TestClient) and `textcnn serve` in a subprocess."""

import asyncio
import shutil
import threading
import time

import httpx
import pytest
from typer.testing import CliRunner

import textcnn
from service.main import create_app
from service.settings import Settings
from tests.conftest import tiny_config, tiny_texts, write_tsv
from tests.service.conftest import Server
from tests.service.test_hardening import started
from tests.tampering import TAMPERED, copy_model
from textcnn.cli import app
from textcnn.training.pipeline import fit_and_save

KEY = {"Authorization": "Bearer s3cret"}
runner = CliRunner()


@pytest.fixture(scope="module")
def topics(tmp_path_factory):
    """A second model, with other labels than the sentiment one."""
    tmp = tmp_path_factory.mktemp("topics")
    rows = [(text, "food" if i % 2 else "sport") for i, (text, _) in enumerate(tiny_texts(80))]
    return fit_and_save(tiny_config(write_tsv(tmp / "train.tsv", rows), tmp / "topics", epochs=2))


def client_for(**models):
    return started(None, models={k: str(v) for k, v in models.items()}, api_key="s3cret")


def test_two_models_answer_as_their_own_servers(model_dir, topics):
    client = client_for(sentiment=model_dir, topics=topics)
    try:
        listed = client.get("/models", headers=KEY).json()
        assert listed["default"] == "sentiment"
        assert [(m["name"], m["state"]) for m in listed["models"]] == [
            ("sentiment", "ready"),
            ("topics", "ready"),
        ]
        texts = [text for text, _ in tiny_texts(30, seed=4)]
        for name, path in (("sentiment", model_dir), ("topics", topics)):
            body = {"texts": texts, "top_k": None, "model": name}
            answer = client.post("/classify", json=body, headers=KEY).json()
            assert answer["model"]["name"] == name
            expected = textcnn.load(path).predict(texts, top_k=None)
            for got, want in zip(answer["results"], expected, strict=True):
                assert [e["label"] for e in got["labels"]] == [p.label for p in want]
                for e, p in zip(got["labels"], want, strict=True):
                    assert abs(e["score"] - p.score) < 1e-6
        default = client.post("/classify", json={"text": "good"}, headers=KEY).json()
        assert default["model"]["name"] == "sentiment"
        info = client.get("/info?model=topics", headers=KEY).json()
        assert info["labels"] == ["food", "sport"]
        unknown = client.post("/classify", json={"text": "x", "model": "nope"}, headers=KEY)
        assert unknown.status_code == 404 and "sentiment, topics" in unknown.json()["detail"]
        assert client.get("/info?model=nope", headers=KEY).status_code == 404
        metrics = client.get("/metrics", headers=KEY).text
        assert 'model="topics",route="/classify",status="200"' in metrics
        assert 'textcnn_batch_size_count{model="topics"}' in metrics
    finally:
        client.__exit__(None, None, None)


def test_a_reload_swaps_in_the_new_version_and_a_broken_one_keeps_the_old(
    model_dir, topics, tmp_path
):
    served = tmp_path / "served"
    shutil.copytree(model_dir, served)
    client = client_for(main=served)
    try:
        before = client.post("/classify", json={"text": "good"}, headers=KEY).json()
        replace_dir(served, TAMPERED["NaN weights"][0])
        failed = client.post("/models/main/reload", headers=KEY)
        assert failed.status_code == 422 and "NaN" in failed.json()["detail"]
        still = client.post("/classify", json={"text": "good"}, headers=KEY).json()
        assert still["model"] == before["model"]  # the old version serves on
        state = client.get("/models", headers=KEY).json()["models"][0]
        assert state["state"] == "ready (a reload failed)" and "NaN" in state["reason"]
        assert (
            'textcnn_reload_failures_total{model="main"} 1.0'
            in client.get("/metrics", headers=KEY).text
        )
        shutil.rmtree(served)
        shutil.copytree(topics, served)  # other labels: allowed, and the version says so
        assert client.post("/models/main/reload", headers=KEY).status_code == 200
        after = client.post("/classify", json={"text": "good"}, headers=KEY).json()
        assert after["model"]["version"] != before["model"]["version"]
        assert after["results"][0]["label"] in ("food", "sport")
        shutil.rmtree(served)  # deleted while served: it serves on from memory
        assert client.post("/classify", json={"text": "good"}, headers=KEY).status_code == 200
        gone = client.post("/models/main/reload", headers=KEY)
        assert gone.status_code == 422 and "not a model directory" in gone.json()["detail"]
        assert client.post("/models/nope/reload", headers=KEY).status_code == 404
        assert client.post("/models/main/reload").status_code == 401
    finally:
        client.__exit__(None, None, None)


def replace_dir(path, change):
    shutil.rmtree(path.with_name("next"), ignore_errors=True)
    copy_model(path, path.with_name("next"), change)
    shutil.rmtree(path)
    path.with_name("next").rename(path)


def test_without_a_key_reloads_are_refused_and_a_reload_running_is_a_409(model_dir):
    client = started(model_dir)
    try:
        refused = client.post("/models/run/reload")
        assert refused.status_code == 403 and "TEXTCNN_API_KEY" in refused.json()["detail"]
    finally:
        client.__exit__(None, None, None)
    client = client_for(main=model_dir)
    try:
        served = client.app.state.models.served["main"]
        portal = client.portal  # the app's event loop
        portal.call(served.reloading.acquire)
        busy = client.post("/models/main/reload", headers=KEY)
        assert busy.status_code == 409 and "running" in busy.json()["detail"]
        portal.call(served.reloading.release)
    finally:
        client.__exit__(None, None, None)


def test_a_models_folder_with_a_broken_model_serves_the_others(model_dir, topics, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(model_dir, folder / "sentiment")
    copy_model(topics, folder / "broken", TAMPERED["tokenizer missing"][0])
    client = started(None, models_dir=folder, default_model="sentiment")
    try:
        ready = client.get("/ready").json()
        assert "tokenizer.json: missing" in ready["failed"]["broken"]
        ok = client.post("/classify", json={"text": "good", "model": "sentiment"})
        assert ok.status_code == 200
        broken = client.post("/classify", json={"text": "good", "model": "broken"})
        assert broken.status_code == 503 and "tokenizer.json" in broken.json()["detail"]
    finally:
        client.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "a=X", "--model", "a=X"], "two models named 'a'"),
        (["--model", "bad/name=X"], "model name 'bad/name'"),
        (["--model", "x" * 200 + "=X"], "use 1 to 64 letters"),
        (["--model", "a=X", "--default", "b"], "--default 'b': not one of a"),
    ],
)
def test_bad_model_names_are_messages(model_dir, args, message):
    args = [a.replace("X", str(model_dir)) for a in args]
    result = runner.invoke(app, ["serve", *args])
    assert result.exit_code == 1 and message in result.output


def test_swaps_under_load_drop_no_request(model_dir, topics, tmp_path):
    """The real server under steady requests while its model directory is replaced and
    reloaded three times: every request answered 200, by the old or the new version."""
    served = tmp_path / "served"
    shutil.copytree(model_dir, served)
    server = Server(served, api_key="s3cret")
    statuses, versions, stop = [], set(), threading.Event()

    def load():
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                answer = client.post(f"{server.url}/classify", json={"text": "good"}, headers=KEY)
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    versions.add(answer.json()["model"]["version"])

    threads = [threading.Thread(target=load) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for source in (topics, model_dir, topics):
            time.sleep(0.5)
            replace_dir(
                served,
                lambda folder, source=source: (
                    shutil.rmtree(folder),
                    shutil.copytree(source, folder),
                ),
            )
            reloaded = httpx.post(f"{server.url}/models/run/reload", headers=KEY, timeout=30)
            assert reloaded.status_code == 200, reloaded.text
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        server.stop()
    assert statuses and set(statuses) == {200}
    assert len(versions) == 2  # the two models' versions, nothing else


def test_the_settings_refuse_a_default_that_is_not_served(model_dir):
    settings = Settings(models={"a": model_dir}, default_model="b")
    with pytest.raises(ValueError, match="not one of a"):
        asyncio.run(_start(settings))


async def _start(settings):
    lifespan = create_app(settings).router.lifespan_context
    async with lifespan(create_app(settings)):
        pass
