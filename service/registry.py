"""The models a server holds: each loaded and checked off the event loop, then served by its
own micro-batcher."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import textcnn

from .batching import MicroBatcher
from .settings import Settings

log = logging.getLogger("textcnn.service")


@dataclass
class ServedModel:
    """One model directory behind the server: loading, ready (a classifier and its
    batcher), or failed (the reason)."""

    name: str
    path: Path
    classifier: textcnn.TextClassifier | None = None
    batcher: MicroBatcher | None = None
    error: str | None = None
    identity: dict = field(default_factory=dict)  # {"name", "version"}: in every response

    @property
    def state(self) -> str:
        if self.batcher is not None:
            return "ready"
        return "failed" if self.error else "loading"

    async def load(self, settings: Settings, on_batch: Callable[[int], None]) -> None:
        """Load, check and start serving ``path``; on failure keep the reason."""
        try:
            classifier = await asyncio.to_thread(
                textcnn.load,
                self.path,
                inference=settings.inference,
                max_table_mb=settings.max_table_mb,
                half_tables=settings.half_tables,
            )
            if classifier.task != "text":
                raise ValueError(f"{self.path}: an image model; this service classifies text")
        except ValueError as error:
            self.error = str(error)
            log.error("cannot load the model: %s", error)
            return
        except Exception as error:  # a bug or a resource problem: still reported, with a trace
            self.error = f"{self.path}: cannot load the model ({error!r})"
            log.exception("cannot load the model from %s", self.path)
            return
        batcher = MicroBatcher(
            classifier,
            settings.max_batch_size,
            settings.max_wait_ms,
            settings.explain_spans,
            on_batch,
        )
        batcher.start()
        self.name = classifier.card.name or self.path.name
        self.identity = {"name": self.name, "version": classifier.version}
        self.classifier, self.batcher = classifier, batcher
        # what is loaded now lives as long as the process: keep it out of the cyclic GC's
        # collections, whose full passes over it showed as latency spikes
        gc.freeze()
        log.info("model %s (%s) ready: labels %s", self.name, classifier.version, classifier.labels)

    async def stop(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
