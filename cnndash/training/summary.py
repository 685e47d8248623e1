"""What a run leaves in ``summary.json`` when it ends: its outcome, figures, the data and model it trained, and
its health (:mod:`cnndash.training.health`), built from the :class:`~cnndash.training.setup.Trainer` that ran it.
"""

from __future__ import annotations

import math

from cnndash.runs.layout import METRICS_FILE
from cnndash.training.health import run_health_from_csv
from cnndash.training.setup import Trainer


def run_summary(t: Trainer, status: str, message: str, *, seconds: float) -> dict:
    """The summary of the run ``t`` trained: ``status`` (``finished`` | ``stopped``), why it ended early
    (``message``, "" when it ran its epochs) and ``seconds``, the wall time of the whole run."""
    state, start = t.state, t.start
    summary = {
        "status": status,
        "message": message,
        "val_accuracy": max(state.best_val_acc, 0.0),
        "val_loss": state.best_val_loss if math.isfinite(state.best_val_loss) else None,
        "best_epoch": state.best_epoch,
        "epochs": state.epoch,
        "epochs_planned": t.config.epochs,
        "device": start.device,
        "device_description": start.device_description,
        # over the whole run, resumed parts included
        "images_per_sec": state.images_seen / state.train_seconds if state.train_seconds > 0 else 0.0,
        "seconds": seconds,  # wall time of the whole run, resumed parts included
        "train_seconds": state.train_seconds,
        "model": t.config.model,
        "dataset": t.config.dataset,
        "classes": start.classes,
        "image_size": start.image_size,
        "parameters": start.parameters,
        "train_images": start.train_images,
        "val_images": start.val_images,
        "data_path": start.data_path,
        "amp": t.amp,
        "world_size": t.world_size,
    }
    if t.config.scale_lr and t.world_size > 1:
        summary["lr_scaled"] = t.config.lr * t.world_size  # the linear scaling rule, asked for in the config
    if state.last_val_acc >= 0:
        summary["final_val_accuracy"] = state.last_val_acc
    # A finite loss can still have blown up (a model stuck at chance) or spiked: say so, with the fix.
    summary["health"] = run_health_from_csv(
        t.writer.path / METRICS_FILE,
        num_classes=len(start.classes),
        lr=t.config.lr,
        optimizer=t.config.optimizer,
    ).to_dict()
    return summary
