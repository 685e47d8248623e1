"""Training: ``TrainConfig`` (saved as JSON with every run) and ``train()``, the one trainer behind the page,
the background jobs and the CLI.

The data path is built for speed on small datasets: every image is decoded once into a uint8 tensor
``(N, C, S, S)`` at the model's input size (kept on the GPU when there is one), batches are gathered by
indexing, augmentation (a :mod:`cnndash.augment` spec) runs per sample on uint8 tensors, and the float
conversion and normalisation happen on the device. Datasets larger than ``memory_budget_mb`` fall back
to a ``DataLoader`` that decodes files on the fly. Progress goes to ``on_event`` as plain dicts; the
trainer never prints.

Eval preprocessing (``images_to_uint8`` + ``normalize_batch``) is shared with :meth:`cnndash.runs.Run.
preprocess`, so the Evaluation and Grad-CAM pages see exactly what the model saw in validation.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from cnndash import runs as runstore
from cnndash.device import describe_device, resolve_device
from cnndash.models import (
    MODEL_NAMES,
    TRANSFER_MODES,
    build_model,
    count_parameters,
    default_image_size,
    parameter_groups,
)
from cnndash.preprocess import (
    IMAGENET_GRAY_MEAN,
    IMAGENET_GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    array_to_uint8,
    channel_stats,
    image_to_uint8,
    images_to_uint8,
    normalize_batch,
)

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
EventCallback = Callable[[dict], None]


class ConfigError(ValueError):
    """A training setting that cannot work; the message names the setting and a valid value."""


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite: the run stops (the last good checkpoint stays)."""


