"""The inspector behind ``textcnn summary``: per-layer output shape, parameters,
multiply-accumulates (MACs) and receptive field, found by running the model once."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _MaxPoolNd

from ..layers import GlobalPool, KMaxPool, StochasticPool
from ..layers.geometry import effective_kernel
from .registry import create_model, model_entry


@dataclass(frozen=True)
class Field:
    """Receptive field of one tensor position, per spatial axis, in input pixels (or tokens).

    ``jump`` is the distance in the input between neighbouring positions; ``size``
    is the spatial size of the tensor, ``None`` once the spatial axes are gone.
    """

    size_in_input: tuple[float, ...]
    jump: tuple[float, ...]
    size: tuple[int, ...] | None

    def covering_all(self) -> Field:
        """The field of a layer that sees every position (global pooling, fully connected)."""
        if self.size is None:
            return self
        span = tuple(
            r + (s - 1) * j
            for r, j, s in zip(self.size_in_input, self.jump, self.size, strict=True)
        )
        return Field(span, self.jump, None)


@dataclass
class LayerRow:
    name: str
    type: str
    output_shape: list[int]
    params: int
    macs: int
    receptive_field: list[int]
    jump: list[float]
    #: the window does not reach the last rows/columns of its input: they are ignored
    cropped: bool = False


@dataclass
class Summary:
    input_shape: list[int]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_macs: int
    output_shape: list[int]
    #: output shape and field of every container module, by name (for grouped views)
    blocks: dict[str, tuple[list[int], Field]]

    def macs_of(self, prefix: str) -> int:
        """MACs of every layer whose name is ``prefix`` or starts with ``prefix.``."""
        return sum(r.macs for r in self.rows if _under(r.name, prefix))

    def grouped(self, depth: int, model: nn.Module | None = None) -> Summary:
        """Rows merged to the first ``depth`` parts of their names (consecutive rows only)."""
        rows: list[LayerRow] = []
        for row in self.rows:
            name = ".".join(row.name.split(".")[:depth])
            if rows and rows[-1].name == name:
                last = rows[-1]
                rows[-1] = replace(
                    row,
                    name=name,
                    type=last.type,
                    params=last.params + row.params,
                    macs=last.macs + row.macs,
                    cropped=last.cropped or row.cropped,
                )
            else:
                kind = type(model.get_submodule(name)).__name__ if model is not None else row.type
                rows.append(replace(row, name=name, type=kind))
            if name in self.blocks:  # the block's own output, not its last layer's
                shape, field = self.blocks[name]
                rows[-1].output_shape = shape
                rows[-1].receptive_field = [round(r) for r in field.size_in_input]
                rows[-1].jump = [round(j, 3) for j in field.jump]
        return replace(self, rows=rows)

    def to_dict(self) -> dict:
        return {
            "input_shape": self.input_shape,
            "layers": [asdict(r) for r in self.rows],
            "totals": {
                "params": self.total_params,
                "trainable_params": self.trainable_params,
                "macs": self.total_macs,
                "output_shape": self.output_shape,
            },
        }


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _as_tuple(value, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,) * n


def _window(module: nn.Module, field: Field, output: torch.Tensor) -> tuple[Field, bool]:
    """Receptive field after a sliding window (convolution or local pooling), and crop flag."""
    n = len(field.size_in_input)
    if isinstance(module, StochasticPool):
        kernel, stride, dilation, padding = module.kernel_size, module.stride, 1, 0
    elif isinstance(module, nn.FractionalMaxPool2d):
        kernel, dilation, padding = module.kernel_size, 1, 0
        stride = tuple(s / o for s, o in zip(field.size, output.shape[2:], strict=True))
    else:
        kernel = module.kernel_size
        stride = module.stride
        dilation = getattr(module, "dilation", 1)
        padding = module.padding
    kernel, dilation = _as_tuple(kernel, n), _as_tuple(dilation, n)
    stride = _as_tuple(stride, n)
    spans = [effective_kernel(k, d) for k, d in zip(kernel, dilation, strict=True)]
    rf = tuple(
        r + (s - 1) * j for r, s, j in zip(field.size_in_input, spans, field.jump, strict=True)
    )
    jump = tuple(j * s for j, s in zip(field.jump, stride, strict=True))
    cropped = False
    if isinstance(padding, str):  # "same" / "valid" as given to torch: nothing left over
        padding = 0 if padding == "valid" else None
    if padding is not None and field.size is not None and not getattr(module, "ceil_mode", False):
        padding = _as_tuple(padding, n)
        cropped = any(
            isinstance(s, int) and (size + 2 * p - span) % s != 0
            for size, p, span, s in zip(field.size, padding, spans, stride, strict=True)
        )
    return Field(rf, jump, tuple(output.shape[2:])), cropped


def _propagate(module: nn.Module, field: Field, output: torch.Tensor) -> tuple[Field, bool]:
    if isinstance(module, nn.Embedding):  # token ids N x L -> one position per token
        return Field((1.0,), (1.0,), (output.shape[1],)), False
    if isinstance(
        module, _ConvNd | _MaxPoolNd | _AvgPoolNd | StochasticPool | nn.FractionalMaxPool2d
    ):
        return _window(module, field, output)
    if isinstance(module, GlobalPool | KMaxPool | nn.Linear | nn.Flatten):
        return field.covering_all(), False
    if isinstance(
        module,
        nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d | nn.AdaptiveAvgPool1d | nn.AdaptiveMaxPool1d,
    ):
        if math.prod(output.shape[2:]) == 1:
            return field.covering_all(), False
        ratio = tuple(s / o for s, o in zip(field.size, output.shape[2:], strict=True))
        rf = tuple(
            r + (math.ceil(q) - 1) * j
            for r, q, j in zip(field.size_in_input, ratio, field.jump, strict=True)
        )
        return Field(
            rf,
            tuple(j * q for j, q in zip(field.jump, ratio, strict=True)),
            tuple(output.shape[2:]),
        ), False
    return field, False  # element-wise: normalisation, activation, dropout


def _macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates per example: only convolutions and fully connected layers count."""
    per_example = output.numel() // output.shape[0]
    if isinstance(module, _ConvNd):
        return per_example * (module.in_channels // module.groups) * math.prod(module.kernel_size)
    if isinstance(module, nn.Linear):
        return per_example * module.in_features
    return 0


def summarize(model: nn.Module, example: torch.Tensor) -> Summary:
    """Run ``model`` once on ``example`` (a batch of one) in eval mode and describe every layer."""
    names = {module: name for name, module in model.named_modules()}
    names[model] = names[model] or type(model).__name__.lower()
    spatial = example.shape[2:] if example.is_floating_point() else None
    start = (
        Field((1.0,) * len(spatial), (1.0,) * len(spatial), tuple(spatial))
        if spatial is not None
        else Field((1.0,), (1.0,), (example.shape[1],))
    )
    # Fields by tensor id; the tensors are kept alive so that no id is reused.
    fields: dict[int, tuple[torch.Tensor, Field]] = {id(example): (example, start)}
    order: list[Field] = [start]
    marks: list[int] = []
    rows: list[LayerRow] = []
    counted: set[nn.Module] = set()
    blocks: dict[str, tuple[list[int], Field]] = {}

    def remember(tensor: torch.Tensor, field: Field) -> None:
        fields[id(tensor)] = (tensor, field)
        order.append(field)

    def field_of(tensor) -> Field:
        if isinstance(tensor, torch.Tensor) and id(tensor) in fields:
            return fields[id(tensor)][1]
        # Made by a function call inside a forward (transpose, flatten, sum, ...):
        # take the newest field and pin it to this tensor for its other users.
        field = order[-1]
        if isinstance(tensor, torch.Tensor):
            remember(tensor, field)
        return field

    def before(module, inputs):
        marks.append(len(order))

    def after(module, inputs, output):
        mark = marks.pop()
        if not isinstance(output, torch.Tensor):
            return
        if next(module.children(), None) is None:  # a leaf: a row of the table
            field, cropped = _propagate(module, field_of(inputs[0] if inputs else None), output)
            remember(output, field)
            params = 0 if module in counted else sum(p.numel() for p in module.parameters())
            counted.add(module)
            rows.append(
                LayerRow(
                    name=names[module],
                    type=type(module).__name__,
                    output_shape=list(output.shape[1:]),
                    params=params,
                    macs=_macs(module, output),
                    receptive_field=[round(r) for r in field.size_in_input],
                    jump=[round(j, 3) for j in field.jump],
                    cropped=cropped,
                )
            )
        else:
            if id(output) not in fields:  # concatenation or sum of branches: the widest field
                inner = order[mark:] or [order[-1]]
                remember(output, max(reversed(inner), key=lambda f: math.prod(f.size_in_input)))
            blocks[names[module]] = (list(output.shape[1:]), fields[id(output)][1])

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    params = list(model.parameters())
    return Summary(
        input_shape=list(example.shape[1:]),
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(r.macs for r in rows),
        output_shape=list(output.shape[1:]),
        blocks=blocks,
    )


def example_input(kind: str, input_shape: tuple[int, ...]) -> torch.Tensor:
    """A batch of one: token ids (all real tokens) for text, zeros for images."""
    if kind == "text":
        if len(input_shape) != 1:
            raise ValueError(f"a text input size is one sequence length, got {input_shape}")
        return torch.ones(1, *input_shape, dtype=torch.long)
    return torch.zeros(1, *input_shape)


def summarize_registered(
    name: str, input_shape: tuple[int, ...] | None = None, **config
) -> tuple[nn.Module, Summary]:
    """Build the registered model ``name`` and summarise it on ``input_shape`` (default if None)."""
    entry = model_entry(name)
    model = create_model(name, **config)
    shape = input_shape or entry.input_shape
    try:
        return model, summarize(model, example_input(entry.kind, shape))
    except RuntimeError as error:  # torch's own complaint about a too small input
        raise ValueError(
            f"{name} does not accept an input of {'x'.join(map(str, shape))}: "
            f"{str(error).splitlines()[0]}"
        ) from None
