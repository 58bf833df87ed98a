"""Models by name: ``@register_model`` + ``create_model(name, **config)`` + ``list_models()``."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .base import Classifier

Kind = Literal["text", "image"]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: Kind
    builder: Callable[..., Classifier]
    #: one input example without the batch axis: (C, H, W) for images, (L,) for text
    input_shape: tuple[int, ...]
    #: a small input the architecture accepts, with the config that goes with it;
    #: the registry-wide test builds every model on it
    small_input_shape: tuple[int, ...]
    small_config: dict = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}
#: ImageNet-sized inputs with a CIFAR-sized small form: ``register_model(name, **IMAGENET_CIFAR)``
IMAGENET_CIFAR = {"kind": "image", "input_shape": (3, 224, 224), "small_input_shape": (3, 32, 32)}


def register_model(
    name: str,
    kind: Kind,
    input_shape: tuple[int, ...],
    small_input_shape: tuple[int, ...] | None = None,
    small_config: dict | None = None,
    description: str | None = None,
    **builder_kwargs,
) -> Callable[[Callable[..., Classifier]], Callable[..., Classifier]]:
    """Register a builder under ``name``; ``builder_kwargs`` are fixed arguments (variants)."""

    def decorator(builder: Callable[..., Classifier]) -> Callable[..., Classifier]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")

        def build(**config) -> Classifier:
            return builder(**builder_kwargs, **config)

        _REGISTRY[name] = ModelEntry(
            name=name,
            kind=kind,
            builder=build,
            input_shape=input_shape,
            small_input_shape=small_input_shape or input_shape,
            small_config=small_config or {},
            description=description or (builder.__doc__ or "").strip().splitlines()[0],
        )
        return builder

    return decorator


def model_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = fnmatch.filter(_REGISTRY, f"*{name[:3]}*")
        hint = f" Did you mean one of {close}?" if close else ""
        raise ValueError(
            f"unknown model {name!r}.{hint} `textcnn models` lists the available ones"
        ) from None


def create_model(name: str, **config) -> Classifier:
    """Build a registered model; ``config`` overrides its defaults (num_classes, ...)."""
    return model_entry(name).builder(**config)


def list_models(pattern: str = "*", kind: Kind | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(
        name
        for name, entry in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (kind is None or entry.kind == kind)
    )
