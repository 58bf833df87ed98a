"""The training loop shared by the text and image models.

Data comes as a :class:`Batches` source (``len()`` and ``batch(indices)``), so
the loop knows nothing of tokens or pixels. Each epoch shuffles with a
generator seeded by (seed, epoch), and a checkpoint (weights, optimizer,
RNG state, history) is written after every epoch, so ``resume=True`` continues
an interrupted run and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ..artifacts import (
    atomic_directory,
    atomic_file,
    load_tensors,
    read_json,
    save_tensors,
    write_json,
)
from .averaging import WeightAverage
from .distributed import ONE_PROCESS, World, local_device
from .objectives import Objective, SingleLabel
from .optim import LazyAdadelta

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
METRICS_FILE = "metrics.jsonl"


class Batches(Protocol):
    """A data source for the loop. One that also has ``lengths`` (a size per example, e.g. tokens)
    is batched by similar length, so that little time goes into padding."""

    def __len__(self) -> int: ...

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets) of the examples at ``indices``, on the CPU."""
        ...


BUCKET_BATCHES = 50  # length bucketing sorts pools of this many batches


def epoch_batches(data: Batches, size: int, generator: torch.Generator) -> list[list[int]]:
    """The example indices of each batch of one epoch, in a random order drawn from ``generator``.

    With ``data.lengths``, the shuffled examples are cut into pools of ``BUCKET_BATCHES`` batches,
    each pool is sorted by length and cut into batches, and the batches are shuffled: batches
    stay random but hold texts of similar length.
    """
    order = torch.randperm(len(data), generator=generator).tolist()
    lengths = getattr(data, "lengths", None)
    if lengths is None:
        return [order[i : i + size] for i in range(0, len(order), size)]
    batches = []
    pool = size * BUCKET_BATCHES
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lengths.__getitem__)
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


@dataclass
class FitSettings:
    epochs: int = 25  # upper bound; early stopping usually ends sooner
    batch_size: int = 50  # Kim: 50
    # adadelta (Kim: rho 0.95, eps 1e-6) | adamw | sgd (Nesterov momentum 0.9)
    optimizer: Literal["adadelta", "adamw", "sgd"] = "adadelta"
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

    def __post_init__(self) -> None:
        if self.optimizer not in ("adadelta", "adamw", "sgd"):
            raise ValueError(f"optimizer must be adadelta, adamw or sgd, got {self.optimizer!r}")
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


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    last_state: dict[str, torch.Tensor]
    best_epoch: int
    best_dev_score: float  # the objective's metric (accuracy, macro-F1) at the best epoch
    history: list[dict] = field(default_factory=list)


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
    if settings.optimizer == "adadelta":
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


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
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


