"""Row-sparse gradient exchange for embedding tables under data-parallel training.

A step of 50 short texts touches a few hundred of a table's tens of thousands of rows, yet
DDP all-reduces a dense gradient of the whole table every step (47 MB for MiniLM's
WordPiece table). Here DDP keeps the dense layers, and the trained embedding tables are
left out of it: their gradients are row-sparse (``nn.Embedding(sparse=True)``), and after
backward every rank all-gathers the (row, vector) pairs of the others, sums them and
divides by the ranks, as DDP does. The update is then one process's on the global batch,
up to the order of float additions.

Each exchange is three all-gathers: how many rows each rank has, then the row ids and the
vectors, padded to the largest rank's count (collectives need equal sizes).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .distributed import World


def trained_embeddings(model: nn.Module) -> dict[str, nn.Embedding]:
    """The model's embedding tables that training updates, by module name."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Embedding) and module.weight.requires_grad
    }


class RowExchange:
    """Sums the embedding tables' row-sparse gradients over the ranks after backward.

    ``keep_sparse``: leave the summed gradient sparse (an optimizer that updates only the
    rows given, :class:`~.optim.LazyAdadelta`); otherwise it is made dense for the optimizer,
    which then takes the same step as on one process (the wire still carries only rows).
    """

    def __init__(self, model: nn.Module, world: World, keep_sparse: bool) -> None:
        self.world = world
        self.keep_sparse = keep_sparse
        self.tables = list(trained_embeddings(model).values())
        for table in self.tables:
            table.sparse = True
            dist.broadcast(table.weight.data, src=0)  # DDP does this for the layers it has
        self.sent_bytes = 0  # by this rank, since the counter was last read
        self.steps = 0

    @staticmethod
    def ignored_names(model: nn.Module) -> list[str]:
        """The parameters DDP leaves to the exchange (``module.weight`` of each table)."""
        return [f"{name}.weight" for name in trained_embeddings(model)]

    def __call__(self) -> None:
        """Replace each table's local gradient with the mean over the ranks."""
        for table in self.tables:
            weight = table.weight
            if weight.grad is None:  # no row of this rank's share: an empty gradient
                weight.grad = torch.sparse_coo_tensor(
                    torch.empty(1, 0, dtype=torch.int64, device=weight.device),
                    weight.new_empty(0, *weight.shape[1:]),
                    weight.shape,
                    check_invariants=False,
                )
            weight.grad = self._summed(weight.grad.coalesce()) / self.world.size
            if not self.keep_sparse:
                weight.grad = weight.grad.to_dense()
        self.steps += 1

    def _summed(self, grad: torch.Tensor) -> torch.Tensor:
        rows, values = grad.indices()[0], grad.values()
        size = self.world.size
        counts = [torch.zeros(1, dtype=torch.int64, device=rows.device) for _ in range(size)]
        dist.all_gather(counts, torch.tensor([len(rows)], device=rows.device))
        counts = [int(c) for c in counts]
        most = max(counts)
        padded_rows = rows.new_zeros(most)
        padded_rows[: len(rows)] = rows
        padded_values = values.new_zeros(most, *values.shape[1:])
        padded_values[: len(rows)] = values
        all_rows = [torch.empty_like(padded_rows) for _ in range(size)]
        all_values = [torch.empty_like(padded_values) for _ in range(size)]
        dist.all_gather(all_rows, padded_rows)
        dist.all_gather(all_values, padded_values)
        # a ring all-gather sends this rank's (padded) part to each of the others
        part = 8 + padded_rows.numel() * 8 + padded_values.numel() * values.element_size()
        self.sent_bytes += (size - 1) * part
        rows = torch.cat([r[:n] for r, n in zip(all_rows, counts, strict=True)])
        values = torch.cat([v[:n] for v, n in zip(all_values, counts, strict=True)])
        summed = torch.sparse_coo_tensor(rows[None], values, grad.shape, check_invariants=False)
        return summed.coalesce()

    def take_sent_bytes(self) -> tuple[int, int]:
        """(bytes sent, steps) since the last call."""
        taken = (self.sent_bytes, self.steps)
        self.sent_bytes = self.steps = 0
        return taken
