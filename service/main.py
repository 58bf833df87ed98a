"""The FastAPI app: ``create_app()`` loads the model in its lifespan and mounts the routes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import asynccontextmanager

import numba
import torch
from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware

import textcnn

from . import errors
from .metrics import Metrics
from .middleware import ServiceMiddleware
from .registry import Models, sources_of
from .routes import classify, docs, model_info, page, probes
from .settings import Settings, get_settings


def reload_on_hangup(models: Models, settings: Settings, metrics: Metrics) -> None:
    """SIGHUP reloads every model (a process of its own: with --workers N, uvicorn's
    supervisor takes SIGHUP and restarts the workers instead)."""

    async def reload_all() -> None:
        for name in models.served:
            with contextlib.suppress(HTTPException):  # one reloading already: it will do
                if not await models.reload(name, settings, metrics.observe_batch):
                    metrics.reload_failed(name)

    loop = asyncio.get_running_loop()
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not main thread
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(reload_all()))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings, app.state.metrics = settings, metrics
        app.state.models = models = Models(sources_of(settings), settings.default_model)
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
            numba.set_num_threads(min(settings.torch_threads, numba.config.NUMBA_NUM_THREADS))
        tasks = [asyncio.create_task(models.load_all(settings, metrics.observe_batch))]
        if settings.reload_seconds:  # a model directory replaced is picked up
            watch = models.watch(
                settings.reload_seconds, settings, metrics.observe_batch, metrics.reload_failed
            )
            tasks.append(asyncio.create_task(watch))
        reload_on_hangup(models, settings, metrics)
        yield  # /ready says 503 until the default model is loaded
        for task in tasks:
            task.cancel()
        await models.stop()

    app = FastAPI(
        title="textcnn",
        version=textcnn.__version__,
        lifespan=lifespan,
        description="Text classification with convolutional networks (Kim 2014).",
        docs_url=None,  # service.routes.docs serves them without other sites
        redoc_url=None,
    )
    errors.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        ServiceMiddleware,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        metrics=metrics,
    )
    for routes in (probes, model_info, classify, page, docs):
        app.include_router(routes.router)
    return app
