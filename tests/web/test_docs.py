"""/docs and /redoc render in a browser from this server alone (they worked only online
before): every file they need comes from its origin, and what would leave it (ReDoc's
footer logo) is stopped by the page's Content-Security-Policy before it is sent."""

import httpx
import pytest

from tests.web.conftest import playwright_api

expect = playwright_api.expect


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", "#swagger-ui .opblock-summary-path"), ("/redoc", "[data-section-id]")],
)
def test_the_api_docs_render_offline_with_every_request_on_this_origin(
    page, web_server, path, rendered
):
    requested, refused = [], []
    page.on("request", lambda request: requested.append(request))
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    page.goto(web_server.url + path)
    page.wait_for_selector(rendered)
    expect(page.get_by_text("/classify").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    ours = (web_server.url, "data:", "blob:")
    outside = [r for r in requested if not r.url.startswith(ours)]
    assert all(r.failure == "csp" and r.response() is None for r in outside), outside
    assert len(refused) == len(outside)  # nothing of ours was refused
    assert all(r.response() is not None for r in requested if r.url.startswith(web_server.url))
    assert any(r.url.endswith("/openapi.json") for r in requested)


def test_every_response_carries_the_security_headers(web_server):
    for path in ("/health", "/ready", "/info", "/openapi.json", "/nope", "/docs", "/"):
        headers = httpx.get(web_server.url + path).headers
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
    api = httpx.get(web_server.url + "/health").headers["content-security-policy"]
    assert api == "default-src 'none'; frame-ancestors 'none'"
