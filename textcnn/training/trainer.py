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
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from ..artifacts import atomic_file
from .averaging import WeightAverage
from .checkpoint import CHECKPOINT_DIR, cpu_state, load_checkpoint, save_checkpoint
from .distributed import ONE_PROCESS, World, local_device
from .objectives import Objective, SingleLabel
from .optim import (
    FitSettings,
    LazyAdadelta,
    apply_max_norm,
    lr_factor,
    make_optimizer,
    pick_device,
)
from .row_exchange import RowExchange, trained_embeddings
from .streaming import Position, StreamBatches

log = logging.getLogger(__name__)

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
class FitResult:
    best_state: dict[str, torch.Tensor]
    last_state: dict[str, torch.Tensor]
    best_epoch: int
    best_dev_score: float  # the objective's metric (accuracy, macro-F1) at the best epoch
    history: list[dict] = field(default_factory=list)


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
        # Row-sparse gradients for trained embeddings with LazyAdadelta, which then updates
        # only the rows a batch used (its dense path is the same update, see optim.py).
        lazy = isinstance(self.optimizer, LazyAdadelta)
        if lazy and world.size == 1:
            for module in trained_embeddings(self.model).values():
                module.sparse = True
        # Image batches in NHWC: oneDNN's convolutions run faster on them (1.4x for WRN-16-1).
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.classifier = model.get_classifier()  # max-norm bounds its weight vectors
        # What the training steps run: the model itself, or DDP around it, which averages
        # the gradients of all ranks in backward (and gave every rank rank 0's weights).
        # The embedding tables are left out of DDP and exchanged row by row (row_exchange.py)
        # unless settings.exchange is "dense".
        self.network = self.model
        self.exchange: RowExchange | None = None
        self.dense_bytes = 0  # what DDP's ring all-reduce sends per rank and step
        if world.size > 1:
            # DDP leaves alone: the embedding tables, exchanged row by row after backward,
            # and the buffers unless training changes them (batch norm's running statistics;
            # the n-gram channel's count tables are filled after training, and DDP sent them
            # from rank 0 before every forward, 2.3 MB a step)
            ignored = []
            if settings.exchange == "rows" and trained_embeddings(self.model):
                self.exchange = RowExchange(self.model, world, keep_sparse=lazy)
                ignored += RowExchange.ignored_names(self.model)
            if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
                ignored += [name for name, _ in self.model.named_buffers()]
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                self.model, ignored
            )
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.network = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            reduced = sum(
                p.numel() * p.element_size()
                for name, p in self.model.named_parameters()
                if p.requires_grad and name not in set(ignored)
            )
            self.dense_bytes = round(reduced * 2 * (world.size - 1) / world.size)
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

    def train_epoch(
        self,
        data: Batches | StreamBatches,
        epoch: int,
        start: dict | None = None,
        at_position: Callable[[Position, dict], None] | None = None,
    ) -> dict:
        """One pass over ``data``. Under DDP every rank draws the same batches and takes its
        share of each (a batch with fewer examples than ranks is skipped), and dropout is
        seeded by (seed, epoch, rank), so a resumed run repeats an uninterrupted one.

        A streamed corpus (:class:`~.streaming.StreamBatches`) gives each rank its own
        batches; dropout is seeded again at every buffer, ``at_position(position, sums)``
        is called after each (the trainer's mid-epoch checkpoint), and ``start`` (what a
        checkpoint saved there) continues the epoch from one."""
        self.model.train()
        world = self.world
        seed = self.settings.seed * 100_003 + epoch
        if isinstance(data, StreamBatches):
            position = Position(**start["position"]) if start else None
            total = data.steps(epoch)
            steps = data.epoch(epoch, position)
            self._seed_dropout(epoch, position.buffer if position else 0)
        else:
            batches = epoch_batches(
                data, self.settings.batch_size, torch.Generator().manual_seed(seed)
            )
            if world.size > 1:
                batches = [b for b in batches if len(b) >= world.size]
                torch.manual_seed(seed * 1_009 + world.rank)
            total = len(batches)
            steps = ((*data.batch(world.share(b)), len(b)) for b in batches)
        sums = {"loss": 0.0, "tally": 0.0, "seen": 0.0, "step": 0}
        if start:
            sums = {
                **start["sums"],
                "tally": torch.tensor(start["sums"]["tally"], dtype=torch.float64),
            }
        base_lrs = [
            group.setdefault("initial_lr", group["lr"]) for group in self.optimizer.param_groups
        ]
        scheduled = self.settings.schedule != "constant" or self.settings.warmup > 0
        bar = tqdm(
            total=total,
            initial=sums["step"],
            desc=f"epoch {epoch}",
            unit="batch",
            disable=None if self.settings.progress and world.is_main else True,
            leave=False,
        )
        for item in steps:
            if isinstance(item, Position):
                self._seed_dropout(epoch, item.buffer)
                if at_position is not None:
                    at_position(item, {**sums, "tally": torch.as_tensor(sums["tally"]).tolist()})
                continue
            inputs, targets, global_batch = item
            if scheduled:
                factor = lr_factor(
                    self.settings, (epoch - 1) * total + sums["step"], self.settings.epochs * total
                )
                for group, base in zip(self.optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base * factor
            inputs, targets = inputs.to(self.device), targets.to(self.device)
            loss, logits = self.batch_loss(inputs, targets, global_batch)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self._exchange()
                self.scaler.unscale_(self.optimizer)
                self._clip()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self._exchange()
                self._clip()
                self.optimizer.step()
            apply_max_norm(self.classifier, self.settings.max_norm)
            if self.average is not None:
                self.average.update(self.model)
            sums["loss"] += loss.item() * global_batch / world.size
            sums["tally"] = sums["tally"] + self.objective.tally(logits.detach(), targets)
            sums["seen"] += global_batch / world.size
            sums["step"] += 1
            bar.update()
            bar.set_postfix(loss=f"{sums['loss'] / sums['seen']:.4f}")
        bar.close()
        metric = self.objective.metric
        total_loss, seen = world.sum(sums["loss"], sums["seen"])
        tally = world.sum_tensor(torch.as_tensor(sums["tally"], dtype=torch.float64))
        record = {"train_loss": total_loss / seen, f"train_{metric}": self.objective.score(tally)}
        if world.size > 1:  # what this rank sent per step, DDP's dense part and the rows
            rows, taken = self.exchange.take_sent_bytes() if self.exchange else (0, 1)
            record["sent_bytes_per_step"] = self.dense_bytes + round(rows / max(taken, 1))
        return record

    def _seed_dropout(self, epoch: int, buffer: int) -> None:
        """Dropout's random numbers for a buffer of a streamed epoch, on this rank."""
        seed = self.settings.seed * 100_003 + epoch
        torch.manual_seed(((seed * 1_009 + self.world.rank) * 100_003 + buffer) * 7 + 1)

    def _exchange(self) -> None:
        if self.exchange is not None:
            self.exchange()

    def _clip(self) -> None:
        """Scale the gradients down to a global l2 norm of ``clip_norm`` (row-sparse ones
        too, which ``clip_grad_norm_`` cannot take)."""
        if self.settings.clip_norm <= 0:
            return
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        values = [g.coalesce().values() if g.is_sparse else g for g in grads]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(v) for v in values]))
        scale = self.settings.clip_norm / (norm + 1e-6)
        if scale < 1:
            for g in grads:
                g.mul_(scale)

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
    def _write_metrics(self, history: list[dict]) -> None:
        with atomic_file(self.workdir / METRICS_FILE) as tmp:
            tmp.write_text("".join(json.dumps(h) + "\n" for h in history))

    def _checkpoint_within(self, epoch: int, state: dict, best: dict[str, torch.Tensor]):
        """What a streamed epoch calls after each buffer: a checkpoint there (weights,
        optimizer, every rank's position, the epoch's sums so far) when
        ``checkpoint_minutes`` have passed since the last one (rank 0's clock decides)."""
        last = time.monotonic()

        def at_position(position: Position, sums: dict) -> None:
            nonlocal last
            due = time.monotonic() - last >= self.settings.checkpoint_minutes * 60
            if not self.world.sum(float(due and self.world.is_main))[0]:
                return
            positions = self.world.gather(position.to_dict())
            every_sums = self.world.gather(sums)  # each rank's own share of the epoch so far
            if self.world.is_main:
                partial = {"epoch": epoch, "positions": positions, "sums": every_sums}
                save_checkpoint(
                    self.workdir,
                    self.model,
                    self.optimizer,
                    {**state, "partial": partial},
                    best,
                    self.average,
                    self.scaler,
                )
            last = time.monotonic()

        return at_position

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
            expected = {"data": data, "average": s.average}
            state, best = load_checkpoint(
                self.workdir, self.model, self.optimizer, expected, self.average, self.scaler
            )
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
                "average": s.average,
            }
            best = cpu_state(self.model)
        metric = self.objective.metric
        partial = state.pop("partial", None)  # a streamed epoch checkpointed midway
        for epoch in range(state["epoch"] + 1, s.epochs + 1):
            if s.patience and state["stale"] >= s.patience:
                break
            started = time.perf_counter()
            start = None
            if partial is not None and partial["epoch"] == epoch:
                if len(partial["positions"]) != self.world.size:
                    raise ValueError(
                        f"{self.workdir}: the run was checkpointed by {len(partial['positions'])}"
                        f" processes; resume it with --nproc {len(partial['positions'])}"
                    )
                rank = self.world.rank
                start = {"position": partial["positions"][rank], "sums": partial["sums"][rank]}
            at_position = self._checkpoint_within(epoch, state, best)
            record = {"epoch": epoch, **self.train_epoch(train, epoch, start, at_position)}
            with self.evaluated_weights():
                dev_score, dev_loss = self.evaluate(dev)
                improved = dev_score > state["best_dev_score"]
                if improved:  # copied only when kept
                    best = cpu_state(self.model)
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
                save_checkpoint(
                    self.workdir, self.model, self.optimizer, state, best, self.average, self.scaler
                )
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
            last = cpu_state(self.model)
        return FitResult(
            best,
            last,
            state["best_epoch"],
            state["best_dev_score"],
            state["history"],
        )
