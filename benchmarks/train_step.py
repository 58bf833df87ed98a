"""Time one training step of Kim's model: dense Adadelta against LazyAdadelta.

    python benchmarks/train_step.py [--vocab 18765] [--batch 50] [--length 22] [--steps 40]

Both run in this process on the same batch; the script prints the median
forward, backward and optimizer times of each and the ratio of the totals.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from textcnn.models import TextCNN, TextCNNConfig
from textcnn.training.optim import LazyAdadelta


def time_steps(sparse: bool, args) -> list[tuple[float, float, float]]:
    torch.manual_seed(0)
    model = TextCNN(TextCNNConfig(vocab_size=args.vocab))
    model.embedding.sparse = sparse
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = (
        LazyAdadelta(params) if sparse else torch.optim.Adadelta(params, lr=1.0, rho=0.95, eps=1e-6)
    )
    x = torch.randint(1, args.vocab, (args.batch, args.length))
    y = torch.randint(0, 2, (args.batch,))
    times = []
    for i in range(args.steps + 5):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        optimizer.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        if i >= 5:  # warm-up
            times.append((t1 - t0, t2 - t1, t3 - t2))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=int, default=18_765)  # MR's vocabulary
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--length", type=int, default=22)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; vocab {args.vocab}, "
        f"batch {args.batch}, length {args.length}, median of {args.steps} steps"
    )
    totals = {}
    for name, sparse in (("Adadelta (dense)", False), ("LazyAdadelta", True)):
        runs = time_steps(sparse, args)
        fwd, bwd, opt = (1000 * statistics.median(part) for part in zip(*runs, strict=True))
        totals[name] = 1000 * statistics.median(sum(r) for r in runs)
        print(
            f"{name:18s} forward {fwd:6.1f} ms  backward {bwd:6.1f} ms  step {opt:6.1f} ms  "
            f"total {totals[name]:6.1f} ms"
        )
    print(f"speed-up: {totals['Adadelta (dense)'] / totals['LazyAdadelta']:.2f}x")


if __name__ == "__main__":
    main()
