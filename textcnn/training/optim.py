"""How the weights move: the fit settings, the optimizers, the learning-rate schedule and
Kim's max-norm bound, and ``LazyAdadelta``, an Adadelta that updates only the embedding
rows a batch used.

A text batch touches a few hundred of tens of thousands of embedding rows, yet
dense Adadelta rewrites the whole table each step. For a row with zero
gradient, Adadelta only decays its two running averages by ``rho``; this
optimizer applies those skipped decays (``rho**k``) the next time the row is
used, so it follows dense Adadelta while doing work in proportion to the batch.
Dense gradients take the ordinary path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.optim import Optimizer


@dataclass
class FitSettings:
    epochs: int = 25  # upper bound; early stopping usually ends sooner
    batch_size: int = 50  # Kim: 50
    # adadelta (Kim: rho 0.95, eps 1e-6) | adamw | sgd (Nesterov momentum 0.9)
    # auto: Kim's Adadelta, and AdamW for a multi-label text model (GoEmotions, dev macro-F1
    # 49.2 against 47.7 with Adadelta; test 46.8 against 44.3)
    optimizer: Literal["auto", "adadelta", "adamw", "sgd"] = "auto"
    lr: float | None = None  # default 1.0 for Adadelta, 1e-3 for AdamW, 0.05 for SGD
    # constant | cosine | linear: after the warm-up, the learning rate stays, or decays to 0
    # by the last step along a cosine or a line
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup: float = 0.0  # share of all steps over which the learning rate rises from 0
    clip_norm: float = 0.0  # > 0: clip the gradients' global l2 norm to this
    weight_decay: float = 0.0
    # l2 bound on each class's weight vector; 0 disables. Kim's s = 3 bounds weights whose
    # dropout leaves inputs unscaled; PyTorch's dropout scales kept inputs by 1 / (1 - p) = 2
    # in training, so the same constraint here is 3 x (1 - 0.5) = 1.5
    max_norm: float = 1.5
    patience: int = 5  # epochs without a better dev accuracy before stopping; 0 disables
    average: float = 0.0  # > 0: evaluate and keep a moving average of the weights with this
    # decay (Polyak averaging, e.g. 0.995); 0: the weights as they are
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:1 | mps
    seed: int = 0
    progress: bool = True  # progress bars (on a terminal)
    # under torchrun: seconds a collective waits for the other ranks before the run stops
    timeout: float = 300.0
    # minutes between the checkpoints taken inside an epoch of a streamed corpus (--stream),
    # after a buffer; 0: after every buffer. Other runs checkpoint after every epoch.
    checkpoint_minutes: float = 10.0
    # under torchrun: how the trained embedding tables' gradients travel. rows: only the rows
    # a step touched (all-gathered; see row_exchange.py); dense: DDP's all-reduce of the
    # whole table, as before (the same update, far more bytes)
    exchange: Literal["rows", "dense"] = "rows"

    def __post_init__(self) -> None:
        if self.optimizer not in ("auto", "adadelta", "adamw", "sgd"):
            raise ValueError(
                f"optimizer must be auto, adadelta, adamw or sgd, got {self.optimizer!r}"
            )
        if self.checkpoint_minutes < 0:
            raise ValueError(
                f"checkpoint_minutes must not be negative, got {self.checkpoint_minutes}"
            )
        if self.exchange not in ("rows", "dense"):
            raise ValueError(f"exchange must be rows or dense, got {self.exchange!r}")
        if self.schedule not in ("constant", "cosine", "linear"):
            raise ValueError(f"schedule must be constant, cosine or linear, got {self.schedule!r}")
        if not 0 <= self.warmup < 1 or self.clip_norm < 0:
            raise ValueError("warmup must be in [0, 1) and clip_norm not negative")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        if self.max_norm < 0:
            raise ValueError(f"max_norm must be 0 (off) or positive, got {self.max_norm}")
        if not 0 <= self.average < 1:
            raise ValueError(f"average must be 0 (off) or a decay below 1, got {self.average}")


def lr_factor(settings: FitSettings, step: int, total: int) -> float:
    """The learning rate's factor at ``step`` of ``total``: a linear warm-up over
    ``warmup`` of the steps, then constant, cosine or linear decay to 0."""
    ramp = math.ceil(total * settings.warmup)
    if step < ramp:
        return (step + 1) / ramp
    if settings.schedule == "constant":
        return 1.0
    done = (step - ramp) / max(1, total - ramp)
    if settings.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * done))
    return max(0.0, 1.0 - done)


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available here; use cpu or auto")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(params, settings: FitSettings) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if settings.optimizer in ("auto", "adadelta"):
        if settings.weight_decay:  # decay touches every row: the dense optimizer
            return torch.optim.Adadelta(
                params,
                lr=settings.lr or 1.0,
                rho=0.95,
                eps=1e-6,
                weight_decay=settings.weight_decay,
            )
        return LazyAdadelta(params, lr=settings.lr or 1.0, rho=0.95, eps=1e-6)
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=settings.lr or 0.05,
            momentum=0.9,
            nesterov=True,
            weight_decay=settings.weight_decay,
        )
    return torch.optim.AdamW(params, lr=settings.lr or 1e-3, weight_decay=settings.weight_decay)


def apply_max_norm(layer: nn.Linear | None, max_norm: float) -> None:
    """Rescale each class's weight vector to l2 norm ``max_norm`` when it is longer (Kim 2014)."""
    if layer is not None and max_norm > 0:
        with torch.no_grad():
            layer.weight.copy_(torch.renorm(layer.weight, p=2, dim=0, maxnorm=max_norm))


