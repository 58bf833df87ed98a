"""The real server: `textcnn serve` in a subprocess on 127.0.0.1 and a free port."""

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import textcnn
from tests.conftest import tiny_texts
from tests.service.conftest import Server

TEXTS = [text for text, _ in tiny_texts(100, seed=3)]


def classify(server, body, **kwargs):
    # json.dumps escapes non-ASCII, so a lone surrogate travels as the JSON escape "\udc80"
    return httpx.post(
        f"{server.url}/classify",
        content=json.dumps(body),
        headers={"content-type": "application/json", **kwargs.pop("headers", {})},
        timeout=30,
        **kwargs,
    )


def test_probes_and_info(server, model_dir):
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/ready").status_code == 200
    info = httpx.get(f"{server.url}/info").json()
    assert info["labels"] == ["negative", "positive"]
    assert info["max_length_tokens"] == 12
    assert info["inference"]["path"] == "compiled"
    assert info["max_texts_per_request"] == 150
    assert "dev" in info["metrics"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_one_text_and_a_batch_match_the_library(server, model_dir):
    classifier = textcnn.load(model_dir)
    one = classify(server, {"text": TEXTS[0]})
    assert one.status_code == 200
    body = one.json()
    assert body["model"]["name"] == "run" and len(body["model"]["version"]) == 12
    [result] = body["results"]
    expected = classifier.predict([TEXTS[0]])[0][0]
    assert result["label"] == expected.label
    assert result["score"] == pytest.approx(expected.score, abs=1e-5)
    assert len(result["labels"]) == 1 and result["explanation"] is None

    batch = classify(server, {"texts": TEXTS, "top_k": None}).json()["results"]
    expected = classifier.predict(TEXTS, top_k=None)
    assert len(batch) == 100
    for got, want in zip(batch, expected, strict=True):
        assert [x["label"] for x in got["labels"]] == [p.label for p in want]
        assert [x["score"] for x in got["labels"]] == pytest.approx(
            [p.score for p in want], abs=1e-5
        )


def test_explanations_are_spans_of_the_input(server):
    text = "Honestly,   the plot was GREAT and the actors were wonderful!"
    [result] = classify(server, {"text": text, "explain": True}).json()["results"]
    spans = result["explanation"]
    assert spans
    for span in spans:
        assert text[span["start"] : span["end"]] == span["text"]
        assert span["text"] in text and span["weight"] > 0


def test_long_texts_are_truncated_and_flagged(server):
    results = classify(server, {"texts": ["good " * 40, "good film"]}).json()["results"]
    assert [r["truncated"] for r in results] == [True, False]


def test_metrics_count_requests_by_route_and_status(server):
    classify(server, {"text": "fine"})
    classify(server, {"texts": []})
    text = httpx.get(f"{server.url}/metrics").text
    assert 'textcnn_requests_total{model="run",route="/classify",status="200"}' in text
    assert 'textcnn_requests_total{model="",route="/classify",status="422"}' in text
    assert "textcnn_request_seconds_bucket" in text and "textcnn_batch_size_bucket" in text


SECRET = "my private review text"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": []}, "body.texts"),
        ({"text": "   \n"}, "body.text"),
        ({"texts": ["fine", " "]}, "body.texts"),
        ({"texts": ["fine", 3]}, "body.texts.1"),
        ({"text": 5}, "body.text"),
        ({"texts": SECRET}, "body.texts"),
        ({"text": SECRET, "texts": [SECRET]}, "body"),
        ({}, "body"),
        ({"text": SECRET, "top_k": 0}, "body.top_k"),
        ({"text": SECRET, "mood": "happy"}, "body.mood"),
        ({"text": SECRET, "top_k": True}, "body.top_k"),
        ({"text": SECRET, "top_k": "2"}, "body.top_k"),
        ({"text": SECRET, "explain": 1}, "body.explain"),
        ({"text": None}, "body.text"),
        # a key that is not a plain name is never echoed, even a short one
        ({"text": SECRET, "<img src=x onerror=1>": 1}, "body.<unknown key>"),
        ({"text": SECRET, "mood\u202e": 1}, "body.<unknown key>"),
    ],
)
def test_bad_requests_are_422_naming_the_field_without_echoing_input(server, body, field):
    response = classify(server, body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["field"] == field for d in detail), detail
    assert SECRET not in response.text


def test_a_long_unknown_key_is_not_echoed(server):
    key = SECRET * 500  # 11,000 characters, within the body limit
    response = classify(server, {"text": "fine", key: 1})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "field": "body.<unknown key>",
            "message": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]
    assert SECRET not in response.text and len(response.content) < 500


def test_many_errors_are_capped(server):
    response = classify(server, {"texts": list(range(140))})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 21 and detail[-1]["message"] == "120 more errors"


