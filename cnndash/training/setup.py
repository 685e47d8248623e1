"""Setting up a training run: everything :func:`cnndash.training.loops.train` needs, built once into a :class:`Trainer`.

:func:`setup` validates the config, loads and decodes the data (:mod:`cnndash.training.batches`), builds the model,
optimiser and schedule (:mod:`cnndash.training.optim`), picks the normalisation, and prepares the run folder through
:class:`cnndash.runs.RunWriter` — restoring ``last.pt`` when resuming.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnndash.augment import build_pipeline
from cnndash.device import describe_device, resolve_device
from cnndash.models import build_model, count_parameters, parameter_groups
from cnndash.preprocess import (
    IMAGENET_GRAY_MEAN,
    IMAGENET_GRAY_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize_batch,
)
from cnndash.runs import Checkpoint, RunError, RunWriter, TrainState, holds_run
from cnndash.runs.writer import NullRunWriter
from cnndash.training.batches import TrainingData, global_batch_sizes
from cnndash.training.config import ConfigError, TrainConfig, scaled_lr, spec_normalize
from cnndash.training.data_pin import load_training_data, pin_run_data
from cnndash.training.distributed import RANK_SEED_STRIDE, Distributed, restart_count
from cnndash.training.events import StartEvent
from cnndash.training.optim import make_optimizer, make_scheduler

# A resumed run reseeds torch's RNG (augmentation, dropout) from its resume point:
# seed + RESUME_SEED_STRIDE * (epoch + 1) + batch, a prime stride so resume points get distinct streams.
RESUME_SEED_STRIDE = 7_919


@dataclass
class Trainer:
    """Everything one run needs, built by :func:`setup`."""

    config: TrainConfig
    writer: RunWriter
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module
    data: TrainingData
    mean: list[float]  # what the model's inputs are normalised with (dataset.json, checkpoints)
    std: list[float]
    spec_normalizes: bool  # the augmentation pipeline ends in its own Normalize
    amp: bool
    channels_last: bool
    steps_per_epoch: int
    state: TrainState
    start: StartEvent
    _mean_t: torch.Tensor = field(repr=False)  # on the device once, not copied for every batch
    _std_t: torch.Tensor = field(repr=False)
    dist: Distributed | None = None  # this process's place in a torchrun group; None = single process

    @property
    def module(self) -> nn.Module:
        """The model itself (``model`` is its DDP wrapper in a distributed run): checkpoints, evaluation."""
        return (
            self.model.module if isinstance(self.model, nn.parallel.DistributedDataParallel) else self.model
        )

    @property
    def world_size(self) -> int:
        return 1 if self.dist is None else self.dist.world_size

    @property
    def shard(self) -> tuple[int, int] | None:
        """(rank, world size) for the data path: each rank takes its share of every global batch."""
        return None if self.dist is None else self.dist.shard

    def model_input(self, xb: torch.Tensor, *, augmented: bool) -> torch.Tensor:
        """A batch from the data path -> the float tensor the model takes, on the device."""
        xb = xb.to(self.device, non_blocking=True)
        if augmented and self.spec_normalizes:
            xb = xb.float()
        else:
            xb = normalize_batch(xb, self._mean_t, self._std_t)
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb

    def sample_batch(self, n: int) -> torch.Tensor:
        """``n`` augmented training images as the model sees them, float 0–1 on the CPU (for people: the
        normalisation is undone). Torch's random state is left as it was, so training is unaffected."""
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            xb, _ = next(iter(self.data.train.batches(n, shuffle=True, seed=self.config.seed)))
        if xb.dtype == torch.uint8:
            return xb.cpu().float() / 255.0
        xb = xb.cpu().float()
        if self.spec_normalizes:  # the pipeline's own Normalize ran: undo it
            return xb * self._std_t.cpu().view(1, -1, 1, 1) + self._mean_t.cpu().view(1, -1, 1, 1)
        return xb

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            model={k: v.detach().to("cpu").contiguous() for k, v in self.module.state_dict().items()},
            config=self.config.to_dict(),
            classes=self.start.classes,
            in_channels=self.start.in_channels,
            image_size=self.start.image_size,
            mean=self.mean,
            std=self.std,
            state=replace(self.state),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=self.scaler.state_dict(),
        )


