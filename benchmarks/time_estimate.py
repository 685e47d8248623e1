"""How good the one click's time estimate is: measured training steps against :mod:`cnndash.training.budget`.

For each model and input size it times training steps (forward, loss, backward, Adam) on random tensors for
about ``--seconds`` seconds and prints the measured milliseconds per step, the multiply-accumulates per
second that implies, and what :func:`cnndash.training.budget.estimate_seconds`'s constants predict for the
same step. The estimate should sit a little above the measurement (it is meant to be conservative on a
loaded machine), never several times above it: an estimate 4x too slow gave the one click a third of the
epochs its budget allowed (docs/training.md, "The time estimate").

    python benchmarks/time_estimate.py              # one torch thread, CPU
    python benchmarks/time_estimate.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnndash.models import build_model
from cnndash.training.budget import MACS_PER_SECOND, SECONDS_PER_STEP, forward_macs

CASES = [("lenet", 28, 1, 32), ("lenet", 48, 1, 16), ("simplecnn", 28, 1, 32), ("vgg", 32, 3, 16),
         ("vgg", 64, 3, 16), ("mobilenet_v2", 64, 3, 16), ("resnet18", 32, 3, 16), ("resnet18", 64, 3, 16)]  # fmt: skip


def seconds_per_step(model: str, size: int, channels: int, batch: int, budget: float) -> float:
    net = build_model(model, num_classes=3, in_channels=channels, image_size=size)
    optimiser = torch.optim.Adam(net.parameters())
    x, y = torch.randn(batch, channels, size, size), torch.randint(0, 3, (batch,))

    def step() -> None:
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimiser.step()

    for _ in range(3):  # warm-up: oneDNN picks its kernels on the first calls
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        step()
        steps += 1
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0, help="time each case for this long")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads {args.threads}\n")
    print(
        "| model | size | batch | measured ms/step | img/s | GMAC/s | estimated ms/step | estimate / measured |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for model, size, channels, batch in CASES:
        measured = seconds_per_step(model, size, channels, batch, args.seconds)
        macs = 3 * forward_macs(model, size, channels, 3) * batch  # a step is ~3 forward passes
        estimated = macs / MACS_PER_SECOND["cpu"] + SECONDS_PER_STEP["cpu"]
        print(f"| {model} | {size} | {batch} | {measured * 1e3:.1f} | {batch / measured:.0f} | "
              f"{macs / measured / 1e9:.1f} | {estimated * 1e3:.1f} | {estimated / measured:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
