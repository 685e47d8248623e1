"""What the trainer reports while it runs: small typed events, delivered to an ``on_event`` callback.

The trainer never prints; the CLI, the background jobs and tests each decide what to do with these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StartEvent:
    """Data and model are ready; the first batch is next."""

    run_name: str
    epochs: int
    start_epoch: int  # finished epochs before this start (> 0 when resuming)
    start_batch: int  # batches already done in the unfinished epoch (resuming after a stop)
    steps_per_epoch: int
    device: str
    device_description: str
    train_images: int
    val_images: int
    data_path: str  # "memory" | "dataloader"
    image_size: int
    in_channels: int
    classes: list[str]
    parameters: int
    previous_seconds: float  # training time of the epochs before a resume


@dataclass(frozen=True)
class BatchEvent:
    epoch: int  # 1-based epoch in progress
    epochs: int
    batch: int  # 1-based batch within the epoch
    batches: int
    step: int  # optimiser steps so far in the whole run
    loss: float
    acc: float
    lr: float
    images_per_sec: float  # over this epoch so far


@dataclass(frozen=True)
class EpochEvent:
    """One finished epoch: the row written to ``metrics.csv``, and whether it is the best so far."""

    epoch: int
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float
    images_per_sec: float
    best: bool

    def row(self) -> dict:
        data = asdict(self)
        del data["epochs"], data["best"]
        return data


@dataclass(frozen=True)
class EndEvent:
    summary: dict  # what summary.json holds


@dataclass(frozen=True)
class ErrorEvent:
    message: str


TrainEvent = StartEvent | BatchEvent | EpochEvent | EndEvent | ErrorEvent
EventCallback = Callable[[TrainEvent], None]