def _resolve_config(
    config: TrainConfig, run_dir: Path, resume: bool, restarted: bool = False, owner: str | None = None
) -> TrainConfig:
    config.validate()
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(
            "{run_dir} is a file, not a folder; choose another output folder for the run.", run_dir=run_dir
        )
    folder = RunWriter(run_dir)
    if not resume:
        # A group torchrun restarted before the first checkpoint starts over in the folder its failed
        # attempt created (a folder without last.pt holds no training to lose).
        started_over = restarted and not folder.has_checkpoint("last")
        if holds_run(run_dir) and not started_over:
            raise RunError(
                "{run_dir} already holds a run; choose another output folder or resume it.", run_dir=run_dir
            )
        return TrainConfig.from_dict(config.to_dict())
    saved = folder.saved_config()
    if not folder.has_checkpoint("last") or saved is None:
        raise RunError(
            "Nothing to resume in {run_dir}: it has no last.pt; train it without resume.", run_dir=run_dir
        )
    folder.check_not_training(owner)  # before anything in it changes (its own job's lease is fine)
    resolved = TrainConfig.from_dict(saved)
    resolved.device = config.device  # the saved run may come from another machine
    resolved.validate()
    return resolved


def _normalisation(config: TrainConfig, channels: int, data: TrainingData) -> tuple[list, list]:
    norm_step = spec_normalize(config.augment)
    if norm_step is not None:
        return list(norm_step["mean"]), list(norm_step["std"])
    if config.pretrained:  # ImageNet weights expect ImageNet statistics
        return (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else (IMAGENET_GRAY_MEAN, IMAGENET_GRAY_STD)
    return data.mean, data.std


def _read_checkpoint(run_dir: Path) -> Checkpoint:
    try:
        return RunWriter(run_dir).load_checkpoint("last")
    except Exception as exc:  # truncated, foreign or another model's file: torch raises many types
        raise _cannot_resume(run_dir, exc) from exc


def _cannot_resume(run_dir: Path, exc: Exception) -> RunError:
    return RunError(
        "The last checkpoint of {run_dir} cannot be resumed: it is damaged or not this run's checkpoint "
        "({error_kind}). Start a new run instead.",
        run_dir=run_dir,
        error_kind=type(exc).__name__,
    )


def _restore(trainer: Trainer, run_dir: Path) -> None:
    """Load ``last.pt`` into a freshly set-up trainer (weights, optimiser, schedule, scaler, state); in a
    distributed run rank 0 reads it and hands it to the others, so every rank resumes from the same file."""
    writer, dist = trainer.writer, trainer.dist
    saved = _read_checkpoint(run_dir) if dist is None else dist.from_rank0(lambda: _read_checkpoint(run_dir))
    try:
        trainer.module.load_state_dict(saved.model)
        trainer.optimizer.load_state_dict(saved.optimizer)
        trainer.scheduler.load_state_dict(saved.scheduler)
        trainer.scaler.load_state_dict(saved.scaler)
    except Exception as exc:  # another model's weights, a foreign optimiser state: torch raises many types
        raise _cannot_resume(run_dir, exc) from exc
    trainer.state = saved.state
    writer.truncate_metrics(saved.state.epoch)
    rank = 0 if dist is None else dist.rank
    torch.manual_seed(
        trainer.config.seed + RESUME_SEED_STRIDE * (saved.state.epoch + 1) + saved.state.batch
        + RANK_SEED_STRIDE * rank
    )  # fmt: skip


def _optimisation(
    config: TrainConfig, model: nn.Module, steps: int, device: torch.device, lr: float
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    groups = parameter_groups(
        model,
        config.model,
        lr=lr,
        transfer=config.transfer,
        backbone_lr_factor=config.backbone_lr_factor,
    )
    optimizer = make_optimizer(
        config.optimizer,
        groups,
        lr=lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        device=device,
    )
    scheduler = make_scheduler(
        optimizer,
        schedule=config.schedule,
        epochs=config.epochs,
        steps_per_epoch=steps,
        warmup_epochs=config.warmup_epochs,
        step_size=config.step_size,
        step_gamma=config.step_gamma,
    )
    return optimizer, scheduler


def use_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """NHWC where it was measured faster (benchmarks/channels_last.py, docs/training.md): with cuDNN, and on
    the CPU with one torch thread or two (1.04-1.47x on an idle 2-core machine, 1.05-1.59x with one core
    busy; the trainer's LeNet 12.6k img/s against 10.4k in NCHW). An earlier rule kept two CPU threads in
    NCHW from a measurement on a machine at load 10-14, where both layouts thrash; not on MPS."""
    return config.channels_last and device.type in ("cuda", "cpu")


def setup(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    dist: Distributed | None = None,
    owner: str | None = None,
    dataset_ref: dict | None = None,
) -> Trainer:
    """Validate ``config``, pin and load the data (``dataset_ref``: see :func:`cnndash.training.loops.train`),
    build model, optimiser and schedule, prepare the run folder (resuming from its ``last.pt`` when asked).
    Raises ``ConfigError``/``DatasetError``/``RunError``.

    With ``dist`` (a torchrun worker) the model is wrapped in DDP on ``dist.device`` and only rank 0 touches
    the run folder; the other ranks get its config and checkpoint from rank 0. ``owner``: the lease the run
    will train under (a job's), which a resume need not wait for."""
    run_dir = Path(run_dir)
    config, writer = _run_folder(config, run_dir, resume, dist, owner)
    device = resolve_device(config.device) if dist is None else dist.device
    if config.augment:  # a bad spec fails now, not in the middle of the first epoch
        build_pipeline(config.augment)
    ref = pin_run_data(config, run_dir, resume, dataset_ref, dist)
    imageset, data = load_training_data(config, device, ref, dist)
    size, channels, classes = config.image_size, imageset.channels, list(imageset.classes)
    _seed_everything(config.seed)  # every rank: the same initial weights
    model = build_model(
        config.model, num_classes=len(classes), in_channels=channels, image_size=size,
        pretrained=config.pretrained and not resume,
    )  # fmt: skip
    if dist is not None and config.sync_batchnorm:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    mean, std = _normalisation(config, channels, data)
    amp = bool(config.amp and device.type == "cuda")
    channels_last = use_channels_last(config, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    world = 1 if dist is None else dist.world_size
    steps = len(global_batch_sizes(len(data.train), config.batch_size, world=world))
    lr = scaled_lr(config, world)
    optimizer, scheduler = _optimisation(config, model, steps, device, lr)
    start = StartEvent(
        run_name=run_dir.name, epochs=config.epochs, start_epoch=0, start_batch=0, steps_per_epoch=steps,
        device=device.type, device_description=describe_device(device).description,
        train_images=len(imageset.train), val_images=len(imageset.val), data_path=data.kind,
        image_size=size, in_channels=channels, classes=classes,
        parameters=count_parameters(model), previous_seconds=0.0,
    )  # fmt: skip
    if dist is not None:
        model = dist.wrap(model)
        if dist.rank > 0:  # after the identical init: each rank its own augmentation and dropout
            torch.manual_seed(config.seed + RANK_SEED_STRIDE * dist.rank)
    trainer = Trainer(
        config=config, writer=writer, device=device, model=model, optimizer=optimizer,
        scheduler=scheduler, scaler=torch.amp.GradScaler("cuda", enabled=amp),
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing), data=data, mean=mean, std=std,
        spec_normalizes=spec_normalize(config.augment) is not None, amp=amp, channels_last=channels_last,
        steps_per_epoch=steps, state=TrainState(), start=start,
        _mean_t=torch.tensor(mean, dtype=torch.float32, device=device),
        _std_t=torch.tensor(std, dtype=torch.float32, device=device), dist=dist,
    )  # fmt: skip
    _prepare_run_folder(trainer, run_dir, resume, ref)
    return trainer


def _run_folder(
    config: TrainConfig, run_dir: Path, resume: bool, dist: Distributed | None, owner: str | None = None
) -> tuple[TrainConfig, RunWriter]:
    """The resolved config and the run's writer; an unwritable folder fails now, before the data is decoded.
    Distributed: rank 0 resolves and creates, the others get its config and a writer that writes nothing."""

    def resolve() -> TrainConfig:
        resolved = _resolve_config(config, run_dir, resume, restarted=restart_count() > 0, owner=owner)
        RunWriter(run_dir).create()
        return resolved

    if dist is None:
        return resolve(), RunWriter(run_dir)
    resolved = dist.from_rank0(resolve)
    if resolved.batch_size < dist.world_size:
        raise ConfigError(
            "Batch size {resolved_batch_size} is smaller than the {dist_world_size} processes: the batch "
            "size is the global batch, split across processes; use at least {dist_world_size}.",
            resolved_batch_size=resolved.batch_size,
            dist_world_size=dist.world_size,
        )
    if resolved.sync_batchnorm and dist.device.type != "cuda":
        raise ConfigError(
            "sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm has no CPU version); turn it off for "
            "a CPU run (each process then normalises with its own share's statistics)."
        )
    return resolved, RunWriter(run_dir) if dist.is_main else NullRunWriter(run_dir)


def _prepare_run_folder(trainer: Trainer, run_dir: Path, resume: bool, ref: dict | None) -> None:
    writer, start, state = trainer.writer, trainer.start, trainer.state
    if resume:
        _restore(trainer, run_dir)
        state = trainer.state
        trainer.start = replace(
            start, start_epoch=state.epoch, start_batch=state.batch, previous_seconds=state.train_seconds
        )
    else:
        writer.write_config(trainer.config.to_dict())
    writer.write_dataset_info(
        {
            "dataset": trainer.config.dataset,
            "classes": start.classes,
            "in_channels": start.in_channels,
            "image_size": start.image_size,
            "mean": trainer.mean,
            "std": trainer.std,
            "train_images": start.train_images,
            "val_images": start.val_images,
            "data_path": start.data_path,
            **({"dataset_ref": ref} if ref is not None else {}),
        }
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
