"""Training throughput: cnndash's trainer against the tutorials' loop, same model, same data, same run.

The baseline is written the way the tutorials write it: a ``Dataset`` of PIL images with
``transforms.ToTensor()`` (+ ``Normalize``), a ``DataLoader`` (default layout, no workers, shuffle), and
the plain ``zero_grad / forward / loss / backward / step`` loop. cnndash's trainer decodes the data once
into a uint8 tensor and normalises whole batches on the device. Both train the same architecture from
the same initialisation on the same images with the same loss, optimiser (Adam, constant LR) and batch
size; only training is timed (no validation). The baseline gets five warm-up batches before its timed
epoch; the trainer's timed epoch is its first (its warm-up counts against it). Shared machines are
noisy, so the two alternate for ``--rounds`` rounds and the best of each is reported.

    python benchmarks/train_throughput.py            # LeNet 28×28 (digits) and small VGG 32×32 (shapes)
    python benchmarks/train_throughput.py --quick    # fewer images, for a smoke test
    python benchmarks/train_throughput.py --device cuda

Prints one line per case with images/sec for both and the ratio (target on CPU: >= 3x).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cnndash.data import load_dataset
from cnndash.device import describe_device, resolve_device
from cnndash.models import build_model
from cnndash.training.loops import TrainConfig, train

BATCH_SIZE = 64


class PILImages(Dataset):
    """The tutorial dataset: PIL images in a list, converted per sample by a torchvision transform."""

    def __init__(self, images, targets, transform) -> None:
        self.images, self.targets, self.transform = images, targets, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.targets[i]


def baseline_images_per_sec(dataset: str, model_name: str, size: int, device: torch.device) -> float:
    imageset = load_dataset(dataset)
    mode = "L" if imageset.channels == 1 else "RGB"
    images, targets = [], []
    for i in range(len(imageset.train)):  # images already at the model's size, as MNIST/CIFAR files are
        image, target = imageset.train[i]
        images.append(image.convert(mode).resize((size, size), resample=2))
        targets.append(target)
    channels = imageset.channels
    transform = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize([0.5] * channels, [0.5] * channels)]
    )
    loader = DataLoader(PILImages(images, targets, transform), batch_size=BATCH_SIZE, shuffle=True)
    torch.manual_seed(0)
    model = build_model(
        model_name, num_classes=len(imageset.classes), in_channels=channels, image_size=size
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    model.train()
    for i, (x, y) in enumerate(loader):  # warm-up batches: allocator, oneDNN primitives
        optimizer.zero_grad()
        criterion(model(x.to(device)), y.to(device)).backward()
        optimizer.step()
        if i == 4:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    seen, start = 0, time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        seen += len(y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def cnndash_images_per_sec(dataset: str, model_name: str, size: int, device: torch.device) -> float:
    run_dir = Path(tempfile.mkdtemp(prefix="cnndash-bench-")) / "run"
    try:
        config = TrainConfig(
            dataset=dataset,
            model=model_name,
            epochs=1,  # the timed epoch is the first: its warm-up counts against the trainer
            device=str(device),
            batch_size=BATCH_SIZE,
            lr=1e-3,
            optimizer="adam",
            schedule="constant",
            label_smoothing=0.0,  # the baseline's loss
            image_size=size,
        )
        summary = train(config, run_dir)
        return float(summary["images_per_sec"])
    finally:
        shutil.rmtree(run_dir.parent, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--quick", action="store_true", help="small datasets, for a smoke test")
    parser.add_argument("--rounds", type=int, default=2, help="alternating measurements; the best of each")
    args = parser.parse_args()
    device = resolve_device(args.device)
    count = 300 if args.quick else 800
    cases = [
        ("LeNet 28x28 (digits)", "digits", "lenet", 28),
        ("small VGG 32x32 (shapes)", f"shapes:count={count},size=32", "vgg", 32),
    ]
    print(f"device: {describe_device(device).description} · torch {torch.__version__} · batch {BATCH_SIZE}")
    print(f"{'case':28} {'baseline img/s':>15} {'cnndash img/s':>15} {'ratio':>7}")
    for label, dataset, model_name, size in cases:
        base = ours = 0.0
        for _ in range(max(1, args.rounds)):
            base = max(base, baseline_images_per_sec(dataset, model_name, size, device))
            ours = max(ours, cnndash_images_per_sec(dataset, model_name, size, device))
        print(f"{label:28} {base:15,.0f} {ours:15,.0f} {ours / base:6.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
