"""What a person sees and does on the page, checked against what the API answers."""

import csv
import io
import itertools

import httpx

from tests.conftest import tiny_config, tiny_texts, write_tsv
from tests.service.conftest import Server
from tests.web.conftest import playwright_api
from textcnn.training.pipeline import fit_and_save

expect = playwright_api.expect

HOSTILE = "<img src=x onerror=alert(1)> and <script>alert(2)</script> a great film"


def api_classify(server, text, **headers):
    body = {"text": text, "explain": True, "top_k": None}
    response = httpx.post(f"{server.url}/classify", json=body, headers=headers, timeout=30)
    return response.json()["results"][0]


def classify_on_page(page, text):
    page.fill("#text", text)
    page.press("#text", "Control+Enter")  # the keyboard shortcut, not the button
    page.wait_for_selector("#result:not([hidden])")
    expect(page.locator("#label")).not_to_be_empty()


def test_classify_shows_the_label_bars_and_the_spans_the_api_gives(page, web_server):
    text = "the plot was great and the actors were wonderful"
    expected = api_classify(web_server, text)
    page.goto(web_server.url)
    classify_on_page(page, text)
    assert page.inner_text("#label") == expected["label"]
    assert page.locator("#bars .bar").count() == 2
    first = expected["explanation"][0]
    item = page.locator("#spans li").first
    assert item.locator(".ngram").inner_text() == first["text"]
    assert int(item.get_attribute("data-start")) == first["start"]
    # the first span is shaded: the marked pieces of the text tile exactly its range
    marks = page.locator("#highlighted mark")
    ranges = [
        (int(marks.nth(i).get_attribute("data-start")), int(marks.nth(i).get_attribute("data-end")))
        for i in range(marks.count())
    ]
    inside = sorted(r for r in ranges if first["start"] <= r[0] and r[1] <= first["end"])
    assert inside[0][0] == first["start"] and inside[-1][1] == first["end"]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(inside))
    assert page.inner_text("#highlighted") == text  # the text itself, unchanged


def test_markup_in_texts_renders_literally_and_never_runs(page, web_server):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(web_server.url)
    classify_on_page(page, HOSTILE)
    assert page.inner_text("#highlighted") == HOSTILE
    assert page.locator("#highlighted img, #highlighted script").count() == 0
    page.fill("#lines", HOSTILE)
    page.click("#score-all")
    page.wait_for_selector("#table tbody tr")
    assert page.inner_text("#table tbody td.text") == HOSTILE
    assert page.locator("#table img, #table script").count() == 0
    page.wait_for_timeout(300)  # time for an onerror to fire, were there an image
    assert dialogs == []


def test_three_hundred_lines_are_scored_in_chunks_and_downloaded_in_order(page, web_server):
    texts = [f"{text} number {i}" for i, (text, _) in enumerate(tiny_texts(300, seed=9))]
    posts = []
    page.on("request", lambda r: posts.append(r) if r.url.endswith("/classify") else None)
    page.goto(web_server.url)
    expect(page.locator("#card dt").first).to_be_visible()
    page.fill("#lines", "\n".join(texts))
    page.click("#score-all")
    expect(page.locator("#progress-text")).to_have_text("300 of 300 scored")
    assert len(posts) == 6  # the server takes 50 texts per request
    assert page.locator("#table tbody tr").count() == 300
    with page.expect_download() as download:
        page.click("#download")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [row["text"] for row in rows] == texts
    assert [row["line"] for row in rows] == [str(i) for i in range(1, 301)]
    expected = httpx.post(
        f"{web_server.url}/classify", json={"texts": texts[:50]}, timeout=30
    ).json()["results"]
    assert [row["label"] for row in rows[:50]] == [r["label"] for r in expected]
    # sorting by score reorders the table, not the download
    page.click("#sort-score")
    scores = [float(s) for s in page.locator("#table tbody td:nth-child(4)").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)


def test_errors_are_shown_in_words(page, web_server):
    page.goto(web_server.url)
    expect(page.locator("#card dt").first).to_be_visible()
    page.fill("#text", "good " * 200)  # over the server's 500 characters
    page.click("#classify")
    expect(page.locator("#status")).to_contain_text("Too large")
    assert "500 characters" in page.inner_text("#status")


def test_with_an_api_key_the_page_asks_for_it_then_works(page, web_model):
    secured = Server(web_model, api_key="s3cret")
    try:
        page.goto(secured.url)
        page.wait_for_selector("#key-section:not([hidden])")
        assert page.inner_text("#status").startswith("Key needed")
        page.fill("#key", "wrong")
        page.press("#key", "Enter")
        expect(page.locator("#status")).to_contain_text("Key needed")
        page.fill("#key", "s3cret")
        page.click("#key-form button")
        page.wait_for_selector("#key-section", state="hidden")
        page.wait_for_selector("#confusion-figure:not([hidden])")
        text = "a great film"
        classify_on_page(page, text)
        expected = api_classify(secured, text, Authorization="Bearer s3cret")
        assert page.inner_text("#label") == expected["label"]
    finally:
        secured.stop()


def test_the_page_asks_nothing_of_another_origin(page, web_server):
    urls = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(web_server.url)
    page.wait_for_selector("#confusion-figure:not([hidden])")
    classify_on_page(page, "a dull film")
    page.fill("#lines", "fun\nboring")
    page.click("#score-all")
    page.wait_for_selector("#download[href^='blob:']")
    assert urls, "no request recorded"
    foreign = [u for u in urls if not u.startswith((web_server.url, "blob:", "data:"))]
    assert foreign == []


def test_with_several_models_the_page_picks_one_and_shows_its_card(page, web_model, tmp_path):
    rows = [(text, "food" if i % 2 else "sport") for i, (text, _) in enumerate(tiny_texts(40))]
    topics = fit_and_save(
        tiny_config(write_tsv(tmp_path / "t.tsv", rows), tmp_path / "t", epochs=1)
    )
    both = Server(web_model, "--model", f"topics={topics}")
    try:
        page.goto(both.url)
        page.wait_for_selector("#picker:not([hidden])")
        assert page.locator("#model-picker option").all_inner_texts() == ["run", "topics"]
        classify_on_page(page, "a great film")
        assert page.inner_text("#label") in ("positive", "negative")
        page.select_option("#model-picker", "topics")
        expect(page.locator("#card")).to_contain_text("food, sport")
        classify_on_page(page, "a great film")
        assert page.inner_text("#label") in ("food", "sport")
        assert "topics" in page.inner_text("#model-name")
    finally:
        both.stop()
