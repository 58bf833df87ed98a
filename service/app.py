"""The FastAPI app: ``create_app()`` loads the model in its lifespan and serves ``/classify``."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import torch
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException

import textcnn

from . import page
from .batching import MicroBatcher
from .schemas import (
    ERRORS,
    READINESS,
    ClassifyRequest,
    ClassifyResponse,
    ErrorBody,
    ModelInfo,
)
from .settings import Settings, get_settings

log = logging.getLogger("textcnn.service")


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "textcnn_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "textcnn_request_seconds",
            "request latency by route",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "textcnn_batch_size",
            "texts per forward pass",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )


class ServiceMiddleware:
    """Pure ASGI: refuses bodies over the byte limit with 413 and records metrics."""

    def __init__(self, app, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": None}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._limited(scope, receive, send_status)
        except Exception:  # answered here, so that the server never drops the connection
            log.exception("unhandled error on %s", scope.get("path"))
            if status["code"] is None:
                await _error(send_status, 500, "internal error; see the server log")
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            code = str(status["code"] or 500)  # a response that never started failed
            self.metrics.requests.labels(path, code).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)

    async def _limited(self, scope, receive, send) -> None:
        """The app, for a body within the byte limit; 413 for a larger one."""
        limit = self.max_body_bytes
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:  # the server holds the body to this length
            if not length.isdigit() or int(length) > limit:
                await _error(send, 413, f"request body over {limit} bytes")
            else:
                await self.app(scope, receive, send)
            return
        body = await _read_limited(receive, limit)  # chunked: read it before the app does
        if body is None:
            await _error(send, 413, f"request body over {limit} bytes")
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_limited(receive, limit: int) -> bytes | None:
    """The whole request body, or None once it passes ``limit`` bytes."""
    chunks, total = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _error(send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)({"type": "http"}, None, send)


MAX_ERRORS = 20  # field errors in one 422
MAX_NAME = 40  # characters of an unknown key named in a 422


def _field(loc: tuple) -> str:
    """A location as "body.texts.3"; an unknown key (the client's text) only when short."""
    parts = [str(part) for part in loc]
    if parts and (len(parts[-1]) > MAX_NAME or not parts[-1].isprintable()):
        parts[-1] = "<unknown key>"
    return ".".join(parts)


def _validation_errors(request: Request, error: RequestValidationError) -> JSONResponse:
    """422 that names each field (bounded in number and size) and never echoes the input."""
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


def _weights_version(model_dir: Path) -> str:
    digest = hashlib.sha256()
    with (model_dir / "model.safetensors").open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


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


async def require_model(request: Request) -> State:
    """The app state once the model is loaded; 503 before."""
    state = request.app.state
    if state.batcher is None:
        raise HTTPException(503, state.load_error or "the model is still loading; retry shortly")
    return state


Authorized = Annotated[None, Depends(require_key)]
Ready = Annotated[State, Depends(require_model)]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()

    async def load_model(app: FastAPI) -> None:
        try:
            classifier = await asyncio.to_thread(
                textcnn.load,
                settings.model_dir,
                inference=settings.inference,
                max_table_mb=settings.max_table_mb,
                half_tables=settings.half_tables,
            )
            if classifier.task != "text":
                raise ValueError(
                    f"{settings.model_dir}: an image model; this service classifies text"
                )
            version = await asyncio.to_thread(_weights_version, Path(settings.model_dir))
        except ValueError as error:
            app.state.load_error = str(error)
            log.error("cannot load the model: %s", error)
            return
        except Exception as error:  # a bug or a resource problem: still reported, with a trace
            app.state.load_error = f"{settings.model_dir}: cannot load the model ({error!r})"
            log.exception("cannot load the model from %s", settings.model_dir)
            return
        batcher = MicroBatcher(
            classifier,
            settings.max_batch_size,
            settings.max_wait_ms,
            settings.explain_spans,
            metrics.batch_size.observe,
        )
        batcher.start()
        name = classifier.card.name or Path(settings.model_dir).name
        app.state.model_info = ModelInfo(name=name, version=version)
        app.state.model_json = app.state.model_info.model_dump()
        app.state.classifier, app.state.batcher = classifier, batcher
        # what is loaded now lives as long as the process: keep it out of the cyclic GC's
        # collections, whose full passes over it showed as latency spikes
        gc.freeze()
        log.info("model %s (%s) ready: labels %s", name, version, classifier.labels)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.classifier = app.state.batcher = app.state.load_error = None
        app.state.settings = settings
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        loading = asyncio.create_task(load_model(app))  # /ready says 503 until it is done
        yield
        loading.cancel()
        if app.state.batcher is not None:
            await app.state.batcher.stop()

    app = FastAPI(
        title="textcnn",
        version=textcnn.__version__,
        lifespan=lifespan,
        description="Text classification with convolutional networks (Kim 2014).",
    )
    app.add_exception_handler(RequestValidationError, _validation_errors)
    app.add_exception_handler(StarletteHTTPException, _http_errors)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(ServiceMiddleware, max_body_bytes=settings.max_body_bytes, metrics=metrics)
    app.include_router(page.router)

    @app.get("/health", tags=["probes"])
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["probes"], responses={200: READINESS, 503: READINESS})
    def ready(request: Request) -> JSONResponse:
        """Readiness: 200 once the model is loaded, 503 before (or if it cannot be loaded)."""
        state = request.app.state
        if settings.api_key is not None:  # open to all: no paths, errors or model names
            ready = state.batcher is not None
            return JSONResponse(
                {"status": "ready" if ready else "not ready"}, 200 if ready else 503
            )
        if state.batcher is None:
            detail = state.load_error or "loading"
            return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)
        return JSONResponse({"status": "ready", "model": state.model_info.model_dump()})

    @app.get("/info", tags=["model"], responses={401: ERRORS[401], 503: ERRORS[503]})
    def info(_: Authorized, state: Ready) -> dict:
        """The model, its labels, the request limits and its training metrics."""
        classifier = state.classifier
        return {
            "model": state.model_info.model_dump(),
            "architecture": classifier.card.architecture,
            "labels": classifier.labels,
            "max_length_tokens": classifier.max_length,
            "inference": classifier.inference,
            "max_batch_size": settings.max_batch_size,
            "max_texts_per_request": settings.max_texts_per_request,
            "max_text_chars": settings.max_text_chars,
            "max_body_bytes": settings.max_body_bytes,
            "created": classifier.card.created,
            "metrics": classifier.card.metrics,
        }

    @app.get(
        "/metrics", tags=["probes"], response_class=PlainTextResponse, responses={401: ERRORS[401]}
    )
    def prometheus(_: Authorized) -> PlainTextResponse:
        """Prometheus text format: requests by route and status, latency, batch sizes."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/confusion.png",
        tags=["model"],
        response_class=FileResponse,
        responses={
            200: {"content": {"image/png": {}}, "description": "the picture"},
            401: ERRORS[401],
            404: {"model": ErrorBody, "description": "the model directory has no picture"},
            503: ERRORS[503],
        },
    )
    def confusion_matrix(_: Authorized, state: Ready) -> FileResponse:
        """The confusion matrix of the model on its test (else dev) data, as written by training."""
        picture = Path(settings.model_dir) / "confusion.png"
        if not picture.is_file():
            raise HTTPException(404, "this model directory has no confusion.png")
        return FileResponse(picture, media_type="image/png")

    @app.post("/classify", tags=["model"], responses={200: {"model": ClassifyResponse}, **ERRORS})
    async def classify(body: ClassifyRequest, _: Authorized, state: Ready) -> JSONResponse:
        """Labels and scores for one text or a batch, in order; `explain` adds the n-grams."""
        texts = body.all_texts()
        if len(texts) > settings.max_texts_per_request:
            raise HTTPException(
                413, f"{len(texts)} texts; at most {settings.max_texts_per_request} per request"
            )
        long = [i for i, t in enumerate(texts) if len(t) > settings.max_text_chars]
        if long:
            raise HTTPException(
                413, f"texts {long[:10]} are over {settings.max_text_chars} characters"
            )
        results = await state.batcher.classify(texts, body.explain)
        k = len(state.classifier.labels) if body.top_k is None else body.top_k
        # Plain dicts in a Response: FastAPI would otherwise validate and serialise the
        # response model again, which cost more than the rest of the request
        # (benchmarks/serving.py); the shape is ClassifyResponse's, as the schema says.
        return JSONResponse(
            {
                "model": state.model_json,
                "results": [
                    {
                        "label": r.predictions[0].label,
                        "score": r.predictions[0].score,
                        "labels": [{"label": p.label, "score": p.score} for p in r.predictions[:k]],
                        "truncated": r.truncated,
                        "explanation": [vars(e) for e in r.evidence] if body.explain else None,
                    }
                    for r in results
                ],
            }
        )

    return app
