"""Errors as the OpenAPI schema describes them: ``{"detail": "..."}``, or for a malformed
body a 422 that names each field (bounded in number and size) and never echoes the input."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MAX_ERRORS = 20  # field errors in one 422
# An unknown key is the client's text: named only when it is a plain identifier, so that a
# 422 never carries markup or anything else a client could make a page show.
PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _field(loc: tuple) -> str:
    """A location as "body.texts.3"; a key (the client's text) only when it is plain."""
    parts = [str(part) for part in loc]
    if parts and not isinstance(loc[-1], int) and not PLAIN_KEY.fullmatch(parts[-1]):
        parts[-1] = "<unknown key>"
    return ".".join(parts)


def _validation_errors(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = error.errors()
    details = [
        {
            "field": _field(e.get("loc", ())),
            "message": str(e.get("msg", "invalid"))[:200],
            "type": str(e.get("type", "value_error")),
        }
        for e in errors[:MAX_ERRORS]
    ]
    if len(errors) > MAX_ERRORS:
        details.append(
            {"field": "body", "message": f"{len(errors) - MAX_ERRORS} more errors", "type": "more"}
        )
    return JSONResponse({"detail": details}, status_code=422)


def _http_errors(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """HTTP errors as ``{"detail": ...}``; FastAPI's 400 for a body it cannot even parse (not
    UTF-8, nested too deep) is a 422 like any other malformed body."""
    if error.status_code == 400:
        detail = [{"field": "body", "message": "not valid UTF-8 JSON", "type": "json_invalid"}]
        return JSONResponse({"detail": detail}, status_code=422)
    return JSONResponse({"detail": error.detail}, error.status_code, headers=error.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_errors)
    app.add_exception_handler(StarletteHTTPException, _http_errors)
