"""The trainer's data path: from an :class:`cnndash.data.ImageSet` to batches of uint8 images.

Built for speed on small datasets: each split is decoded once into a uint8 tensor ``(N, C, S, S)`` at the
model's input size (kept on the GPU when there is one and it fits), batches are gathered by indexing, and
augmentation (a :mod:`cnndash.augment` spec) runs on uint8 tensors. Datasets larger than the memory budget
fall back to a ``DataLoader`` that decodes files on the fly. Both paths yield the same batches for the same
seed, and neither normalises: that happens on the device (:func:`cnndash.preprocess.normalize_batch`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as TF

from cnndash.augment import build_pipeline
from cnndash.data import ImageList, ImageSet, compute_mean_std
from cnndash.preprocess import (
    array_to_uint8,
    channel_stats,
    image_to_uint8,
    images_to_uint8,
    stats_indices,
)

Batch = tuple[torch.Tensor, torch.Tensor]

# Steps that can run on the whole batch at once (a random per-sample mask, one flip of the batch),
# with the tensor dimension they flip.
BATCHED_FLIPS = {"RandomHorizontalFlip": -1, "RandomVerticalFlip": -2}
# Kept on the GPU only while the decoded data takes less than this share of its free memory: the rest is
# for the model, its activations and cuDNN's workspaces.
GPU_DATA_SHARE = 0.25


class BatchAugmenter:
    """Applies a pipeline spec to a batch and returns it at the model's size (uint8, or float 0–1).

    Leading random flips run batched (each sample flipped with probability ``p``, as the v2 transform
    does); the remaining steps run per sample through the spec's v2 ``Compose``.
    """

    def __init__(self, spec: list[dict], size: int) -> None:
        prefix = 0
        while prefix < len(spec) and spec[prefix].get("op") in BATCHED_FLIPS:
            prefix += 1
        self.flips = [(BATCHED_FLIPS[step["op"]], float(step.get("p", 0.5))) for step in spec[:prefix]]
        self.transform = build_pipeline(spec[prefix:]) if spec[prefix:] else None
        self.size = size

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        for dim, p in self.flips:
            flip = torch.rand(batch.shape[0], device=batch.device) < p
            batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(dim), batch)
        if self.transform is None:
            return batch
        outs = []
        for sample in batch:
            out = self.transform(sample)
            if out.shape[-2:] != (self.size, self.size):  # a crop of another size than the model's
                out = TF.resize(out, [self.size, self.size], antialias=True)
            outs.append(out)
        if any(out.dtype != torch.uint8 for out in outs):
            outs = [o.float().div(255.0) if o.dtype == torch.uint8 else o.float() for o in outs]
        return torch.stack(outs)


def batch_indices(
    n: int, batch_size: int, *, shuffle: bool, seed: int, min_last: int = 2
) -> list[torch.Tensor]:
    """The index batches of one epoch; the same ``seed`` gives the same order on every path.

    A shuffled epoch's last batch shorter than ``min_last`` is folded into the one before: a batch of one
    breaks BatchNorm in train mode, and a distributed run (``min_last`` = its number of processes) needs at
    least one image per process in every batch.
    """
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(n)
    batches = list(order.split(batch_size))
    # (Pop first: in ``batches[-2] = cat(..., batches.pop())`` the target index is taken after the pop, which
    # silently replaced a different batch and dropped its images from the epoch.)
    if shuffle and len(batches) > 1 and len(batches[-1]) < min_last:
        last = batches.pop()
        batches[-1] = torch.cat([batches[-1], last])
    return batches


def shard_batches(batches: list[torch.Tensor], shard: tuple[int, int] | None) -> list[torch.Tensor]:
    """Rank ``r`` of ``w`` (``shard = (r, w)``) takes its contiguous share of every global batch.

    Shares differ by at most one image (the first ``len % w`` ranks take one more); a share can be empty
    only when a batch has fewer images than ranks (validation's last batch). ``None`` = the whole batches.
    """
    if shard is None:
        return batches
    rank, world = shard
    return [batch.tensor_split(world)[rank] for batch in batches]


class MemoryData:
    """The fast path: the whole split decoded once into a uint8 tensor, batches gathered by indexing."""

    kind = "memory"

    def __init__(self, x: torch.Tensor, y: torch.Tensor, augment: BatchAugmenter | None = None) -> None:
        self.x, self.y, self.augment = x, y, augment

    def __len__(self) -> int:
        return len(self.y)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        start: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[Batch]:
        """Batches of ``batch_size`` from batch ``start`` on; with ``shard=(rank, world)`` this rank's share of
        each (empty shares skipped)."""
        order = batch_indices(len(self.y), batch_size, shuffle=shuffle, seed=seed, min_last=_min_last(shard))
        for idx in shard_batches(order[start:], shard):
            if len(idx) == 0:
                continue
            idx = idx.to(self.x.device)
            xb = self.x.index_select(0, idx)
            if self.augment is not None:
                xb = self.augment(xb)
            yield xb, self.y.index_select(0, idx)


class _FileImages(torch.utils.data.Dataset):
    def __init__(self, images: ImageList, channels: int, size: int, spec: list[dict]) -> None:
        self.images, self.channels, self.size, self.spec = images, channels, size, spec
        self._augment: BatchAugmenter | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, target = self.images[i]
        x = image_to_uint8(image, channels=self.channels, size=self.size)
        if self.spec:
            if self._augment is None:  # built here so that DataLoader workers build their own
                self._augment = BatchAugmenter(self.spec, self.size)
            x = self._augment(x.unsqueeze(0))[0]
        return x, target


class LoaderData:
    """The fallback for data that does not fit the memory budget: files decoded by a DataLoader."""

    kind = "dataloader"

    def __init__(
        self,
        images: ImageList,
        channels: int,
        size: int,
        *,
        spec: list[dict],
        num_workers: int,
        pin_memory: bool,
    ) -> None:
        self.dataset = _FileImages(images, channels, size, spec)
        self.num_workers, self.pin_memory = num_workers, pin_memory

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        start: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> Iterator[Batch]:
        order = batch_indices(len(self), batch_size, shuffle=shuffle, seed=seed, min_last=_min_last(shard))
        shares = [idx.tolist() for idx in shard_batches(order[start:], shard) if len(idx)]
        loader = torch.utils.data.DataLoader(
            self.dataset,
            batch_sampler=shares,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )
        for xb, yb in loader:
            yield xb, yb.long()


def _min_last(shard: tuple[int, int] | None) -> int:
    return 2 if shard is None else max(2, shard[1])


def global_batch_sizes(n: int, batch_size: int, *, world: int = 1) -> list[int]:
    """The images in each global batch of a shuffled epoch (the same for every seed)."""
    return [len(idx) for idx in batch_indices(n, batch_size, shuffle=True, seed=0, min_last=max(2, world))]


def decode_split(images: ImageList, channels: int, size: int) -> torch.Tensor:
    """Every image of ``images`` as ``(N, C, size, size)`` uint8 (what the memory path holds).

    Files are decoded one at a time (large photos downscaled while decoding, see
    :func:`cnndash.preprocess.read_image`) and resized straight into the preallocated output, so peak
    memory is the output plus one decoded image, whatever the photos' full size.
    """
    array = images.uint8_array()
    if array is not None and array.shape[-1] == channels:
        return array_to_uint8(array, size=size)
    lazy = (images[i][0] for i in range(len(images)))
    return images_to_uint8(lazy, channels=channels, size=size, count=len(images))


@dataclass
class TrainingData:
    train: MemoryData | LoaderData
    val: MemoryData | LoaderData
    mean: list[float]  # the training split's channel statistics at the training size
    std: list[float]

    @property
    def kind(self) -> str:
        return self.train.kind


def prepare_data(
    imageset: ImageSet,
    *,
    size: int,
    spec: list[dict],
    device: torch.device,
    memory_budget_mb: int,
    num_workers: int,
) -> TrainingData:
    """Both splits ready to batch on ``device``, with the training split's mean/std.

    The memory-or-DataLoader decision budgets the decoded pixels at the training size (what the memory
    path holds), not the files' size on disk nor their full-size pixels: decoding never holds more than
    one full image at a time.
    """
    channels = imageset.channels
    needed_mb = (len(imageset.train) + len(imageset.val)) * channels * size * size / 2**20
    if needed_mb > memory_budget_mb:
        pin = device.type == "cuda"
        train = LoaderData(imageset.train, channels, size, spec=spec, num_workers=num_workers, pin_memory=pin)
        val = LoaderData(imageset.val, channels, size, spec=[], num_workers=num_workers, pin_memory=pin)
        return TrainingData(train, val, *compute_mean_std(imageset.train, channels=channels, size=size))
    x_train = decode_split(imageset.train, channels, size)
    x_val = decode_split(imageset.val, channels, size)
    # The same numbers as compute_mean_std(imageset.train, channels=channels, size=size), from the
    # already decoded split.
    mean, std = channel_stats(x_train[torch.from_numpy(stats_indices(len(x_train)))])
    y_train = torch.as_tensor(imageset.train.targets, dtype=torch.long)
    y_val = torch.as_tensor(imageset.val.targets, dtype=torch.long)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if x_train.numel() + x_val.numel() < free * GPU_DATA_SHARE:
            x_train, x_val = x_train.to(device), x_val.to(device)
            y_train, y_val = y_train.to(device), y_val.to(device)
        else:  # stays in host memory; pinned so batch copies overlap with compute
            x_train, x_val = x_train.pin_memory(), x_val.pin_memory()
    augment = BatchAugmenter(spec, size) if spec else None
    return TrainingData(MemoryData(x_train, y_train, augment), MemoryData(x_val, y_val), mean, std)
