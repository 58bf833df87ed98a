"""Time one training step (forward, backward, SGD) of image architectures on 28×28 grey images,
in the default (NCHW) and the channels-last memory layout.

    python benchmarks/image_step.py [lenet5 wrn_16_1 ...] [--batch 128] [--steps 10]

Both layouts run in this process on the same batch; the script prints the median
time per step of each and their ratio, and the time an epoch of 54,000 images takes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from textcnn.images.models import build_image_model, image_model_config

SHAPE = (1, 28, 28)


def median_step(arch: str, channels_last: bool, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    config = image_model_config(arch, 10, SHAPE[0], SHAPE[1])
    model = build_image_model(arch, config, SHAPE).train()
    x, y = torch.randn(batch, *SHAPE), torch.randint(0, 10, (batch,))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for i in range(steps + 2):  # two warm-up steps
        started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archs", nargs="*", default=["lenet5", "wrn_16_1", "wrn_16_2", "nin"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print("| model | NCHW ms/step | channels-last ms/step | ratio | channels-last min/epoch |")
    print("|---|---|---|---|---|")
    for arch in args.archs:
        nchw = median_step(arch, False, args.batch, args.steps)
        nhwc = median_step(arch, True, args.batch, args.steps)
        epoch = nhwc * 54_000 / args.batch / 60
        print(
            f"| {arch} | {1000 * nchw:.0f} | {1000 * nhwc:.0f} | {nchw / nhwc:.2f}x | {epoch:.1f} |"
        )


if __name__ == "__main__":
    main()
