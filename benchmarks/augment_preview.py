"""Benchmark: the Data page's augmentation preview — 16 augmented samples of a 224×224 photo.

Prints the median time of ``augment_samples`` for a few typical pipelines (also with the JPEG encoding
st.image does) and, as a baseline measured in the same run, the time of 16 plain tensor→PIL conversions
(what showing 16 unaugmented copies costs), with the ratio between them. The issue asks for a preview
that renders in well under a second on CPU.

    python benchmarks/augment_preview.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from _timing import median_seconds

from cnndash.augment import augment_samples, default_step, to_image_tensor
from cnndash.data import sample_photos

N = 16
SIZE = 224
TARGET_S = 1.0

PIPELINES = {
    "flip + rotation": [default_step("RandomHorizontalFlip"), default_step("RandomRotation")],
    "train preset (RRC, flip, jitter)": [
        {"op": "RandomResizedCrop", "size": [SIZE, SIZE]},
        default_step("RandomHorizontalFlip"),
        default_step("ColorJitter"),
    ],
    "RandAugment + erasing + normalize": [
        default_step("RandAugment"),
        default_step("ToDtype"),
        default_step("RandomErasing"),
        default_step("Normalize"),
    ],
    "heavy (affine, perspective, blur, AutoAugment)": [
        default_step("RandomAffine"),
        default_step("RandomPerspective"),
        default_step("GaussianBlur"),
        default_step("AutoAugment"),
    ],
}


def encode(images) -> int:
    """JPEG-encode the samples, as the page's st.image(output_format="JPEG") does for the browser."""
    total = 0
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        total += buffer.tell()
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    photo = sample_photos()["china.jpg"].resize((SIZE, SIZE))
    tensor = to_image_tensor(photo)

    def baseline():
        from torchvision.transforms.v2 import functional as F

        return [F.to_pil_image(tensor) for _ in range(N)]

    base = median_seconds(baseline, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {N} samples of {SIZE}×{SIZE}")
    print(f"baseline (16 plain tensor→PIL conversions): {base * 1000:7.1f} ms")
    worst = 0.0
    for name, spec in PIPELINES.items():
        preview = median_seconds(lambda spec=spec: augment_samples(spec, photo, n=N, seed=0), args.repeats)
        shown = median_seconds(
            lambda spec=spec: encode(augment_samples(spec, photo, n=N, seed=0)), args.repeats
        )
        worst = max(worst, shown)
        print(
            f"{name:48s} {preview * 1000:7.1f} ms  (×{preview / base:5.1f} baseline)   "
            f"with JPEG encoding for the browser {shown * 1000:7.1f} ms"
        )
    verdict = "OK" if worst < TARGET_S else "SLOW"
    print(f"slowest preview {worst * 1000:.0f} ms vs target {TARGET_S * 1000:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
