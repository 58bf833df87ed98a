"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..deps import Authorized, SettingsDep
from ..schemas import ERRORS, READINESS

router = APIRouter(tags=["probes"])


@router.get("/health")
def health() -> dict:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={200: READINESS, 503: READINESS})
def ready(request: Request, settings: SettingsDep) -> JSONResponse:
    """Readiness: 200 once the default model serves, 503 before (or if it cannot be loaded).
    Without an API key it also names the models that failed to load, and why."""
    models = request.app.state.models
    served = models.served[models.default]
    is_ready = served.current is not None
    if settings.api_key is not None:  # open to all: no paths, errors or model names
        return JSONResponse(
            {"status": "ready" if is_ready else "not ready"}, 200 if is_ready else 503
        )
    failed = {m.name: m.error for m in models.served.values() if m.error}
    also = {"failed": failed} if failed else {}
    if not is_ready:
        detail = served.error or "loading"
        return JSONResponse({"status": "not ready", "detail": detail} | also, status_code=503)
    return JSONResponse({"status": "ready", "model": served.current.identity} | also)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"},
        401: ERRORS[401],
    },
)
def metrics(request: Request, _: Authorized) -> Response:
    """Prometheus text format: requests by route and status, latency, batch sizes (every
    worker's, with --workers N)."""
    body, content_type = request.app.state.metrics.exposition()
    return Response(body, media_type=content_type)
