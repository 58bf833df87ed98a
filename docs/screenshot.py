"""The README's picture of the page: serve a model, classify a text and a few lines in headless
Chromium, and save ``docs/page.png``.

    python docs/screenshot.py runs/tweets/model-best
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.service.conftest import Server  # the tests' server in a subprocess

TEXT = "The battery lasts all day and the screen is gorgeous, but the speakers are tinny."
LINES = ["I love how quiet the new car is", "the flight was delayed again", "meeting at 10"]


def main() -> None:
    model = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/tweets/model-best")
    server = Server(model)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(server.url)
            expect(page.locator("#card dt").first).to_be_visible()
            page.fill("#text", TEXT)
            page.click("#classify")
            expect(page.locator("#label")).not_to_be_empty()
            page.fill("#lines", "\n".join(LINES))
            page.click("#score-all")
            expect(page.locator("#progress-text")).to_have_text(
                f"{len(LINES)} of {len(LINES)} scored"
            )
            page.screenshot(path=Path(__file__).parent / "page.png", full_page=True)
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
