"""The models a server holds, by name: each loaded and checked off the event loop, served
by its own micro-batcher, and swapped for a new version without dropping a request.

A swap loads and checks the new version completely (every check :func:`textcnn.load` runs)
while the old one goes on serving; only then do new requests go to it. Requests the old
version already took finish on it, and it is released once the last of them has its
answer. A version that fails to load leaves the old one serving, and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException

import textcnn
from textcnn.artifacts import CONFIG_FILE, WEIGHTS_FILE, file_sha256, model_file, read_json

from .batching import MicroBatcher
from .settings import Settings

log = logging.getLogger("textcnn.service")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a model's name: in URLs, metrics


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(
            f"model name {name[:80]!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class Version:
    """One loaded version of a model: its classifier and batcher, and what it answers as."""

    classifier: textcnn.TextClassifier
    batcher: MicroBatcher
    identity: dict  # {"name", "version"}: in every response it gives
    fingerprint: str  # what tells a changed model directory


@dataclass
class ServedModel:
    """A model directory behind the server, under a name: its current version, and how its
    last load went."""

    name: str
    path: Path
    current: Version | None = None
    error: str | None = None  # why the last load failed (the current version, if any, serves)
    loaded: float = 0.0  # when the current version started serving
    reloading: asyncio.Lock = field(default_factory=asyncio.Lock)
    releasing: set = field(default_factory=set)  # old versions finishing their requests

    @property
    def state(self) -> str:
        if self.current is not None:
            return "ready" if self.error is None else "ready (a reload failed)"
        return "failed" if self.error else "loading"

    @property
    def classifier(self) -> textcnn.TextClassifier:
        return self.current.classifier

    async def load(self, settings: Settings, on_batch: Callable[[str, int], None]) -> bool:
        """Load, check and start serving the directory's model, in place of the current
        version (which serves until then, and finishes what it took); whether it worked."""
        try:
            fingerprint = await asyncio.to_thread(fingerprint_of, self.path)
            classifier = await load_quietly(
                self.path,
                inference=settings.inference,
                max_table_mb=settings.max_table_mb,
                half_tables=settings.half_tables,
            )
            if not isinstance(classifier, textcnn.TextClassifier):
                raise ValueError(f"{self.path}: an image model; this service classifies text")
        except ValueError as error:
            return self._failed(str(error))
        except Exception as error:  # a bug or a resource problem: still reported, with a trace
            log.exception("cannot load the model from %s", self.path)
            return self._failed(f"{self.path}: cannot load the model ({error!r})")
        batcher = MicroBatcher(
            classifier,
            settings.max_batch_size,
            settings.max_wait_ms,
            settings.explain_spans,
            lambda size: on_batch(self.name, size),
        )
        batcher.start()
        old = self.current
        identity = {"name": self.name, "version": classifier.version}
        self.current = Version(classifier, batcher, identity, fingerprint)  # new requests here
        self.error, self.loaded = None, time.time()
        log.info("model %s (%s) ready: labels %s", self.name, classifier.version, classifier.labels)
        if old is not None:
            task = asyncio.create_task(release(old))
            self.releasing.add(task)
            task.add_done_callback(self.releasing.discard)
        else:
            # what is loaded now lives long: keep it out of the cyclic GC's collections,
            # whose full passes over it showed as latency spikes
            gc.freeze()
        return True

    def _failed(self, reason: str) -> bool:
        self.error = reason
        log.error("cannot load model %s: %s", self.name, reason)
        return False

    async def stop(self) -> None:
        if self.current is not None:
            await self.current.batcher.stop()

    def describe(self) -> dict:
        """What ``GET /models`` says of it."""
        out = {"name": self.name, "state": self.state}
        if self.current is not None:
            card = self.classifier.card
            out |= {
                "version": self.current.identity["version"],
                "task": card.task,
                "labels": self.classifier.labels,
                "multi_label": self.classifier.multi_label,
                "serving_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded)),
            }
        if self.error:
            out["reason"] = self.error
        return out


LOAD_NICENESS = 10  # a load's thread yields the cores to the requests being served


async def load_quietly(path: Path, **options) -> textcnn.Predictor:
    """:func:`textcnn.load` on a thread of its own at lower priority (Linux), so that a
    swap's loading and checks take the cores the requests leave: in a swap under 64
    connections on two cores, they cost a fifth of the throughput."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="textcnn-load")
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, _niced_load, path, options)
    finally:
        pool.shutdown(wait=False)  # the thread, and its priority, end with the load


