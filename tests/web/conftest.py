"""The page in a real browser: Debian's Chromium driven headless by Playwright, against
``textcnn serve`` in a subprocess. Skipped, with the reason, where either is missing."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import tiny_config, tiny_texts, write_tsv
from tests.service.conftest import Server
from textcnn.training.pipeline import fit_and_save

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
)
if not Path(CHROMIUM).is_file():
    pytest.skip(
        "no Chromium: install the Debian package chromium (.ci/run does)",
        allow_module_level=True,
    )


@pytest.fixture(scope="session")
def web_model(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("web")
    data = write_tsv(tmp / "train.tsv", tiny_texts(80))
    return fit_and_save(tiny_config(data, tmp / "run", epochs=8))


@pytest.fixture(scope="session")
def web_server(web_model):
    running = Server(web_model, max_texts_per_request="50", max_text_chars="500")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def browser():
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()
