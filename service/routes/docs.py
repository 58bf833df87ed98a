"""The API documentation (``/docs``: Swagger UI, ``/redoc``: ReDoc), offline.

FastAPI's own pages load their scripts, a favicon and fonts from three other sites, so they
are blank without the internet and lean on those sites' integrity. These pages load the
same programs from the ``fastapi-offline`` package installed beside the service, and start
Swagger UI with a script file of ours, so that a Content-Security-Policy can forbid inline
script and every other origin.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from .page import STATIC

VENDORED = Path(fastapi_offline.__file__).parent / "static"
ASSETS = {  # name -> (file, media type)
    "swagger-ui-bundle.js": (VENDORED / "swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": (VENDORED / "swagger-ui.css", "text/css; charset=utf-8"),
    "redoc.standalone.js": (VENDORED / "redoc.standalone.js", "text/javascript; charset=utf-8"),
    "favicon.png": (VENDORED / "favicon.png", "image/png"),
    "docs-init.js": (STATIC / "docs-init.js", "text/javascript; charset=utf-8"),
}
# Swagger UI and ReDoc set inline styles and show data: images; ReDoc runs a worker from a
# blob. No inline script, no other origin.
POLICY = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}
SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>textcnn API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<script src="/docs/assets/swagger-ui-bundle.js" defer></script>
<script src="/docs/assets/docs-init.js" defer></script>
</head><body><div id="swagger-ui"></div></body></html>
"""
REDOC = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>textcnn API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<script src="/docs/assets/redoc.standalone.js" defer></script>
</head><body><redoc spec-url="/openapi.json"></redoc></body></html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def swagger() -> HTMLResponse:
    return HTMLResponse(SWAGGER, headers=POLICY)


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC, headers=POLICY)


@router.get("/docs/assets/{name}")
def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, "not found")
    path, media_type = ASSETS[name]
    return FileResponse(path, media_type=media_type, headers=POLICY)