class LazyAdadelta(Optimizer):
    def __init__(self, params, lr: float = 1.0, rho: float = 0.95, eps: float = 1e-6) -> None:
        if not 0 <= rho <= 1:
            raise ValueError(f"rho must be in [0, 1], got {rho}")
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.int64)
                    state["square_avg"] = torch.zeros_like(param)
                    state["acc_delta"] = torch.zeros_like(param)
                    if param.grad.is_sparse:
                        state["last_step"] = torch.zeros(param.shape[0], dtype=torch.int64)
                state["step"] += 1
                if param.grad.is_sparse:
                    self._sparse_update(param, state, lr, rho, eps)
                else:
                    self._dense_update(param, param.grad, state, lr, rho, eps)
        return loss

    @staticmethod
    def _dense_update(param, grad, state, lr, rho, eps) -> None:
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)
        delta = acc_delta.add(eps).sqrt_().div_(square_avg.add(eps).sqrt_()).mul_(grad)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        param.add_(delta, alpha=-lr)

    @staticmethod
    def _sparse_update(param, state, lr, rho, eps) -> None:
        grad = param.grad.coalesce()
        rows = grad.indices()[0]  # the rows this batch used
        values = grad.values()  # rows x ...
        step = state["step"]
        skipped = (step - 1 - state["last_step"][rows]).to(param.dtype)  # steps with no gradient
        decay = torch.pow(rho, skipped).view(-1, *[1] * (values.dim() - 1))
        square_avg = state["square_avg"][rows] * decay
        acc_delta = state["acc_delta"][rows] * decay
        square_avg.mul_(rho).addcmul_(values, values, value=1 - rho)
        delta = acc_delta.add(eps).sqrt_().div_(square_avg.add(eps).sqrt_()).mul_(values)
        acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
        state["square_avg"][rows] = square_avg
        state["acc_delta"][rows] = acc_delta
        state["last_step"][rows] = step
        param.index_add_(0, rows, delta, alpha=-lr)

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        for state in self.state.values():  # the base class casts tensors to the param dtype
            for key in ("step", "last_step"):
                if key in state:
                    state[key] = state[key].to(torch.int64)
