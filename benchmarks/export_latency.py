"""Images/s of one exported model four ways, on the same batch in one run: eager PyTorch, TorchScript,
ONNX runtime (float) and ONNX runtime (dynamic int8) — plus the bundle's NumPy resize against torch's.

The models are built untrained (speed does not depend on the weights) and wrapped exactly as the export
wraps them (normalisation and softmax inside). Printed ratios are against eager PyTorch in the same run.

    python benchmarks/export_latency.py [--models lenet,resnet18] [--size 64] [--batch 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import median_seconds

from cnndash.export import bundle as export
from cnndash.export.onnx_model import export_onnx, onnx_probabilities, quantize_onnx
from cnndash.models import build_model
from cnndash.preprocess import resize_uint8


def bench_model(name: str, size: int, batch: int, repeats: int, folder: Path) -> None:
    model = build_model(name, num_classes=10, in_channels=3, image_size=size).eval()
    wrapper = export.ProbabilityModel(model, [0.5] * 3, [0.25] * 3).eval()
    x = torch.rand((batch, 3, size, size), generator=torch.Generator().manual_seed(0))
    ts_path, onnx_path, int8_path = (folder / f"{name}.{ext}" for ext in ("pt", "onnx", "int8.onnx"))
    export._torchscript(wrapper, x, ts_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(ts_path)).eval()
    export_onnx(wrapper, x, onnx_path)
    quantize_onnx(onnx_path, int8_path)
    xn = x.numpy()

    def eager():
        with torch.no_grad():
            wrapper(x)

    def torchscript():
        with torch.no_grad():
            scripted(x)

    timings = {
        "eager": median_seconds(eager, repeats),
        "torchscript": median_seconds(torchscript, repeats),
        "onnxruntime": median_seconds(lambda: onnx_probabilities(onnx_path, xn), repeats),
    }
    timings["onnxruntime int8"] = median_seconds(lambda: onnx_probabilities(int8_path, xn), repeats)
    with torch.no_grad():
        reference = wrapper(x).numpy()
    int8_agree = float((onnx_probabilities(int8_path, xn).argmax(1) == reference.argmax(1)).mean())
    sizes = {"onnx": onnx_path.stat().st_size, "int8": int8_path.stat().st_size}
    cells = " | ".join(
        f"{k} {batch / t:8.0f} img/s ({timings['eager'] / t:4.2f}x)" for k, t in timings.items()
    )
    print(
        f"{name:12s} {size}px batch {batch}: {cells} | onnx {sizes['onnx'] / 2**20:.2f} MiB -> int8 "
        f"{sizes['int8'] / 2**20:.2f} MiB, top-1 agreement {int8_agree:.0%}"
    )


def bench_resize(repeats: int) -> None:
    """The bundle's NumPy port of the antialiased resize against torchvision's, one 640×480 photo."""
    spec = importlib.util.spec_from_file_location("bundle_predict", export.TEMPLATE_DIR / "predict.py")
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 480, 640), dtype=np.uint8)
    tensor = torch.from_numpy(pixels)
    t_np = median_seconds(lambda: bundle.resize_uint8(pixels, 224, 224), repeats)
    t_torch = median_seconds(lambda: resize_uint8(tensor, 224), repeats)
    print(
        f"resize 640x480 -> 224: predict.py (NumPy) {1e3 * t_np:.1f} ms | torchvision {1e3 * t_torch:.1f} ms "
        f"| identical: {np.array_equal(bundle.resize_uint8(pixels, 224, 224), resize_uint8(tensor, 224).numpy())}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet,simplecnn,resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            bench_model(name.strip(), args.size, args.batch, args.repeats, Path(tmp))
    bench_resize(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
