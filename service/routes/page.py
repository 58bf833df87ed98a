"""The web page (``GET /``): one HTML file, its script and style sheet, served from
``service/static`` with a Content-Security-Policy that allows only this origin."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).parents[1] / "static"
FILES = {  # served by name, nothing else from the folder
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# No inline script or style, no other origin: a text shown on the page can never run.
# img-src blob: is the confusion matrix, fetched with the API key and shown from memory.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    """The page to try the model: classify, see the deciding n-grams, score many texts."""
    return FileResponse(
        STATIC / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in FILES:
        raise HTTPException(404, "not found")
    return FileResponse(STATIC / name, media_type=FILES[name], headers=SECURITY_HEADERS)