@pytest.mark.parametrize(
    "body",
    [b'{"text": "caf\xe9"}', b"[" * 5000 + b"]" * 5000, b'{"text": "fine"', b""],
    ids=["latin-1", "nested too deep", "unterminated", "empty"],
)
def test_bodies_that_are_not_json_are_422(server, body):
    response = httpx.post(
        f"{server.url}/classify",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"].startswith("body")


def test_the_published_schema_is_what_the_server_does(server):
    schema = httpx.get(f"{server.url}/openapi.json").json()
    responses = schema["paths"]["/classify"]["post"]["responses"]
    assert set(responses) == {"200", "401", "404", "413", "422", "503"}
    error = responses["422"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    detail = schema["components"]["schemas"][error]["properties"]["detail"]
    field = schema["components"]["schemas"][detail["items"]["$ref"].split("/")[-1]]
    assert set(field["properties"]) == {"field", "message", "type"}
    request = schema["components"]["schemas"]["ClassifyRequest"]
    assert request["oneOf"] == [{"required": ["text"]}, {"required": ["texts"]}]
    assert request["properties"]["texts"]["minItems"] == 1
    assert request["properties"]["text"]["pattern"].startswith("[^\t\n")
    assert request["additionalProperties"] is False


def test_a_lone_surrogate_is_repaired_and_hurts_no_one(server, model_dir):
    poison = "a great film \udc80"
    [result] = classify(server, {"text": poison, "explain": True}).json()["results"]
    [expected] = textcnn.load(model_dir).classify(["a great film \ufffd"], explain=True)
    assert result["label"] == expected.predictions[0].label
    texts = [text for text, _ in tiny_texts(40, seed=5)]
    with httpx.Client(timeout=30) as client:

        def ask(i):
            body = {"text": poison} if i % 4 == 0 else {"text": texts[i]}
            response = client.post(
                f"{server.url}/classify",
                content=json.dumps(body),
                headers={"content-type": "application/json"},
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(ask, range(40)))
    assert statuses == [200] * 40


def test_malformed_json_is_422(server):
    response = httpx.post(
        f"{server.url}/classify",
        content=b'{"text": "' + SECRET.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert SECRET not in response.text


def test_limits_are_413(server):
    assert classify(server, {"texts": ["fine"] * 151}).status_code == 413
    assert classify(server, {"text": "a" * 2001}).status_code == 413
    too_big = json.dumps({"text": "word " * 5000}).encode()  # over 20,000 bytes
    response = httpx.post(
        f"{server.url}/classify", content=too_big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    chunks = (b"x" * 1000 for _ in range(30))  # no Content-Length: counted as it arrives
    response = httpx.post(
        f"{server.url}/classify", content=chunks, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_concurrent_clients_get_the_sequential_answers(server, model_dir):
    classifier = textcnn.load(model_dir)
    texts = [text for text, _ in tiny_texts(200, seed=11)]
    expected = [p[0] for p in classifier.predict(texts)]

    with httpx.Client(timeout=30) as client:

        def ask(text):
            response = client.post(f"{server.url}/classify", json={"text": text})
            return response.status_code, response.json()["results"][0]

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(ask, texts))
    assert all(status == 200 for status, _ in answers)
    for (_, got), want in zip(answers, expected, strict=True):
        assert got["label"] == want.label
        assert got["score"] == pytest.approx(want.score, abs=1e-5)


def test_api_key(model_dir):
    secured = Server(model_dir, api_key="s3cret")
    try:
        url = secured.url
        assert httpx.get(f"{url}/health").status_code == 200  # liveness stays open
        assert httpx.post(f"{url}/classify", json={"text": "good"}).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (
            httpx.post(f"{url}/classify", json={"text": "good"}, headers=wrong).status_code == 401
        )
        right = {"Authorization": "Bearer s3cret"}
        assert (
            httpx.post(f"{url}/classify", json={"text": "good"}, headers=right).status_code == 200
        )
        assert httpx.get(f"{url}/info").status_code == 401
        assert httpx.get(f"{url}/info", headers=right).status_code == 200
    finally:
        secured.stop()


def test_the_page_and_its_files_carry_security_headers(server):
    for path, kind in [("/", "text/html"), ("/static/app.js", "text/javascript")]:
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        policy = response.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    page = httpx.get(f"{server.url}/").text
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script
    assert re.search(r"\s(on[a-z]+|style)\s*=", page) is None  # no handlers, no styles
    assert httpx.get(f"{server.url}/static/../app.py").status_code == 404
    assert httpx.get(f"{server.url}/static/index.html").status_code == 404


def test_the_confusion_matrix_picture(server):
    response = httpx.get(f"{server.url}/confusion.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_metrics_count_every_worker(model_dir):
    """With --workers 2 a scrape reaches one worker; its counts are every worker's, and
    never go down between scrapes (prometheus-client's multiprocess mode)."""
    pattern = re.compile(
        r'textcnn_requests_total\{model="run",route="/classify",status="200"\} (\d+)'
    )
    served = Server(model_dir, "--workers", "2")
    body = {"text": "a good film"}

    def count(client) -> float:
        found = pattern.findall(client.get(f"{served.url}/metrics").text)
        return float(found[0]) if found else 0.0

    try:
        counts = []
        with httpx.Client(timeout=30) as client:
            # /ready answered from one worker; the one this connection reaches may still be
            # loading (503) on a busy machine: wait until it answers, then count from there
            ready_by, streak = time.monotonic() + 120, 0
            while streak < 10:
                assert time.monotonic() < ready_by, "the worker did not load in 120 s"
                ok = client.post(f"{served.url}/classify", json=body).status_code == 200
                streak = streak + 1 if ok else 0
            base = count(client)
            for _ in range(4):
                for _ in range(50):
                    assert client.post(f"{served.url}/classify", json=body).status_code == 200
                for _ in range(3):
                    counts.append(count(client) - base)
        assert counts == sorted(counts) and counts[-1] == 200 and counts[0] == 50
    finally:
        served.stop()
