"""CAM latency per image on CPU: cnndash.explain.cam against pytorch-grad-cam and a plain forward pass.

All three are measured in the same run, on the same model and input, so the printed ratios compare like
with like on whatever machine runs it. Targets (issue 8): on ResNet-18 at 224 px, Grad-CAM at least 2.5x
faster than pytorch-grad-cam and within 1.6x of one forward pass, with the same maps (correlation >= 0.99).

    python benchmarks/cam_latency.py [--repeats 10] [--threads 1] [--size 224]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_seconds

from cnndash.explain.cam import compute_cam
from cnndash.models import build_model, default_cam_layer


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

    t_fwd = median_seconds(forward, repeats)
    t_ours = median_seconds(ours, repeats)
    t_ref = median_seconds(oracle, repeats)
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
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f"CPU, {torch.get_num_threads()} threads, input {tuple(x.shape)}, median of {args.repeats}")
    results = {}
    for name in ("lenet", "resnet18"):
        model = build_model(name, num_classes=10, in_channels=3, image_size=args.size)
        results[name] = bench(name, model, default_cam_layer(name), x, args.repeats)
    res = results["resnet18"]
    ok = res["speedup"] >= 2.5 and res["vs_forward"] <= 1.6 and res["corr"] >= 0.99
    print(
        f"ResNet-18 targets (>= 2.5x faster than pytorch-grad-cam, <= 1.6x a forward pass, corr >= 0.99): "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
