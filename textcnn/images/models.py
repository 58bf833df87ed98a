"""Build a registered image architecture for a given number of classes and input shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Classifier, create_model, model_entry
from ..models.base import infer_output_shape

SMALL_INPUT = 64  # at or below this side, an architecture's small-input variant is used
SCALARS = (str, int, float, bool, type(None))


@dataclass(kw_only=True)
class ImageModelConfig:
    """A registered image architecture and the keyword arguments that build it: the number
    of classes and input channels, which every one takes, and its own ``options``
    (``pool_mode``, ``input_size``, ``small_input``, ...), checked when it is built."""

    arch: str
    options: dict = field(default_factory=dict)  # every keyword argument, the two below too

    def __post_init__(self) -> None:
        if model_entry(self.arch).kind != "image":
            raise ValueError(f"{self.arch} is not an image architecture")
        for key in ("num_classes", "in_channels"):
            value = self.options.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{key} must be a positive integer, got {value!r}")
        for key, value in self.options.items():
            items = value if isinstance(value, list) else [value]
            if not key.isidentifier() or not all(isinstance(v, SCALARS) for v in items):
                raise ValueError(f"model.{key}: not an architecture setting ({value!r})")

    @property
    def num_classes(self) -> int:
        return self.options["num_classes"]


def image_model_config(
    arch: str, num_classes: int, channels: int, size: int, options: dict | None = None
) -> dict:
    """The keyword arguments that build ``arch`` for ``channels`` x ``size`` x ``size`` inputs.

    Small inputs (Fashion-MNIST, CIFAR) take the architecture's small-input settings
    (NiN's CIFAR model, GoogLeNet's light stem, LeNet's 28×28 padding); ``options``
    (e.g. ``{"pool_mode": "avg"}``) come last and win.
    """
    entry = model_entry(arch)
    if entry.kind != "image":
        raise ValueError(f"{arch} is a {entry.kind} model; `textcnn models` lists the image ones")
    config = dict(entry.small_config) if size <= SMALL_INPUT else {}
    config.update(num_classes=num_classes, in_channels=channels)
    if "input_size" in config:
        config["input_size"] = size
    config.update(options or {})
    return config


def build_image_model(arch: str, config: dict, shape: tuple[int, int, int]) -> Classifier:
    """``create_model(arch, **config)``, checked on ``shape`` (C, H, W) before any real work
    (on the meta device: a config that claims a huge network allocates nothing)."""
    try:
        output = infer_output_shape(lambda: create_model(arch, **config), shape)
    except TypeError as error:
        raise ValueError(f"{arch}: unknown model option ({error})") from None
    except RuntimeError as error:
        size = "x".join(map(str, shape))
        raise ValueError(
            f"{arch} cannot take {size} inputs ({str(error).splitlines()[0]}); "
            "choose a larger image size or another architecture"
        ) from None
    if output[-1] != config["num_classes"]:
        raise ValueError(
            f"{arch}: built with {output[-1]} outputs, expected {config['num_classes']}"
        )
    return create_model(arch, **config)