def _niced_load(path: Path, options: dict) -> textcnn.Predictor:
    with contextlib.suppress(OSError, AttributeError):  # elsewhere: at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOAD_NICENESS)
    return textcnn.load(path, **options)


async def release(old: Version) -> None:
    """Stop ``old`` once every request it took has its answer, and let it go."""
    await old.batcher.drain()
    await old.batcher.stop()
    del old
    gc.collect()


def fingerprint_of(path: Path) -> str:
    """What changes when a model directory is replaced: the weights' sha256 its card records
    (read from the card, cheap), or for a card without one the file's own."""
    try:
        card = read_json(model_file(Path(path), CONFIG_FILE))  # never opens a pipe
        recorded = card.get("weights_sha256") if isinstance(card, dict) else None
        return recorded or file_sha256(model_file(Path(path), WEIGHTS_FILE))
    except (ValueError, OSError):
        return "unreadable"


class Models:
    """The served models by name, the default one first."""

    def __init__(self, sources: dict[str, Path], default: str | None) -> None:
        if not sources:
            raise ValueError("no model to serve")
        self.served = {
            name: ServedModel(check_name(name), Path(path)) for name, path in sources.items()
        }
        self.default = default or next(iter(sources))
        if self.default not in self.served:
            raise ValueError(f"--default {self.default!r}: not one of {', '.join(self.served)}")

    def get(self, name: str | None) -> ServedModel:
        """The model of ``name`` (None: the default): 404 naming the models for an unknown
        name, 503 (with the reason) for one that is not serving."""
        name = self.default if name is None else name
        served = self.served.get(name)
        if served is None:
            shown = name if NAME.fullmatch(name or "") else "<that name>"
            raise HTTPException(404, f"no model {shown}; this server has {', '.join(self.served)}")
        if served.current is None:
            raise HTTPException(
                503, served.error or f"model {name} is still loading; retry shortly"
            )
        return served

    async def load_all(self, settings: Settings, on_batch: Callable[[str, int], None]) -> None:
        await asyncio.gather(*(m.load(settings, on_batch) for m in self.served.values()))

    async def reload(self, name: str, settings: Settings, on_batch) -> bool:
        """Load ``name``'s directory again; 409 when a reload of it is running already."""
        served = self.served[name]
        if served.reloading.locked():
            raise HTTPException(409, f"a reload of model {name} is running; retry when it ends")
        async with served.reloading:
            return await served.load(settings, on_batch)

    async def watch(self, seconds: float, settings: Settings, on_batch, on_failure) -> None:
        """Every ``seconds``, reload each model whose directory now holds another model."""
        while True:
            await asyncio.sleep(seconds)
            for served in self.served.values():
                known = served.current.fingerprint if served.current is not None else None
                now = await asyncio.to_thread(fingerprint_of, served.path)
                if now != known and now != "unreadable" and not served.reloading.locked():
                    log.info(
                        "model %s: its directory changed; loading the new version", served.name
                    )
                    async with served.reloading:
                        if not await served.load(settings, on_batch):
                            on_failure(served.name)

    async def stop(self) -> None:
        await asyncio.gather(*(m.stop() for m in self.served.values()))


def sources_of(settings: Settings) -> dict[str, Path]:
    """The models to serve: ``TEXTCNN_MODELS`` (name → directory), or every sub-folder of
    ``TEXTCNN_MODELS_DIR`` by its name, or ``TEXTCNN_MODEL_DIR`` by its folder's name."""
    if settings.models:
        return {name: Path(path) for name, path in settings.models.items()}
    if settings.models_dir is not None:
        folder = settings.models_dir
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such folder of models")
        found = {
            p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")
        }
        if not found:
            raise ValueError(f"{folder}: no model folders in it")
        return found
    return {name_of(settings.model_dir): settings.model_dir}


def name_of(model_dir: Path) -> str:
    """A bare model directory's name: its card's (the run folder's), else its folder's."""
    try:
        name = read_json(model_file(Path(model_dir), CONFIG_FILE)).get("name")
    except (ValueError, OSError, AttributeError):
        name = None
    return name if isinstance(name, str) and NAME.fullmatch(name) else Path(model_dir).name
