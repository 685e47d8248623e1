"""What a run leaves in ``summary.json`` when it ends: its outcome, figures, the data and model it trained, and
its health (:mod:`cnndash.training.health`), built from the :class:`~cnndash.training.setup.Trainer` that ran it.

Why a run ended early (stopped, early stopping, a diverged loss) is a :class:`~cnndash.text.Phrase` of one of
:data:`MESSAGE_TEMPLATES`: ``summary.json`` and ``status.json`` keep its English ``message`` (the CLI and runs
of older versions read it) and, beside it, ``message_template`` and ``message_params``
(:func:`message_fields`), so that a page says it in its reader's language later.
"""

from __future__ import annotations

import math

from cnndash.runs.layout import METRICS_FILE
from cnndash.text import N_
from cnndash.training.health import run_health_from_csv
from cnndash.training.setup import Trainer

STOPPED = N_("Stopped by the user at epoch {epoch}, batch {batch} of {steps}; resume to continue.")
EARLY_STOPPED = N_("Early stopping after epoch {epoch}: no better validation result for {patience} epochs.")
# The loss is not finite (TrainingDivergedError): where it showed, the learning rate and a lower one to try.
DIVERGED_AT_BATCH = N_(
    "The training loss became {loss} at epoch {epoch}, batch {batch}: the learning rate {lr} is too high for "
    "this model and data — lower it (try {lower}) or turn on gradient clipping."
)
DIVERGED_IN_EPOCH = N_(
    "The training loss became {loss} in epoch {epoch}: the learning rate {lr} is too high for this model and "
    "data — lower it (try {lower}) or turn on gradient clipping."
)
# A page rebuilds a stored message only from one of these (a template read from a file is never trusted).
MESSAGE_TEMPLATES = frozenset({STOPPED, EARLY_STOPPED, DIVERGED_AT_BATCH, DIVERGED_IN_EPOCH})


def message_fields(message: object) -> dict:
    """The fields that keep ``message``'s template and parameters beside its English text in ``summary.json``
    or ``status.json``: none for text that is not a :class:`~cnndash.text.Phrase` of :data:`MESSAGE_TEMPLATES`."""
    template, params = getattr(message, "template", None), getattr(message, "params", None)
    if template not in MESSAGE_TEMPLATES or not isinstance(params, dict):
        return {}
    return {"message_template": template, "message_params": dict(params)}


def run_summary(t: Trainer, status: str, message: str, *, seconds: float) -> dict:
    """The summary of the run ``t`` trained: ``status`` (``finished`` | ``stopped``), why it ended early
    (``message``, "" when it ran its epochs) and ``seconds``, the wall time of the whole run."""
    state, start = t.state, t.start
    summary = {
        "status": status,
        "message": str(message),
        **message_fields(message),
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
