"""The FastAPI app: ``create_app()`` loads the model in its lifespan and mounts the routes."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import numba
import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import textcnn

from . import errors
from .metrics import Metrics
from .middleware import ServiceMiddleware
from .registry import ServedModel
from .routes import classify, docs, model_info, page, probes
from .settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings, app.state.metrics = settings, metrics
        app.state.model = served = ServedModel(settings.model_dir.name, settings.model_dir)
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
            numba.set_num_threads(min(settings.torch_threads, numba.config.NUMBA_NUM_THREADS))
        loading = asyncio.create_task(served.load(settings, metrics.batch_size.observe))
        yield  # /ready says 503 until the model is loaded
        loading.cancel()
        await served.stop()

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
