"""A training run's checkpoint: everything an interrupted fit needs to go on as if it had
never stopped (weights, the best weights so far, optimizer and RNG state, the weight
average, the loss scaler, the history), as safetensors and JSON, written atomically after
every epoch and removed once the model directories are written."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from ..artifacts import atomic_directory, load_tensors, read_json, save_tensors, write_json
from .averaging import WeightAverage

CHECKPOINT_DIR = "checkpoint"


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Optimizer state as (tensors, JSON): safetensors holds only flat tensor dicts."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    workdir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict,
    best: dict[str, torch.Tensor],
    average: WeightAverage | None,
    scaler: torch.amp.GradScaler | None,
) -> None:
    tensors, meta = _flatten_optimizer(optimizer)
    with atomic_directory(Path(workdir) / CHECKPOINT_DIR) as tmp:
        save_tensors(cpu_state(model), tmp / "last.safetensors")
        save_tensors(best, tmp / "best.safetensors")
        if average is not None:
            tensors.update(average.state_dict())
            state = {**state, "average_updates": average.updates}
        save_tensors({**tensors, "rng.cpu": torch.get_rng_state()}, tmp / "optimizer.safetensors")
        if scaler is not None:
            meta["scaler"] = scaler.state_dict()
        write_json(tmp / "state.json", {**state, "optimizer": meta})


def load_checkpoint(
    workdir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    expected: dict,
    average: WeightAverage | None,
    scaler: torch.amp.GradScaler | None,
) -> tuple[dict, dict[str, torch.Tensor]]:
    """(the run's state, the best weights so far), with ``model``, ``optimizer``, the RNG,
    ``average`` and ``scaler`` restored. ``expected`` holds what must not have changed since
    the run started (its data, its averaging): a difference is a ``ValueError``."""
    folder = Path(workdir) / CHECKPOINT_DIR
    if not (folder / "state.json").is_file():
        raise ValueError(f"{workdir}: no checkpoint to resume from; start again without --resume")
    state = read_json(folder / "state.json")
    data = expected["data"]
    if data and state.get("data", data) != data:
        raise ValueError(
            f"{workdir}: the interrupted run was trained on other data "
            f"({_sources(state['data'])}, not {_sources(data)}); resume with the data it "
            "started with, or train on this data with another --output"
        )
    if state.get("average", 0.0) != expected["average"]:
        raise ValueError(
            f"{workdir}: the run was started with average={state.get('average', 0.0)}, "
            f"not {expected['average']}; resume it with the same setting"
        )
    state.setdefault("best_dev_score", state.pop("best_dev_accuracy", -1.0))  # before 0.2
    model.load_state_dict(load_tensors(folder / "last.safetensors"))
    tensors = load_tensors(folder / "optimizer.safetensors")
    _restore_optimizer(optimizer, tensors, state["optimizer"])
    if average is not None:
        average.load_state_dict(tensors, state["average_updates"])
    if scaler is not None and "scaler" in state["optimizer"]:
        scaler.load_state_dict(state["optimizer"]["scaler"])
    torch.set_rng_state(tensors["rng.cpu"])
    return state, load_tensors(folder / "best.safetensors")


def _sources(data: dict) -> str:
    return ", ".join(f"{split} {item.get('source', '?')}" for split, item in data.items())


def remove_checkpoint(workdir: Path) -> None:
    """Drop a run's checkpoint: only once its model directories are written, so that a run
    killed while writing them can still be resumed."""
    shutil.rmtree(Path(workdir) / CHECKPOINT_DIR, ignore_errors=True)
