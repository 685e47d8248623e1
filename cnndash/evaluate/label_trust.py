"""How far suspicious-label suggestions can be trusted, and how long a K-fold label check takes.

A suggestion is the class a model predicts for an image it never trained on. When that model is often
wrong, most of its "suspicious labels" are its own mistakes: relabelling them all would damage correct
photos. :func:`suggestion_trust` measures the model's out-of-sample accuracy on the very probabilities the
suggestions come from (the K-fold check's, or one run's validation predictions) and says whether accepting
suggestions in bulk is reasonable (:data:`BULK_ACCEPT_MIN_ACCURACY`).

:func:`label_check_seconds` estimates, before it starts, how long a K-fold check trains: K runs of the
template's epochs over (K-1)/K of the images, at the speed the run it copies measured (its
``summary.json``), or a typical speed when it has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnndash.text import N_, Phrase

# Bulk accept is offered only when the model agrees with at least this share of the given labels out of
# sample: below it, a large part of the disagreements are the model's own mistakes.
BULK_ACCEPT_MIN_ACCURACY = 0.9
# Training images per second when the run measured none (a small CNN at low resolution), by device kind.
TYPICAL_IMAGES_PER_SEC = {"cpu": 300.0, "cuda": 3000.0, "mps": 1000.0}
# Per fold: building the model and data, then predicting the held-out fold (seconds, a small CNN).
FOLD_OVERHEAD_SECONDS = 3.0


@dataclass(frozen=True)
class SuggestionTrust:
    """The model's agreement with the given labels on images it never trained on."""

    accuracy: float  # share of images whose out-of-sample prediction is the given label
    images: int  # images scored (every image for a K-fold check, the validation split for one run)

    @property
    def bulk_ok(self) -> bool:
        """True when accepting every suggestion above a threshold at once is reasonable."""
        return self.images > 0 and self.accuracy >= BULK_ACCEPT_MIN_ACCURACY

    @property
    def wrong_share(self) -> float:
        """The share of images whose prediction differs from the given label: the model's mistakes plus
        the real label errors, which the model cannot tell apart."""
        return 1.0 - self.accuracy

    def sentence(self) -> str:
        """How much to trust the suggestions, in words."""
        params = {"accuracy": self.accuracy, "n": self.images, "needed": BULK_ACCEPT_MIN_ACCURACY}
        if self.bulk_ok:
            return Phrase(
                N_(
                    "The model agrees with the given label on {accuracy:.0%} of {n:,} images it never trained on: "
                    "its suggestions are worth a look, and accepting the confident ones is reasonable."
                ),
                **params,
            )
        return Phrase(
            N_(
                "The model agrees with the given label on {accuracy:.0%} of {n:,} images it never trained on: many "
                "of its suggestions are likely its own mistakes, not wrong labels. Check each one; bulk accept "
                "needs at least {needed:.0%}."
            ),
            **params,
        )


def suggestion_trust(given: np.ndarray, pred_probs: np.ndarray) -> SuggestionTrust:
    """The out-of-sample accuracy of ``pred_probs`` (N, K) against the ``given`` labels (N,); rows without
    probabilities (NaN: an image no fold predicted) are left out."""
    probs = np.asarray(pred_probs, dtype=np.float64)
    labels = np.asarray(given, dtype=np.int64)
    if probs.ndim != 2 or len(probs) != len(labels):
        raise ValueError(f"{len(labels)} labels and probabilities of shape {probs.shape} disagree.")
    scored = np.isfinite(probs).all(axis=1)
    if not scored.any():
        return SuggestionTrust(accuracy=0.0, images=0)
    correct = probs[scored].argmax(axis=1) == labels[scored]
    return SuggestionTrust(accuracy=float(correct.mean()), images=int(scored.sum()))


def label_check_seconds(
    images: int, folds: int, epochs: int, summary: Mapping[str, Any] | None = None, device: str = "cpu"
) -> float:
    """About how long a K-fold label check of ``images`` images takes: ``folds`` trainings of ``epochs``
    epochs over (K-1)/K of the images each, plus a fixed cost per fold.

    The speed is the template run's own: seconds per trained image-epoch from its ``summary`` (``seconds``
    over ``epochs`` × ``train_images``, which counts validation and checkpoints too), else its
    ``images_per_sec``, else :data:`TYPICAL_IMAGES_PER_SEC` for ``device``.
    """
    if images < 1 or folds < 2 or epochs < 1:
        raise ValueError("A label check needs at least 1 image, 2 folds and 1 epoch.")
    summary = summary or {}
    per_image_epoch = None
    seconds, run_epochs, trained = (summary.get(k) for k in ("seconds", "epochs", "train_images"))
    if seconds and run_epochs and trained:
        per_image_epoch = float(seconds) / (float(run_epochs) * float(trained))
    elif summary.get("images_per_sec"):
        per_image_epoch = 1.0 / float(summary["images_per_sec"])
    else:
        per_image_epoch = 1.0 / TYPICAL_IMAGES_PER_SEC.get(device, TYPICAL_IMAGES_PER_SEC["cpu"])
    train_images = images * (folds - 1) / folds
    return folds * (epochs * train_images * per_image_epoch + FOLD_OVERHEAD_SECONDS)


def duration_text(seconds: float) -> str:
    """A duration as people say it before waiting for it: ``under a minute``, ``about 4 min``,
    ``about 1 h 20 min``."""
    if seconds < 50:
        return N_("under a minute")
    minutes = round(seconds / 60)
    if minutes < 60:
        return Phrase(N_("about {minutes} min"), minutes=max(minutes, 1))
    hours, rest = divmod(minutes, 60)
    if rest:
        return Phrase(N_("about {hours} h {minutes} min"), hours=hours, minutes=rest)
    return Phrase(N_("about {hours} h"), hours=hours)