class Trainer:
    """Fits a :class:`~textcnn.models.Classifier` (the text CNN, an image network, the
    MiniLM teacher) to an :class:`~.objectives.Objective` (cross-entropy by default)."""

    def __init__(
        self,
        model: nn.Module,
        settings: FitSettings,
        workdir: Path,
        objective: Objective | None = None,
        world: World = ONE_PROCESS,
    ) -> None:
        self.settings = settings
        self.world = world
        self.objective = objective or SingleLabel()
        self.device = local_device(pick_device(settings.device))
        self.model = model.to(self.device)
        self.workdir = Path(workdir)
        self.optimizer = make_optimizer(self.model.parameters(), settings)
        # Row-sparse gradients for trained embeddings, on one process; DDP all-reduces dense
        # gradients (LazyAdadelta's dense path is the same update, see optim.py).
        if isinstance(self.optimizer, LazyAdadelta) and world.size == 1:
            for module in self.model.modules():
                if isinstance(module, nn.Embedding) and module.weight.requires_grad:
                    module.sparse = True
        # Image batches in NHWC: oneDNN's convolutions run faster on them (1.4x for WRN-16-1).
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.classifier = model.get_classifier()  # max-norm bounds its weight vectors
        # What the training steps run: the model itself, or DDP around it, which averages
        # the gradients of all ranks in backward (and gave every rank rank 0's weights).
        self.network = self.model
        if world.size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.average = WeightAverage(self.model, settings.average) if settings.average else None
        self.amp_dtype = None
        self.scaler = None
        if self.device.type == "cuda":  # mixed precision on CUDA
            if torch.cuda.is_bf16_supported():
                self.amp_dtype = torch.bfloat16
            else:
                self.amp_dtype = torch.float16
                self.scaler = torch.amp.GradScaler("cuda")

    # -- one pass ---------------------------------------------------------------------------
    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def _layout(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.channels_last and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor, global_batch: int) -> torch.Tensor:
        """The objective's weighted mean loss. Under DDP a rank's share is the sum divided by
        (the global batch's total weight / ranks), since DDP divides the summed gradients by
        the ranks: the averaged gradient is then the global batch's."""
        losses, weights = self.objective.loss(logits, targets)
        total = float(len(losses)) if weights is None else weights.sum()
        if self.world.size > 1:
            total = (
                float(global_batch) if weights is None else self.world.sum(float(total))[0]
            ) / self.world.size
        return losses.sum() / total

    def batch_loss(
        self, inputs: torch.Tensor, targets: torch.Tensor, global_batch: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits) of one batch (a rank's share of ``global_batch`` examples); in
        training mode auxiliary classifiers (GoogLeNet) add their losses times the model's
        ``aux_loss_weight``."""
        with self._autocast():
            logits, aux = self.network(self._layout(inputs), return_aux=True)
            loss = self._loss(logits, targets, global_batch)
            weight = getattr(self.model, "aux_loss_weight", 0.0)
            for aux_logits in aux:
                loss = loss + weight * self._loss(aux_logits, targets, global_batch)
        return loss, logits

    def train_epoch(self, data: Batches, epoch: int) -> dict:
        """One pass over ``data``. Under DDP every rank draws the same batches and takes its
        share of each (a batch with fewer examples than ranks is skipped), and dropout is
        seeded by (seed, epoch, rank), so a resumed run repeats an uninterrupted one."""
        self.model.train()
        world = self.world
        generator = torch.Generator().manual_seed(self.settings.seed * 100_003 + epoch)
        batches = epoch_batches(data, self.settings.batch_size, generator)
        if world.size > 1:
            batches = [b for b in batches if len(b) >= world.size]
            torch.manual_seed((self.settings.seed * 100_003 + epoch) * 1_009 + world.rank)
        total_loss, tally, seen = 0.0, 0.0, 0
        base_lrs = [
            group.setdefault("initial_lr", group["lr"]) for group in self.optimizer.param_groups
        ]
        scheduled = self.settings.schedule != "constant" or self.settings.warmup > 0
        bar = tqdm(
            batches,
            desc=f"epoch {epoch}",
            unit="batch",
            disable=None if self.settings.progress and world.is_main else True,
            leave=False,
        )
        for step, indices in enumerate(bar):
            if scheduled:
                factor = lr_factor(
                    self.settings,
                    (epoch - 1) * len(batches) + step,
                    self.settings.epochs * len(batches),
                )
                for group, base in zip(self.optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base * factor
            inputs, targets = data.batch(world.share(indices))
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            loss, logits = self.batch_loss(inputs, targets, len(indices))
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
                self._clip()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self._clip()
                self.optimizer.step()
            apply_max_norm(self.classifier, self.settings.max_norm)
            if self.average is not None:
                self.average.update(self.model)
            total_loss += loss.item() * len(indices) / world.size
            tally = tally + self.objective.tally(logits.detach(), targets)
            seen += len(indices) / world.size
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        metric = self.objective.metric
        total_loss, seen = world.sum(total_loss, seen)
        tally = world.sum_tensor(torch.as_tensor(tally, dtype=torch.float64))
        return {"train_loss": total_loss / seen, f"train_{metric}": self.objective.score(tally)}

    def _clip(self) -> None:
        if self.settings.clip_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.clip_norm)

    @torch.inference_mode()
    def evaluate(self, data: Batches, batch_size: int = 256) -> tuple[float, float]:
        """(the objective's metric, mean loss) over ``data`` in eval mode; under DDP each
        rank scores its share and the tallies are summed, so every rank gets the same."""
        self.model.eval()
        total_loss, tally = 0.0, 0.0
        mine = self.world.share(list(range(len(data))))
        for start in range(0, len(mine), batch_size):
            inputs, targets = data.batch(mine[start : start + batch_size])
            targets = targets.to(self.device)
            with self._autocast():
                logits = self.model(self._layout(inputs.to(self.device)))
            losses, weights = self.objective.loss(logits, targets)
            total_loss += (
                losses.sum().item()
                if weights is None
                else (losses.sum() / weights.sum()).item() * len(losses)
            )
            tally = tally + self.objective.tally(logits, targets)
        total_loss, seen = self.world.sum(total_loss, len(mine))
        tally = self.world.sum_tensor(torch.as_tensor(tally, dtype=torch.float64))
        return self.objective.score(tally), total_loss / max(seen, 1)

    def evaluated_weights(self) -> contextlib.AbstractContextManager:
        """The weights that are evaluated and kept: the moving average when there is one."""
        if self.average is None:
            return contextlib.nullcontext()
        return self.average.applied(self.model)

    # -- checkpoints ------------------------------------------------------------------------
    def _save_checkpoint(self, state: dict, best: dict[str, torch.Tensor]) -> None:
        tensors, meta = _flatten_optimizer(self.optimizer)
        with atomic_directory(self.workdir / CHECKPOINT_DIR) as tmp:
            save_tensors(_cpu_state(self.model), tmp / "last.safetensors")
            save_tensors(best, tmp / "best.safetensors")
            state = {**state, "average": self.settings.average}
            if self.average is not None:
                tensors.update(self.average.state_dict())
                state["average_updates"] = self.average.updates
            save_tensors(
                {**tensors, "rng.cpu": torch.get_rng_state()}, tmp / "optimizer.safetensors"
            )
            if self.scaler is not None:
                meta["scaler"] = self.scaler.state_dict()
            write_json(tmp / "state.json", {**state, "optimizer": meta})

    def _load_checkpoint(self, data: dict) -> tuple[dict, dict[str, torch.Tensor]]:
        folder = self.workdir / CHECKPOINT_DIR
        if not (folder / "state.json").is_file():
            raise ValueError(
                f"{self.workdir}: no checkpoint to resume from; start again without --resume"
            )
        state = read_json(folder / "state.json")
        if data and state.get("data", data) != data:
            raise ValueError(
                f"{self.workdir}: the interrupted run was trained on other data "
                f"({_sources(state['data'])}, not {_sources(data)}); resume with the data it "
                "started with, or train on this data with another --output"
            )
        state.setdefault("best_dev_score", state.pop("best_dev_accuracy", -1.0))  # before 0.2
        if state.get("average", 0.0) != self.settings.average:
            raise ValueError(
                f"{self.workdir}: the run was started with average={state.get('average', 0.0)}, "
                f"not {self.settings.average}; resume it with the same setting"
            )
        self.model.load_state_dict(load_tensors(folder / "last.safetensors"))
        tensors = load_tensors(folder / "optimizer.safetensors")
        _restore_optimizer(self.optimizer, tensors, state["optimizer"])
        if self.average is not None:
            self.average.load_state_dict(tensors, state["average_updates"])
        if self.scaler is not None and "scaler" in state["optimizer"]:
            self.scaler.load_state_dict(state["optimizer"]["scaler"])
        torch.set_rng_state(tensors["rng.cpu"])
        return state, load_tensors(folder / "best.safetensors")

    def _write_metrics(self, history: list[dict]) -> None:
        with atomic_file(self.workdir / METRICS_FILE) as tmp:
            tmp.write_text("".join(json.dumps(h) + "\n" for h in history))

    # -- the loop ---------------------------------------------------------------------------
    def fit(
        self,
        train: Batches,
        dev: Batches,
        resume: bool = False,
        on_epoch_end: Callable[[dict], None] | None = None,
        data: dict | None = None,
    ) -> FitResult:
        """Train and pick the best epoch on ``dev``. ``data`` identifies the data (sources
        and fingerprints): kept in the checkpoint, and a resumed run must be given the same."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        s = self.settings
        data = data or {}
        if resume:
            state, best = self._load_checkpoint(data)
            log.info("resuming after epoch %d", state["epoch"])
        else:
            if (self.workdir / CHECKPOINT_DIR).exists():
                raise ValueError(
                    f"{self.workdir} holds an unfinished run; pass --resume to continue it, "
                    "or choose another --output"
                )
            torch.manual_seed(s.seed)
            state = {
                "epoch": 0,
                "best_epoch": 0,
                "best_dev_score": -1.0,
                "stale": 0,
                "history": [],
                "data": data,
            }
            best = _cpu_state(self.model)
        metric = self.objective.metric
        for epoch in range(state["epoch"] + 1, s.epochs + 1):
            if s.patience and state["stale"] >= s.patience:
                break
            started = time.perf_counter()
            record = {"epoch": epoch, **self.train_epoch(train, epoch)}
            with self.evaluated_weights():
                dev_score, dev_loss = self.evaluate(dev)
                improved = dev_score > state["best_dev_score"]
                if improved:  # copied only when kept
                    best = _cpu_state(self.model)
            record.update(
                {"dev_loss": dev_loss, f"dev_{metric}": dev_score},
                seconds=round(time.perf_counter() - started, 3),
            )
            if improved:
                state.update(best_epoch=epoch, best_dev_score=dev_score, stale=0)
            else:
                state["stale"] += 1
            state["epoch"] = epoch
            state["history"].append(record)
            if self.world.is_main:
                self._save_checkpoint(state, best)
                self._write_metrics(state["history"])
            log.info(
                "epoch %d: loss %.4f, train %s %.4f, dev %s %.4f (%.1fs)",
                epoch,
                record["train_loss"],
                metric,
                record[f"train_{metric}"],
                metric,
                dev_score,
                record["seconds"],
            )
            if on_epoch_end is not None:
                on_epoch_end(record)
        with self.evaluated_weights():
            last = _cpu_state(self.model)
        return FitResult(
            best,
            last,
            state["best_epoch"],
            state["best_dev_score"],
            state["history"],
        )


def _sources(data: dict) -> str:
    return ", ".join(f"{split} {item.get('source', '?')}" for split, item in data.items())


def remove_checkpoint(workdir: Path) -> None:
    """Drop a run's checkpoint: only once its model directories are written, so that a run
    killed while writing them can still be resumed."""
    shutil.rmtree(Path(workdir) / CHECKPOINT_DIR, ignore_errors=True)
