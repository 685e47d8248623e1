"""TensorBoard event files for a run, written next to its other files.

``tensorboard --logdir runs`` then shows every run side by side: per-epoch train/val loss and accuracy,
the per-batch loss and learning rate, a grid of augmented training samples (what the model really sees),
the model graph, the configuration as text, and the hyperparameters with the final metrics (HPARAMS tab).
The trainer's events drive it (:meth:`TensorBoardLog.on_event`), so it never touches the training loop.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from torchvision.utils import make_grid

from cnndash.modes import eval_mode
from cnndash.training.events import BatchEvent, EndEvent, EpochEvent, TrainEvent

log = logging.getLogger("cnndash.training.tblog")

SAMPLE_IMAGES = 32  # augmented training images in the "samples" grid
# Hyperparameters shown as HPARAMS columns (TensorBoard takes numbers, strings and booleans only).
HPARAMS = ("model", "dataset", "lr", "batch_size", "optimizer", "schedule", "epochs", "image_size", "pipeline",
           "weight_decay", "label_smoothing", "seed", "pretrained")  # fmt: skip


class TensorBoardLog:
    """Writes one run's TensorBoard events; a resumed run purges what came after its checkpoint."""

    def __init__(self, run_dir: Path, config: dict, *, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=purge_step)
        self.config = config

    def start(self, model: torch.nn.Module, samples: torch.Tensor, step: int) -> None:
        """Config as text, the model graph, and a grid of ``samples`` (float 0–1, (N, C, H, W))."""
        config = self.config
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", step)
        grid = make_grid(samples[:SAMPLE_IMAGES].float().clamp(0, 1), nrow=8)
        self.writer.add_image("samples/augmented_training_batch", grid, step)
        try:  # in eval mode: tracing runs a forward pass, which must not move BatchNorm's statistics
            with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TensorBoard traces with torch.jit.trace
                self.writer.add_graph(model, samples[:2].to(next(model.parameters()).device))
        except Exception as exc:  # a graph TensorBoard's tracer cannot follow is not worth failing a run
            log.info("model graph not written: %s", exc)

    def on_event(self, event: TrainEvent) -> None:
        if isinstance(event, BatchEvent):
            self.writer.add_scalar("batch/loss", event.loss, event.step)
            self.writer.add_scalar("batch/lr", event.lr, event.step)
        elif isinstance(event, EpochEvent):
            for name in ("train_loss", "val_loss"):
                self.writer.add_scalar(f"loss/{name.split('_')[0]}", getattr(event, name), event.epoch)
            for name in ("train_acc", "val_acc"):
                self.writer.add_scalar(f"accuracy/{name.split('_')[0]}", getattr(event, name), event.epoch)
            self.writer.add_scalar("epoch/lr", event.lr, event.epoch)
            self.writer.add_scalar("epoch/images_per_sec", event.images_per_sec, event.epoch)
        elif isinstance(event, EndEvent):
            self.finish(event.summary)

    def finish(self, summary: dict) -> None:
        """Hyperparameters with the final metrics, then close the files."""
        config = self.config
        hparams = {key: _plain(config.get(key, summary.get(key))) for key in HPARAMS}
        hparams["world_size"] = int(summary.get("world_size", 1))
        metrics = {
            "hparam/val_accuracy": float(summary.get("val_accuracy") or 0.0),
            "hparam/best_epoch": float(summary.get("best_epoch") or 0),
        }
        self.writer.add_hparams(hparams, metrics, run_name=".")
        self.close()

    def close(self) -> None:
        self.writer.close()


def _plain(value: object) -> int | float | str | bool:
    if isinstance(value, bool | int | float | str):
        return value
    return "" if value is None else str(value)
