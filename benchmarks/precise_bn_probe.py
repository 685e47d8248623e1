"""Why ResNet-18's first epochs spiked: the same weights evaluated with BatchNorm's running statistics and
with precise statistics (recomputed on training batches at those weights), at several peak learning rates
and both stems (16 px: the small-input stem; 72 px: the ImageNet stem).

If the one-cycle peak or the stem caused the spike, the weights would be bad and recomputing the statistics
would not help; if stale statistics cause it, precise BN brings the validation loss back to the training
loss at every setting. docs/training.md has the figures.

    python benchmarks/precise_bn_probe.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnndash.training.loops import TrainConfig, evaluate, train_one_epoch
from cnndash.training.precise_bn import recompute_batchnorm_stats
from cnndash.training.setup import setup

CASES = ((3e-3, 16), (1e-3, 16), (3e-4, 16), (3e-3, 72))  # (peak LR, image size)


def main() -> None:
    torch.set_num_threads(1)
    print("| peak LR | size (stem) | train loss | val loss, running stats | val loss, precise BN |")
    print("|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="cnndash-bn-") as tmp:
        for lr, size in CASES:
            config = TrainConfig(dataset=f"shapes:count=60,size={size}", model="resnet18", epochs=3,
                                 batch_size=16, image_size=size, seed=0, lr=lr, tensorboard=False)  # fmt: skip
            t = setup(config, Path(tmp) / f"run-{lr:g}-{size}")
            result = train_one_epoch(t, 1)  # the first epoch only: that is where the spike was
            running, _ = evaluate(t)
            recompute_batchnorm_stats(t)
            precise, _ = evaluate(t)
            stem = "small-input" if size <= 64 else "ImageNet"
            print(
                f"| {lr:g} | {size} px ({stem}) | {result.loss:.2f} | {running:.2f} | {precise:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
