"""Whether a run trained well, from its per-epoch metrics: a "diverged" or "unstable" note with the likely cause
and the fix, for the summary, the Training page, the learning curves and the CLI.

A loss that becomes NaN stops the run (:class:`cnndash.training.loops.TrainingDivergedError`); a learning rate
far too high more often leaves a finite loss that blew up once and a model stuck at chance — the run "finishes"
at 10 % on ten classes. :func:`run_health` names that, and a validation loss that spiked and came back down
(which a linear chart flattens into a line at zero), from ``metrics.csv``'s rows alone.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cnndash.text import N_, Phrase

# Learning rates above these usually blow up (Adam family; SGD with momentum): the usual ranges' top.
HIGH_LR = {"adam": 1e-2, "adamw": 1e-2, "sgd": 0.5}
TYPICAL_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05}  # what a fresh run usually trains well with
# A loss this many times the chance loss (ln K, what guessing scores) is a blow-up, not slow learning.
BLOWUP_FACTOR = 2.0
# A validation loss this many times the training loss of the same epoch, that later halves, is a spike.
SPIKE_FACTOR = 3.0
HEALTH_STATUSES = ("ok", "unstable", "diverged")


# The notes' templates (a page rebuilds a note from summary.json only with one of these).
DIVERGED = N_(
    "Diverged: the training loss blew up to {peak} (epoch {epoch}) and the model ends at chance "
    "({chance}, guessing among {classes} classes). Likely cause: the learning rate {lr} is too high for "
    "{optimizer} (usual top {top}). Fix: train again with {lower} or less — or let the learning-rate "
    "finder pick one — or turn on gradient clipping."
)
UNSTABLE = N_(
    "Unstable: in epoch {epoch} the validation loss spiked to {value} while the training loss was "
    "{train}, then came back down (the loss chart uses a log axis so both show). Likely cause: the "
    "learning rate's peak ({lr}) moves the weights faster than the model can follow early on. Fix: a "
    "lower learning rate (the learning-rate finder checks one), a longer warm-up, or gradient clipping; "
    "judge the run by its best epoch, not the spike."
)
NOTE_TEMPLATES = frozenset({DIVERGED, UNSTABLE})


@dataclass(frozen=True)
class RunHealth:
    status: str  # one of HEALTH_STATUSES
    note: str = ""  # what happened, the likely cause and the fix ("" when ok)
    epoch: int | None = None  # the epoch the trouble shows in

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        said = {"status": self.status, "note": self.note, "epoch": self.epoch}
        if isinstance(self.note, Phrase):  # the template and numbers too: a page shows it in its language
            said |= {"template": self.note.template, "params": dict(self.note.params)}
        return said


def chance_accuracy(num_classes: int) -> float:
    return 1.0 / max(num_classes, 1)


def _at_chance(accuracy: float, num_classes: int) -> bool:
    """Within a few points of guessing (more slack for two classes, where 55 % is still a coin toss)."""
    chance = chance_accuracy(num_classes)
    return accuracy <= chance + max(0.05, chance / 4)


def _finite(rows: Sequence[Mapping], key: str) -> list[tuple[int, float]]:
    out = []
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and math.isfinite(value):
            out.append((int(row["epoch"]), float(value)))
    return out


def run_health(rows: Sequence[Mapping], *, num_classes: int, lr: float, optimizer: str = "adam") -> RunHealth:
    """The health of a run from its per-epoch rows (``epoch, train_loss, train_acc, val_loss, val_acc``)."""
    train_loss, val_loss = _finite(rows, "train_loss"), _finite(rows, "val_loss")
    if not train_loss or num_classes < 2:
        return RunHealth("ok")
    chance_loss = math.log(num_classes)
    last = rows[-1]
    peak_epoch, peak = max(train_loss, key=lambda item: item[1])
    stuck = _at_chance(float(last.get("train_acc") or 0.0), num_classes) and _at_chance(
        max(float(row.get("val_acc") or 0.0) for row in rows), num_classes
    )
    too_high = lr > HIGH_LR.get(optimizer, 1.0)
    if stuck and (peak > BLOWUP_FACTOR * chance_loss or too_high):
        return RunHealth("diverged", _diverged_note(peak, peak_epoch, lr, optimizer, num_classes), peak_epoch)
    spike = _spike(train_loss, val_loss)
    if spike is not None:
        epoch, value, train_value = spike
        return RunHealth("unstable", _unstable_note(epoch, value, train_value, lr), epoch)
    return RunHealth("ok")


def _spike(
    train_loss: list[tuple[int, float]], val_loss: list[tuple[int, float]]
) -> tuple[int, float, float] | None:
    """The first epoch whose validation loss is far above its training loss and later at least halves."""
    train = dict(train_loss)
    for i, (epoch, value) in enumerate(val_loss[:-1]):
        later = min(v for _, v in val_loss[i + 1 :])
        if value > SPIKE_FACTOR * train.get(epoch, math.inf) and later < value / 2:
            return epoch, value, train[epoch]
    return None


def _diverged_note(peak: float, epoch: int, lr: float, optimizer: str, num_classes: int) -> Phrase:
    return Phrase(
        DIVERGED,
        peak=f"{peak:.3g}",
        epoch=epoch,
        chance=f"{chance_accuracy(num_classes):.0%}",
        classes=num_classes,
        lr=f"{lr:g}",
        optimizer=optimizer,
        top=f"{HIGH_LR.get(optimizer, 1.0):g}",
        lower=f"{min(lr / 10, TYPICAL_LR.get(optimizer, lr / 10)):g}",
    )


def _unstable_note(epoch: int, value: float, train_value: float, lr: float) -> Phrase:
    return Phrase(
        UNSTABLE,
        epoch=epoch,
        value=f"{value:.3g}",
        train=f"{train_value:.3g}",
        lr=f"{lr:g}",
    )


def run_health_from_csv(path: Path, *, num_classes: int, lr: float, optimizer: str = "adam") -> RunHealth:
    """:func:`run_health` of a run's ``metrics.csv`` (ok when the file is missing or unreadable)."""
    try:
        with path.open(newline="") as handle:
            rows = [_numbers(row) for row in csv.DictReader(handle)]
    except (OSError, ValueError, csv.Error):
        return RunHealth("ok")
    return run_health(rows, num_classes=num_classes, lr=lr, optimizer=optimizer)


def _numbers(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            out[key] = math.nan
    return out
