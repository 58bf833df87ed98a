"""Adadelta that updates only the embedding rows a batch used.

A text batch touches a few hundred of tens of thousands of embedding rows, yet
dense Adadelta rewrites the whole table each step. For a row with zero
gradient, Adadelta only decays its two running averages by ``rho``; this
optimizer applies those skipped decays (``rho**k``) the next time the row is
used, so it follows dense Adadelta while doing work in proportion to the batch.
Dense gradients take the ordinary path.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


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
