"""Dataclasses built from JSON or TOML values, checked against their own annotations.

Model cards and training settings come from files anyone can edit: ``"embed_dim": 300.0``,
``"dropout": NaN``, ``"epochs": true`` or an unknown key must be an error that names the
field, not a crash later. :func:`build` walks a dataclass's fields once, so every card and
every settings section is checked the same way, by the types it declares.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from functools import cache
from typing import Any, Literal, Union


class FieldError(ValueError):
    """A value that does not fit its field; the message names the field."""


# annotation -> (the JSON values it takes, what to call them)
SCALARS = {
    bool: (bool, "true or false"),
    int: (int, "an integer"),
    float: (int | float, "a number"),
    str: (str, "a string"),
}


@cache
def hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in typing.get_type_hints(cls).items() if k in names}


def settable(cls: type) -> list[str]:
    """The fields ``build`` takes: all but those marked ``metadata={"derived": ...}``."""
    return [f.name for f in dataclasses.fields(cls) if f.init and "derived" not in f.metadata]


def build(cls: type, values: dict, where: str = "", derived: bool = True) -> Any:
    """``cls(**values)``, every value checked against its field's annotation (nested
    dataclasses built the same way). An unknown or missing field, or a value of the wrong
    type, is a :class:`FieldError` naming it; ``__post_init__`` then checks ranges. With
    ``derived=False`` a field marked ``metadata={"derived": "the data"}`` is refused."""
    if not isinstance(values, dict):
        raise FieldError(f"{where or cls.__name__} must be an object, got {_shown(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FieldError(
            f"unknown field {prefix}{unknown[0]}; {where or cls.__name__} has "
            f"{', '.join(settable(cls))}"
        )
    if not derived:
        for name in values:
            source = fields[name].metadata.get("derived")
            if source:
                raise FieldError(f"{prefix}{name} is taken from {source}, not set")
    missing = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise FieldError(f"{prefix}{missing[0]} is missing")
    types_ = hints(cls)
    checked = {name: convert(value, types_[name], prefix + name) for name, value in values.items()}
    try:
        return cls(**checked)
    except (TypeError, ValueError) as error:
        raise FieldError(f"{where or cls.__name__}: {error}") from None


def convert(value: Any, annotation: Any, name: str) -> Any:
    """``value`` as ``annotation`` says, or a :class:`FieldError`."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(value, option, name)
            except FieldError as error:
                errors.append(str(error))
        raise FieldError(
            errors[0] if len(errors) == 1 else f"{name}: {_shown(value)} fits none of its types"
        )
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
            raise FieldError(
                f"{name} must be one of {', '.join(map(str, choices))}, got {_shown(value)}"
            )
        return value
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, name)
    if annotation in SCALARS:
        accepted, what = SCALARS[annotation]
        # JSON's true is not 1, and 300.0 is not a size
        if not isinstance(value, accepted) or (annotation is not bool and isinstance(value, bool)):
            raise FieldError(f"{name} must be {what}, got {_shown(value)}")
        if annotation is float and not math.isfinite(value):
            raise FieldError(f"{name} must be a finite number, got {value}")
        return float(value) if annotation is float else value
    if origin in (list, tuple) or annotation in (list, tuple):
        if not isinstance(value, list | tuple):
            raise FieldError(f"{name} must be a list, got {_shown(value)}")
        args = typing.get_args(annotation)
        item = args[0] if args else Any
        items = [convert(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or annotation is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise FieldError(f"{name} must be an object, got {_shown(value)}")
        return value
    raise TypeError(f"{name}: no rule for {annotation!r}")  # a field type this module lacks


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def to_dict(instance: Any) -> dict:
    """A dataclass as JSON-ready values (tuples as lists, nested dataclasses as objects)."""
    return {
        f.name: _plain(getattr(instance, f.name)) for f in dataclasses.fields(instance) if f.init
    }


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
