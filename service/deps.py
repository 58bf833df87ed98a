"""Dependencies of the routes, all read from ``app.state``: the settings, the API key check
and the model a request is for."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from .registry import Models, ServedModel
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


def get_models(request: Request) -> Models:
    return request.app.state.models


async def require_model(
    request: Request,
    model: Annotated[
        str | None, Query(max_length=200, description="a served model's name (default: the first)")
    ] = None,
) -> ServedModel:
    """The model a GET request names (``?model=``, else the default) once it serves: 404
    for an unknown name, 503 (with the reason) before it serves."""
    served = request.app.state.models.get(model)
    request.scope["textcnn.model"] = served.name  # for the metrics
    return served


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[Models, Depends(get_models)]
Authorized = Annotated[None, Depends(require_key)]
Ready = Annotated[ServedModel, Depends(require_model)]
