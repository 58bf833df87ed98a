"""Dependencies of the routes, all read from ``app.state``: the settings, the API key check
and the model a request is for."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from .registry import ServedModel
from .settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_key(request: Request) -> None:  # async: no thread-pool hop per request
    """With TEXTCNN_API_KEY set: 401 unless ``Authorization: Bearer <key>`` (constant time)."""
    api_key = request.app.state.settings.api_key
    if api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = api_key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise HTTPException(
            401,
            "missing or wrong API key; send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_model(request: Request) -> ServedModel:
    """The served model once it is loaded; 503 (with the reason) before."""
    served: ServedModel = request.app.state.model
    if served.batcher is None:
        raise HTTPException(503, served.error or "the model is still loading; retry shortly")
    return served


SettingsDep = Annotated[Settings, Depends(get_settings)]
Authorized = Annotated[None, Depends(require_key)]
Ready = Annotated[ServedModel, Depends(require_model)]
