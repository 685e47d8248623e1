"""CAM latency per image on CPU: cnndash.cam against pytorch-grad-cam and a plain forward pass.

All three are measured in the same run, on the same model and input, so the printed ratios compare like
with like on whatever machine runs it. Targets (issue 8): on ResNet-18 at 224 px, Grad-CAM at least 2.5x
faster than pytorch-grad-cam and within 1.6x of one forward pass, with the same maps (correlation >= 0.99).

    python benchmarks/cam_latency.py [--repeats 10] [--threads 1] [--size 224]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnndash.cam import compute_cam


def lenet(in_channels: int = 3, num_classes: int = 10) -> nn.Module:
    """Classic LeNet-5 shape with ReLU, adapted to any square input via adaptive pooling."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(5),
        nn.Flatten(),
        nn.Linear(16 * 25, 120),
        nn.ReLU(inplace=True),
        nn.Linear(120, 84),
        nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )


def best_of(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str, model: nn.Module, layer: str, x: torch.Tensor, repeats: int) -> dict:
    from pytorch_grad_cam import GradCAM

    model.eval()
    module = dict(model.named_modules())[layer]

    def forward():
        with torch.no_grad():
            model(x)

    def ours():
        return compute_cam(model, layer, x, method="gradcam")

    def oracle():
        with GradCAM(model, [module]) as cam:
            return cam(x, targets=None)

    t_fwd = best_of(forward, repeats)
    t_ours = best_of(ours, repeats)
    t_ref = best_of(oracle, repeats)
    a, b = ours(), oracle()
    corr = min(np.corrcoef(p.ravel(), q.ravel())[0, 1] for p, q in zip(a, b, strict=True))
    n = x.shape[0]
    print(
        f"{name:10s} layer={layer:8s} forward {1e3 * t_fwd / n:7.1f} ms/img | cnndash {1e3 * t_ours / n:7.1f} "
        f"ms/img | pytorch-grad-cam {1e3 * t_ref / n:7.1f} ms/img | speed-up vs pytorch-grad-cam "
        f"{t_ref / t_ours:4.2f}x | cost vs forward {t_ours / t_fwd:4.2f}x | map correlation {corr:.4f}"
    )
    return {"speedup": t_ref / t_ours, "vs_forward": t_ours / t_fwd, "corr": corr}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from torchvision.models import resnet18

    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f"CPU, {torch.get_num_threads()} threads, input {tuple(x.shape)}, median of {args.repeats}")
    # LeNet: the ReLU after the second conv (pytorch-grad-cam reads a conv output that an in-place ReLU
    # later overwrites, so comparing at the conv itself would measure its bug, not ours).
    bench("lenet", lenet(), "4", x, args.repeats)
    res = bench("resnet18", resnet18(weights=None), "layer4", x, args.repeats)
    ok = res["speedup"] >= 2.5 and res["vs_forward"] <= 1.6 and res["corr"] >= 0.99
    print(
        f"ResNet-18 targets (>= 2.5x faster than pytorch-grad-cam, <= 1.6x a forward pass, corr >= 0.99): "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
