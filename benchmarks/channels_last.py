"""Channels-last (NHWC) against the default layout (NCHW): training steps per second of each built-in model, on
the device it runs on, in the same run.

Each case builds the model once per layout from the same initial weights and times ``--steps`` training steps
(forward, cross-entropy, backward, Adam step) on one random batch that already sits on the device in that
layout, as the trainer's batches do. Shared machines are noisy, so the two layouts alternate for ``--rounds``
rounds and the best round of each counts; on the CPU the clock is this thread's CPU time with torch on one
thread (``--threads``), so other processes on a loaded machine do not count against either layout. ``cnndash.training.setup`` turns channels-last on only where this
measured it faster (``CHANNELS_LAST_MODELS``).

    python benchmarks/channels_last.py              # every model at its usual sizes, on the CPU
    python benchmarks/channels_last.py --quick      # fewer steps and cases, for a smoke test
    python benchmarks/channels_last.py --device cuda

Prints one line per case: images/sec in each layout and the ratio (> 1: channels-last is faster).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnndash.device import describe_device, resolve_device
from cnndash.models import build_model

BATCH_SIZE = 32
# (model, image size, channels): the sizes the trainer picks for digits, small photos and larger photos.
CASES = [
    ("lenet", 28, 1),
    ("simplecnn", 28, 1),
    ("vgg", 32, 3),
    ("vgg", 64, 3),
    ("resnet18", 32, 3),
    ("resnet18", 96, 3),
    ("mobilenet_v2", 32, 3),
    ("mobilenet_v2", 96, 3),
]
QUICK_CASES = [("lenet", 28, 1), ("vgg", 32, 3), ("resnet18", 32, 3)]


def steps_per_second(model: nn.Module, batch: torch.Tensor, targets: torch.Tensor, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for _ in range(2):  # warm-up: oneDNN picks its kernels for this layout
        optimizer.zero_grad(set_to_none=True)
        criterion(model(batch), targets).backward()
        optimizer.step()
    cuda = batch.device.type == "cuda"
    # CPU: this thread's CPU time (torch on one thread computes in it): a loaded machine's other processes
    # do not count. CUDA: wall time after a synchronise.
    clock = time.perf_counter if cuda or torch.get_num_threads() > 1 else time.thread_time
    if cuda:
        torch.cuda.synchronize()
    start = clock()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        criterion(model(batch), targets).backward()
        optimizer.step()
    if cuda:
        torch.cuda.synchronize()
    return steps / (clock() - start)


def compare(name: str, size: int, channels: int, device: torch.device, steps: int, rounds: int) -> tuple:
    torch.manual_seed(0)
    base = build_model(name, num_classes=10, in_channels=channels, image_size=size)
    batch = torch.randn(BATCH_SIZE, channels, size, size, device=device)
    targets = torch.randint(0, 10, (BATCH_SIZE,), device=device)
    nchw = copy.deepcopy(base).to(device)
    nhwc = copy.deepcopy(base).to(device, memory_format=torch.channels_last)
    batch_nhwc = batch.contiguous(memory_format=torch.channels_last)
    best = {"nchw": 0.0, "nhwc": 0.0}
    for _ in range(rounds):  # alternate, so a busy moment on a shared machine hits both layouts
        best["nchw"] = max(best["nchw"], steps_per_second(nchw, batch, targets, steps))
        best["nhwc"] = max(best["nhwc"], steps_per_second(nhwc, batch_nhwc, targets, steps))
    return best["nchw"] * BATCH_SIZE, best["nhwc"] * BATCH_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: timed in CPU time)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cases = QUICK_CASES if args.quick else CASES
    steps = args.steps or (3 if args.quick else 10)
    clock = "wall" if device.type == "cuda" or args.threads > 1 else "CPU time, 1 thread"
    print(
        f"device: {describe_device(device).description}; batch {BATCH_SIZE}; best of {args.rounds}; {clock}"
    )
    print(f"{'model':<14}{'size':>6}{'NCHW img/s':>12}{'NHWC img/s':>12}{'NHWC/NCHW':>11}")
    for name, size, channels in cases:
        nchw, nhwc = compare(name, size, channels, device, steps, args.rounds)
        print(f"{name:<14}{size:>6}{nchw:>12,.0f}{nhwc:>12,.0f}{nhwc / nchw:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
