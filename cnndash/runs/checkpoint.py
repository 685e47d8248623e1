"""A checkpoint: a model's weights with what is needed to use it (classes, input size, normalisation) or to
resume training (optimiser, schedule, scaler and the trainer's :class:`TrainState`).

Stored as one flat dict of plain types, so ``torch.load(weights_only=True)`` reads it (no pickled code).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from cnndash.runs.layout import CHECKPOINTS

__all__ = ["CHECKPOINTS", "Checkpoint", "TrainState"]


@dataclass
class TrainState:
    """Where training is: enough, with the optimiser's state, to resume exactly."""

    epoch: int = 0  # finished epochs
    batch: int = 0  # batches done in the unfinished epoch (after a stop)
    step: int = 0  # optimiser steps so far
    best_val_acc: float = -1.0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the last improvement (early stopping)
    last_val_acc: float = -1.0  # validation accuracy of the last finished epoch (-1: none yet)
    train_seconds: float = 0.0  # training time so far, summed over every resumed part
    images_seen: int = 0  # training images processed so far (throughput of the whole run)


@dataclass
class Checkpoint:
    """A model's weights with what it needs to be used (classes, input, normalisation) or resumed."""

    model: dict[str, torch.Tensor]  # state_dict, on the CPU
    config: dict  # TrainConfig.to_dict()
    classes: list[str]
    in_channels: int
    image_size: int
    mean: list[float]
    std: list[float]
    state: TrainState = field(default_factory=TrainState)
    optimizer: dict | None = None
    scheduler: dict | None = None
    scaler: dict | None = None

    @property
    def model_name(self) -> str:
        return str(self.config["model"])

    def to_dict(self) -> dict:
        """The stored form: one flat dict of plain types (what ``torch.load(weights_only=True)`` reads)."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            **asdict(self.state),
            "config": self.config,
            "model_name": self.model_name,
            "classes": list(self.classes),
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """Raises ``KeyError``/``TypeError``/``ValueError`` for anything that is not a cnndash checkpoint."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise TypeError("not a dict with a model state")
        config = dict(data["config"])
        config.setdefault("model", data["model_name"])
        defaults = TrainState()
        state = TrainState(
            **{name: type(value)(data.get(name, value)) for name, value in asdict(defaults).items()}
        )
        return cls(
            model=data["model"],
            config=config,
            classes=[str(c) for c in data["classes"]],
            in_channels=int(data["in_channels"]),
            image_size=int(data["image_size"]),
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
            state=state,
            optimizer=data.get("optimizer"),
            scheduler=data.get("scheduler"),
            scaler=data.get("scaler"),
        )
