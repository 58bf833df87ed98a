"""Training batches read from a :class:`~textcnn.text.stream.StreamedCorpus`: memory bounded
by a shuffle buffer, whatever the size of the file.

Each epoch deals the file's blocks, in an order drawn from (seed, epoch), round-robin to
the ranks; a rank reads its blocks in that order into a buffer of :data:`BUFFER_ROWS`
rows, tokenizes them, and cuts the buffer into batches of texts of similar length (as
:func:`~.trainer.epoch_batches` does for a corpus in memory), in an order drawn from
(seed, epoch, rank, buffer). Every rank takes the same number of steps: the fewest whole
batches any rank's blocks hold (the scan counted them), so the rows past that on the
other ranks wait for the next epoch's deal.

After each buffer the stream yields a :class:`Position`, where the next buffer starts: the
trainer may checkpoint there, and a resumed run continues from it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from tokenizers import Tokenizer

from ..text.classifier import pad_batch
from ..text.stream import StreamedCorpus
from ..text.tokenizer import encode
from .distributed import World

BUFFER_ROWS = 20_000  # rows shuffled together (and tokenized at once), per rank (default)


@dataclass(frozen=True)
class Position:
    """Where a rank's stream goes on after a buffer: the index in its block list and the
    byte offset of the next row, the buffers and the steps done in the epoch."""

    block: int
    offset: int
    buffer: int
    step: int

    def to_dict(self) -> dict:
        return {
            "block": self.block,
            "offset": self.offset,
            "buffer": self.buffer,
            "step": self.step,
        }


class StreamBatches:
    """The training batches of a streamed corpus, epoch by epoch, for one rank."""

    def __init__(
        self,
        corpus: StreamedCorpus,
        tokenizer: Tokenizer,
        label_ids: dict[str, int],
        batch_size: int,
        world: World,
        seed: int,
        buffer_rows: int = BUFFER_ROWS,
    ) -> None:
        self.corpus = corpus
        self.tokenizer = tokenizer
        self.label_ids = label_ids
        self.world = world
        self.seed = seed
        self.local = batch_size // world.size  # this rank's share of a batch
        if self.local < 1:
            raise ValueError(f"a batch of {batch_size} cannot be shared by {world.size} processes")
        self.buffer_rows = max(1, buffer_rows // self.local) * self.local

    def __len__(self) -> int:
        return len(self.corpus)

    def _deal(self, epoch: int) -> list[list[int]]:
        """Each rank's blocks in this epoch, in reading order."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.corpus.block_rows), generator=generator).tolist()
        return [order[rank :: self.world.size] for rank in range(self.world.size)]

    def steps(self, epoch: int) -> int:
        """Batches every rank takes in ``epoch``."""
        rows = [sum(self.corpus.block_rows[b] for b in blocks) for blocks in self._deal(epoch)]
        return min(rows) // self.local

    def global_batch(self) -> int:
        return self.local * self.world.size

    def epoch(self, epoch: int, start: Position | None = None) -> Iterator:
        """(token ids, targets, the global batch's size) of each batch of this rank, a
        :class:`Position` after every
        buffer; from ``start`` (a position this stream gave) to the epoch's last step."""
        blocks = self._deal(epoch)[self.world.rank]
        total = self.steps(epoch)
        start = start or Position(0, 0, 0, 0)
        step, buffer = start.step, start.buffer
        rows = self.corpus.rows(blocks, (start.block, start.offset))
        while step < total:
            texts, labels, where = [], [], None
            for row in rows:
                where = row[0]
                texts.append(row[1])
                labels.append(row[2])
                if len(texts) == self.buffer_rows:
                    break
            for batch in self._batches(texts, labels, epoch, buffer)[: total - step]:
                yield batch
                step += 1
            buffer += 1
            if where is None or step >= total:
                return
            yield Position(where[0], where[1], buffer, step)

    def _batches(self, texts: list[str], labels: list[str], epoch: int, buffer: int) -> list:
        ids = encode(self.tokenizer, texts)
        targets = torch.tensor([self.label_ids[label] for label in labels], dtype=torch.long)
        seed = ((self.seed * 100_003 + epoch) * 1_009 + self.world.rank) * 100_003 + buffer
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(ids), generator=generator)
        order = sorted(order.tolist(), key=lambda i: len(ids[i]))  # similar lengths together
        cut = [order[i : i + self.local] for i in range(0, len(order), self.local)]
        cut = [b for b in cut if len(b) == self.local]  # whole batches; the rest at the end
        shuffled = torch.randperm(len(cut), generator=generator).tolist()
        return [
            (pad_batch([ids[i] for i in cut[n]]), targets[cut[n]], self.global_batch())
            for n in shuffled
        ]

    def all_batches(self, size: int = 512) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(token ids, targets) of every training row, in file order (counting the n-gram
        channel)."""
        blocks = list(range(len(self.corpus.block_rows)))
        texts, labels = [], []
        for _, text, label in self.corpus.rows(blocks):
            texts.append(text)
            labels.append(label)
            if len(texts) == size:
                yield self._tensors(texts, labels)
                texts, labels = [], []
        if texts:
            yield self._tensors(texts, labels)

    def _tensors(self, texts, labels):
        ids = pad_batch(encode(self.tokenizer, texts))
        return ids, torch.tensor([self.label_ids[label] for label in labels], dtype=torch.long)