@dataclass
class TrainConfig:
    dataset: str  # built-in name (digits, shapes, …), uploaded dataset name, or image folder / zip path
    model: str = "lenet"  # one of cnndash.models.MODEL_NAMES
    epochs: int = 10
    device: str = "auto"  # auto | cpu | cuda | mps
    seed: int = 0  # model init, shuffling and augmentation; same seed + same data = same run on CPU
    batch_size: int = 32  # small batches = more updates per epoch, which matters most on small datasets
    lr: float = 3e-3  # peak learning rate (one-cycle) / base learning rate (other schedules)
    optimizer: str = "adam"  # adam | adamw | sgd (momentum 0.9, Nesterov)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    label_smoothing: float = 0.1  # as in torchvision's recipes; the training loss then stays above 0
    schedule: str = "onecycle"  # onecycle | cosine | step | constant
    warmup_epochs: float = 0.0  # linear warm-up (cosine/step/constant); one-cycle warms up on its own
    step_size: int = 0  # step schedule: epochs between LR drops (0 = a third of the epochs)
    step_gamma: float = 0.1  # step schedule: LR factor at each drop
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    early_stopping: int = 0  # stop after this many epochs without a better validation result, 0 = off
    image_size: int | None = None  # square side the model sees; None = from the dataset and model
    val_fraction: float = 0.2
    augment: list[dict] = field(default_factory=list)  # augmentation spec (cnndash.augment), [] = none
    pipeline: str = ""  # name of the saved pipeline the spec came from (display only)
    pretrained: bool = False  # ImageNet weights from the local torch cache (resnet18, mobilenet_v2)
    transfer: str = "all"  # all | freeze (train the head only) | lower_lr (backbone at lr * factor)
    backbone_lr_factor: float = 0.1
    amp: bool = True  # mixed precision on CUDA (ignored elsewhere)
    channels_last: bool = True  # NHWC memory layout on CUDA and CPU (ignored on MPS)
    memory_budget_mb: int = 2048  # decoded-dataset size above which the DataLoader path is used
    num_workers: int = 0  # DataLoader workers (DataLoader path only)
    threads: int = 0  # torch CPU threads while training, 0 = leave torch's setting

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augment"] = [dict(step) for step in self.augment]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        if "dataset" not in data:
            raise ConfigError("A training config needs a 'dataset'.")
        return cls(**data)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot train."""
        checks = [
            (self.model in MODEL_NAMES, f"model must be one of {', '.join(MODEL_NAMES)}, got {self.model!r}"),
            (
                isinstance(self.epochs, int) and self.epochs >= 1,
                f"epochs must be at least 1, got {self.epochs}",
            ),
            (
                isinstance(self.batch_size, int) and self.batch_size >= 1,
                f"batch size must be at least 1, got {self.batch_size}",
            ),
            (
                isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0,
                f"learning rate must be a positive number, got {self.lr}",
            ),
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
            ),
            (
                self.schedule in SCHEDULES,
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
            ),
            (
                self.transfer in TRANSFER_MODES,
                f"transfer must be one of {', '.join(TRANSFER_MODES)}, got {self.transfer!r}",
            ),
            (0 < self.val_fraction < 1, f"val_fraction must be between 0 and 1, got {self.val_fraction}"),
            (
                0 <= self.label_smoothing < 1,
                f"label smoothing must be in [0, 1), got {self.label_smoothing}",
            ),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (self.grad_clip >= 0, f"gradient clipping must be >= 0 (0 = off), got {self.grad_clip}"),
            (self.early_stopping >= 0, f"early stopping patience must be >= 0, got {self.early_stopping}"),
            (
                0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
                "warm-up must be shorter than the run",
            ),
            (
                self.image_size is None or int(self.image_size) >= 4,
                f"image size too small: {self.image_size}",
            ),
            (isinstance(self.augment, list), "augment must be a list of steps (a pipeline spec)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message[0].upper() + message[1:] + ".")


def _spec_normalize(spec: list[dict]) -> dict | None:
    return next((step for step in spec if step.get("op") == "Normalize"), None)


# --------------------------------------------------------------------------------------------------
# Batches


# Steps that can run on the whole batch at once (a random per-sample mask, one flip of the batch).
_BATCHED_FLIPS = {"RandomHorizontalFlip": -1, "RandomVerticalFlip": -2}


class _Augmenter:
    """Applies a pipeline spec to a batch and returns it at the model's size (uint8, or float 0–1).

    Leading random flips run batched (each sample flipped with probability ``p``, as the v2 transform
    does); the remaining steps run per sample through the spec's v2 ``Compose``.
    """

    def __init__(self, spec: list[dict], size: int) -> None:
        from cnndash.augment import build_pipeline

        prefix = 0
        while prefix < len(spec) and spec[prefix].get("op") in _BATCHED_FLIPS:
            prefix += 1
        self.flips = [(_BATCHED_FLIPS[step["op"]], float(step.get("p", 0.5))) for step in spec[:prefix]]
        self.transform = build_pipeline(spec[prefix:]) if spec[prefix:] else None
        self.size = size

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        for dim, p in self.flips:
            flip = torch.rand(batch.shape[0], device=batch.device) < p
            batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(dim), batch)
        if self.transform is None:
            return batch
        outs = [self.transform(sample) for sample in batch]
        fixed = []
        for out in outs:
            if out.shape[-2:] != (self.size, self.size):
                out = TF.resize(out, [self.size, self.size], antialias=True)
            fixed.append(out)
        if any(o.dtype != torch.uint8 for o in fixed):
            fixed = [o.float().div(255.0) if o.dtype == torch.uint8 else o.float() for o in fixed]
        return torch.stack(fixed)


def _batch_indices(n: int, batch_size: int, *, shuffle: bool, seed: int) -> list[torch.Tensor]:
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    else:
        order = torch.arange(n)
    batches = list(order.split(batch_size))
    # A batch of one breaks BatchNorm in train mode; fold it into the previous one.
    if shuffle and len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2] = torch.cat([batches[-2], batches.pop()])
    return batches


class _MemoryData:
    """The fast path: the whole split decoded once into a uint8 tensor, batches gathered by indexing."""

    kind = "memory"

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def batches(
        self, batch_size: int, *, shuffle: bool, seed: int, start: int = 0, augment: _Augmenter | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in _batch_indices(len(self.y), batch_size, shuffle=shuffle, seed=seed)[start:]:
            idx = idx.to(self.x.device)
            xb = self.x.index_select(0, idx)
            if augment is not None:
                xb = augment(xb)
            yield xb, self.y.index_select(0, idx)


class _FileImages(torch.utils.data.Dataset):
    def __init__(self, images, channels: int, size: int, spec: list[dict]) -> None:
        self.images, self.channels, self.size, self.spec = images, channels, size, spec
        self._augment: _Augmenter | None = None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, target = self.images[i]
        x = image_to_uint8(image, channels=self.channels, size=self.size)
        if self.spec:
            if self._augment is None:  # built lazily so DataLoader workers build their own
                self._augment = _Augmenter(self.spec, self.size)
            x = self._augment(x.unsqueeze(0))[0]
        return x, target


class _LoaderData:
    """The fallback for data that does not fit the memory budget: files decoded by a DataLoader."""

    kind = "dataloader"

    def __init__(self, images, channels: int, size: int, *, num_workers: int, pin_memory: bool) -> None:
        self.images, self.channels, self.size = images, channels, size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.y = torch.as_tensor(images.targets, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.images)

    def batches(
        self, batch_size: int, *, shuffle: bool, seed: int, start: int = 0, spec: list[dict] | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dataset = _FileImages(self.images, self.channels, self.size, spec or [])
        order = [idx.tolist() for idx in _batch_indices(len(self), batch_size, shuffle=shuffle, seed=seed)]
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_sampler=order[start:],
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=False,
        )
        for xb, yb in loader:
            yield xb, yb.long()

    def sample_uint8(self, limit: int = 1000) -> torch.Tensor:
        step = max(1, len(self.images) // limit)
        picks = [self.images[i][0] for i in range(0, len(self.images), step)][:limit]
        return images_to_uint8(picks, channels=self.channels, size=self.size)


def _decode_split(images, channels: int, size: int) -> torch.Tensor:
    array = images.uint8_array()
    if array is not None and array.shape[-1] == channels:
        return array_to_uint8(array, size=size)
    return images_to_uint8([images[i][0] for i in range(len(images))], channels=channels, size=size)


def _prepare_data(imageset, config: TrainConfig, size: int, device: torch.device):
    channels = imageset.channels
    n = len(imageset.train) + len(imageset.val)
    needed_mb = n * channels * size * size / 2**20
    if needed_mb > config.memory_budget_mb:
        pin = device.type == "cuda"
        train = _LoaderData(imageset.train, channels, size, num_workers=config.num_workers, pin_memory=pin)
        val = _LoaderData(imageset.val, channels, size, num_workers=config.num_workers, pin_memory=pin)
        return train, val, train.sample_uint8()
    x_train = _decode_split(imageset.train, channels, size)
    x_val = _decode_split(imageset.val, channels, size)
    y_train = torch.as_tensor(imageset.train.targets, dtype=torch.long)
    y_val = torch.as_tensor(imageset.val.targets, dtype=torch.long)
    stats_source = x_train
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if x_train.numel() + x_val.numel() < free // 4:
            x_train, x_val = x_train.to(device), x_val.to(device)
            y_train, y_val = y_train.to(device), y_val.to(device)
        else:  # stays in host memory; pinned so batch copies overlap with compute
            x_train, x_val = x_train.pin_memory(), x_val.pin_memory()
    return _MemoryData(x_train, y_train), _MemoryData(x_val, y_val), stats_source


# --------------------------------------------------------------------------------------------------
# Optimiser and schedule


def _make_optimizer(config: TrainConfig, groups: list[dict], device: torch.device) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        cls, kwargs = torch.optim.SGD, {"momentum": config.momentum, "nesterov": config.momentum > 0}
    else:
        cls, kwargs = (torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam), {}
    kwargs.update(lr=config.lr, weight_decay=config.weight_decay)
    if device.type in ("cpu", "cuda"):
        # One fused kernel per step instead of ~10 small ops per parameter tensor: for small CNNs the
        # optimizer step is otherwise a noticeable share of the time.
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):  # an older torch without fused support here
            pass
    return cls(groups, **kwargs)


def _make_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        pct = config.warmup_epochs / config.epochs if config.warmup_epochs else 0.25
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total,
            pct_start=min(max(pct, 0.01), 0.9),
        )
    warmup = round(config.warmup_epochs * steps_per_epoch)
    step_size = config.step_size or max(1, config.epochs // 3)
    schedule, gamma = config.schedule, config.step_gamma

    def factor(step: int) -> float:
        value = 1.0
        if schedule == "cosine":
            progress = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
            value = 0.5 * (1.0 + math.cos(math.pi * progress))
        elif schedule == "step":
            value = gamma ** ((step // steps_per_epoch) // step_size)
        if warmup and step < warmup:
            value *= (step + 1) / warmup
        return value

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------------------------------
# The trainer


@dataclass
class _State:
    epoch: int = 0  # finished epochs
    batch: int = 0  # batches done in the unfinished epoch (after a stop)
    step: int = 0
    best_val_acc: float = -1.0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0


def _evaluate(model, data, batch_size, device, mean, std, channels_last, amp) -> tuple[float, float]:
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with torch.no_grad():
        batches = data.batches(max(batch_size, 256), shuffle=False, seed=0)
        for xb, yb in batches:
            xb = normalize_batch(xb.to(device, non_blocking=True), mean, std)
            yb = yb.to(device, non_blocking=True)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
    n = max(len(data), 1)
    return float(loss_sum) / n, float(correct) / n


def _checkpoint(model, optimizer, scheduler, scaler, state: _State, config: TrainConfig, meta: dict) -> dict:
    return {
        "model": {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "epoch": state.epoch,
        "batch": state.batch,
        "step": state.step,
        "best_val_acc": state.best_val_acc,
        "best_val_loss": state.best_val_loss,
        "best_epoch": state.best_epoch,
        "stale_epochs": state.stale_epochs,
        "config": config.to_dict(),
        "model_name": config.model,
        **meta,
    }


def _append_metrics(run_dir: Path, row: dict) -> None:
    path = run_dir / "metrics.csv"
    columns = [*runstore.METRIC_COLUMNS, "lr", "seconds", "images_per_sec"]
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a") as handle:
        if new:
            handle.write(",".join(columns) + "\n")
        handle.write(
            ",".join(repr(float(row[c])) if c != "epoch" else str(int(row[c])) for c in columns) + "\n"
        )
        handle.flush()
        os.fsync(handle.fileno())


def _truncate_metrics(run_dir: Path, last_epoch: int) -> None:
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return
    lines = path.read_text().splitlines()
    kept = lines[:1] + [line for line in lines[1:] if line and int(line.split(",")[0]) <= last_epoch]
    path.write_text("\n".join(kept) + "\n")


def _emit(on_event: EventCallback | None, event: dict) -> None:
    if on_event is not None:
        on_event(event)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _resolve(config: TrainConfig, run_dir: Path, resume: bool) -> TrainConfig:
    if resume:
        saved = runstore.read_json(run_dir / "config.json")
        if not (run_dir / "last.pt").is_file() or not isinstance(saved, dict):
            raise runstore.RunError(
                f"Nothing to resume in {run_dir}: it has no last.pt; train it without resume."
            )
        resolved = TrainConfig.from_dict(saved)
        resolved.device = config.device  # the saved run may come from another machine
        return resolved
    if (run_dir / "config.json").exists():
        raise runstore.RunError(f"{run_dir} already holds a run; choose another output folder or resume it.")
    return TrainConfig.from_dict(config.to_dict())


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    on_event: EventCallback | None = None,
    stop_event: threading.Event | None = None,
) -> dict:
    """Train ``config`` into ``run_dir`` and return the summary (also written to ``summary.json``).

    ``resume=True`` continues the run in ``run_dir`` from ``last.pt`` with its saved config (only the
    device may differ). ``stop_event`` is checked before every batch: setting it ends the run within one
    batch, saving ``last.pt`` (and ``best.pt`` if none exists yet) so the run can be evaluated or resumed.
    Raises :class:`ConfigError`, ``DatasetError``, ``ModelError`` for bad input and
    :class:`TrainingDivergedError` when the loss stops being finite.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    config.validate()
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    config = _resolve(config, run_dir, resume)
    config.validate()
    device = resolve_device(config.device)
    if config.augment:  # a bad spec fails now, not in the middle of the first epoch
        from cnndash.augment import build_pipeline

        build_pipeline(config.augment)

    from cnndash.data import load_dataset

    imageset = load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)
    if len(imageset.train) == 0 or len(imageset.val) == 0:
        raise ConfigError(
            f"Dataset {config.dataset!r} has {len(imageset.train)} training and {len(imageset.val)} "
            "validation images; both need at least one (use more images or another val_fraction)."
        )
    size = int(config.image_size or default_image_size(config.model, imageset.image_size))
    config.image_size = size
    channels = imageset.channels

    _seed_everything(config.seed)
    model = build_model(
        config.model,
        num_classes=len(imageset.classes),
        in_channels=channels,
        image_size=size,
        pretrained=config.pretrained and not resume,
    )
    groups = parameter_groups(
        model,
        config.model,
        lr=config.lr,
        transfer=config.transfer,
        backbone_lr_factor=config.backbone_lr_factor,
    )
    train_data, val_data, stats_source = _prepare_data(imageset, config, size, device)
    norm_step = _spec_normalize(config.augment)
    if norm_step is not None:
        mean, std = list(norm_step["mean"]), list(norm_step["std"])
    elif config.pretrained:  # ImageNet weights expect ImageNet statistics (their average for grayscale)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)
    else:
        mean, std = channel_stats(stats_source)
    spec_normalizes = norm_step is not None
    # On the device once, so normalising a batch does not copy the statistics every time.
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.tensor(std, dtype=torch.float32, device=device)
    augment = _Augmenter(config.augment, size) if config.augment and train_data.kind == "memory" else None

    cuda = device.type == "cuda"
    amp = bool(config.amp and cuda)
    # NHWC: faster convolutions with cuDNN and with oneDNN on CPU alike (~25 % for LeNet/VGG on AVX2).
    channels_last = bool(config.channels_last and device.type in ("cuda", "cpu"))
    if cuda:
        torch.backends.cudnn.benchmark = True
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(config, groups, device)
    steps_per_epoch = len(_batch_indices(len(train_data), config.batch_size, shuffle=True, seed=0))
    scheduler = _make_scheduler(config, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    meta = {
        "classes": list(imageset.classes),
        "in_channels": channels,
        "image_size": size,
        "mean": mean,
        "std": std,
    }
    state = _State()
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        checkpoint = torch.load(run_dir / "last.pt", map_location="cpu", weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        state = _State(
            epoch=int(checkpoint["epoch"]),
            batch=int(checkpoint.get("batch", 0)),
            step=int(checkpoint.get("step", 0)),
            best_val_acc=float(checkpoint.get("best_val_acc", -1.0)),
            best_val_loss=float(checkpoint.get("best_val_loss", math.inf)),
            best_epoch=int(checkpoint.get("best_epoch", 0)),
            stale_epochs=int(checkpoint.get("stale_epochs", 0)),
        )
        _truncate_metrics(run_dir, state.epoch)
        torch.manual_seed(config.seed + 7919 * (state.epoch + 1) + state.batch)
    else:
        runstore.write_json_atomic(run_dir / "config.json", config.to_dict())
    dataset_info = {
        "dataset": config.dataset,
        **meta,
        "train_images": len(imageset.train),
        "val_images": len(imageset.val),
        "data_path": train_data.kind,
    }
    runstore.write_json_atomic(run_dir / "dataset.json", dataset_info)
    info = describe_device(device)
    runstore.write_status(run_dir, "running", f"epoch {state.epoch + 1} of {config.epochs}")

    old_threads = torch.get_num_threads()
    if config.threads > 0 and device.type == "cpu":
        torch.set_num_threads(config.threads)
    _emit(
        on_event,
        {
            "type": "start",
            "run_name": run_dir.name,
            "epochs": config.epochs,
            "start_epoch": state.epoch,
            "steps_per_epoch": steps_per_epoch,
            "device": device.type,
            "device_description": info.description,
            "train_images": len(imageset.train),
            "val_images": len(imageset.val),
            "data_path": train_data.kind,
            "image_size": size,
            "classes": list(imageset.classes),
            "parameters": count_parameters(model),
        },
    )

    train_seconds = 0.0
    images_seen = 0
    status, message = "finished", ""
    log_every = 1 if device.type == "cpu" else 10
    try:
        while state.epoch < config.epochs:
            epoch = state.epoch + 1
            model.train()
            epoch_start = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            batch_seed = config.seed * 100_003 + epoch
            if train_data.kind == "memory":
                batches = train_data.batches(
                    config.batch_size, shuffle=True, seed=batch_seed, start=state.batch, augment=augment
                )
            else:
                batches = train_data.batches(
                    config.batch_size, shuffle=True, seed=batch_seed, start=state.batch, spec=config.augment
                )
            stopped = False
            for b, (xb, yb) in enumerate(batches, start=state.batch + 1):
                if stop_event is not None and stop_event.is_set():
                    stopped = True
                    state.batch = b - 1
                    break
                xb = xb.to(device, non_blocking=True)
                yb = yb.to(device, non_blocking=True)
                xb = xb.float() if spec_normalizes else normalize_batch(xb, mean_t, std_t)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                    logits = model(xb)
                    loss = criterion(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                state.step += 1
                state.batch = b
                n = yb.shape[0]
                seen += n
                loss_sum += loss.detach() * n
                correct += (logits.detach().argmax(1) == yb).sum()
                if b % log_every == 0 or b == steps_per_epoch:
                    batch_loss = float(loss.detach())
                    if not math.isfinite(batch_loss):
                        raise TrainingDivergedError(
                            f"The training loss became {batch_loss} at epoch {epoch}, batch {b}: the "
                            f"learning rate {config.lr:g} is too high for this model and data — lower it "
                            f"(try {config.lr / 10:g}) or turn on gradient clipping."
                        )
                    elapsed = time.perf_counter() - epoch_start
                    _emit(
                        on_event,
                        {
                            "type": "batch",
                            "epoch": epoch,
                            "epochs": config.epochs,
                            "batch": b,
                            "batches": steps_per_epoch,
                            "step": state.step,
                            "loss": batch_loss,
                            "acc": float((logits.argmax(1) == yb).float().mean()),
                            "lr": optimizer.param_groups[-1]["lr"],
                            "images_per_sec": seen / elapsed if elapsed > 0 else 0.0,
                        },
                    )
            epoch_train_seconds = time.perf_counter() - epoch_start
            train_seconds += epoch_train_seconds
            images_seen += seen
            if stopped:
                status = "stopped"
                message = (
                    f"Stopped by the user at epoch {epoch}, batch {state.batch} of {steps_per_epoch}; "
                    "resume to continue."
                )
                runstore.save_atomic(
                    _checkpoint(model, optimizer, scheduler, scaler, state, config, meta), run_dir / "last.pt"
                )
                if not (run_dir / "best.pt").is_file():
                    val_loss, val_acc = _evaluate(
                        model, val_data, config.batch_size, device, mean_t, std_t, channels_last, amp
                    )
                    state.best_val_acc, state.best_val_loss = val_acc, val_loss
                    runstore.save_atomic(
                        _checkpoint(model, optimizer, scheduler, scaler, state, config, meta),
                        run_dir / "best.pt",
                    )
                break

            train_loss = float(loss_sum) / max(seen, 1)
            if not math.isfinite(train_loss):
                raise TrainingDivergedError(
                    f"The training loss became {train_loss} in epoch {epoch}: the learning rate "
                    f"{config.lr:g} is too high — lower it (try {config.lr / 10:g}) or turn on gradient clipping."
                )
            train_acc = float(correct) / max(seen, 1)
            val_loss, val_acc = _evaluate(
                model, val_data, config.batch_size, device, mean_t, std_t, channels_last, amp
            )
            state.epoch, state.batch = epoch, 0
            improved = val_acc > state.best_val_acc or (
                val_acc == state.best_val_acc and val_loss < state.best_val_loss
            )
            if improved:
                state.best_val_acc, state.best_val_loss, state.best_epoch = val_acc, val_loss, epoch
                state.stale_epochs = 0
            else:
                state.stale_epochs += 1
            checkpoint = _checkpoint(model, optimizer, scheduler, scaler, state, config, meta)
            runstore.save_atomic(checkpoint, run_dir / "last.pt")
            if improved:
                runstore.save_atomic(checkpoint, run_dir / "best.pt")
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr": optimizer.param_groups[-1]["lr"],
                "seconds": time.perf_counter() - epoch_start,
                "images_per_sec": seen / epoch_train_seconds if epoch_train_seconds > 0 else 0.0,
            }
            _append_metrics(run_dir, row)
            runstore.write_status(run_dir, "running", f"epoch {epoch} of {config.epochs} done")
            _emit(on_event, {"type": "epoch_end", "epochs": config.epochs, "best": improved, **row})
            if config.early_stopping and state.stale_epochs >= config.early_stopping:
                message = (
                    f"Early stopping after epoch {epoch}: no better validation result for "
                    f"{config.early_stopping} epochs."
                )
                break
    except TrainingDivergedError as exc:
        runstore.write_status(run_dir, "failed", str(exc), epoch=state.epoch)
        _emit(on_event, {"type": "error", "message": str(exc)})
        raise
    except BaseException as exc:
        runstore.write_status(run_dir, "failed", f"{type(exc).__name__}: {exc}", epoch=state.epoch)
        _emit(on_event, {"type": "error", "message": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        if config.threads > 0 and device.type == "cpu":
            torch.set_num_threads(old_threads)

    summary = {
        "status": status,
        "message": message,
        "val_accuracy": max(state.best_val_acc, 0.0),
        "val_loss": state.best_val_loss if math.isfinite(state.best_val_loss) else None,
        "best_epoch": state.best_epoch,
        "epochs": state.epoch,
        "epochs_planned": config.epochs,
        "device": device.type,
        "device_description": info.description,
        "images_per_sec": images_seen / train_seconds if train_seconds > 0 else 0.0,
        "seconds": time.perf_counter() - started,
        "train_seconds": train_seconds,
        "model": config.model,
        "dataset": config.dataset,
        "classes": list(imageset.classes),
        "image_size": size,
        "parameters": count_parameters(model),
        "train_images": len(imageset.train),
        "val_images": len(imageset.val),
        "data_path": train_data.kind,
        "amp": amp,
    }
    metrics = runstore.Run.from_dir(run_dir).metrics()
    if len(metrics):
        summary["final_val_accuracy"] = float(metrics["val_acc"].iloc[-1])
    runstore.write_json_atomic(run_dir / "summary.json", summary)
    runstore.write_status(run_dir, status, message, epoch=state.epoch)
    _emit(on_event, {"type": "end", "summary": summary})
    return summary
