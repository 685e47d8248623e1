"""Evaluation numbers: what a run's :class:`Predictions` say about it.

Everything here is a pure function of labels and probabilities — confusion matrix (counts or normalised by
true / by predicted class), scikit-learn's classification report as a table, top-k and per-class accuracy,
most-confused pairs, top losses, the overfitting hint — so it is tested against scikit-learn without a
model. Producing the predictions (running a checkpoint, caching) is :mod:`cnndash.evaluate.predict`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cnndash.errors import UserError
from cnndash.text import N_

Normalize = Literal["true", "pred"] | None

REPORT_COLUMNS = [N_("precision"), N_("recall"), N_("f1-score"), N_("support")]


class EvaluationError(UserError):
    """A run cannot be evaluated as asked (no checkpoint, a mismatched dataset, bad arguments)."""


# ----------------------------------------------------------------------------------------------------
# Predictions of a run
# ----------------------------------------------------------------------------------------------------


@dataclass
class Predictions:
    """Model outputs on a run's validation split; row ``i`` is validation image ``i`` of ``Run.dataset()``."""

    logits: np.ndarray  # (N, K) float32, raw model outputs
    targets: np.ndarray  # (N,) int64 true class indices
    classes: list[str]  # K class names, in the model's output order
    checkpoint: str = "best"  # "best" | "last"
    from_cache: bool = False  # True when read from predictions_<checkpoint>.npz

    @property
    def probs(self) -> np.ndarray:
        """Softmax probabilities, (N, K) float64."""
        return softmax(self.logits)

    @property
    def preds(self) -> np.ndarray:
        """Predicted class index per image (argmax of the logits)."""
        return self.logits.argmax(axis=1) if len(self.logits) else np.zeros(0, dtype=np.int64)

    @property
    def losses(self) -> np.ndarray:
        """Per-image cross-entropy, exactly ``F.cross_entropy(logits, targets, reduction="none")``."""
        log_probs = log_softmax(self.logits)
        return -log_probs[np.arange(len(self.targets)), self.targets]

    @property
    def accuracy(self) -> float:
        return float((self.preds == self.targets).mean()) if len(self.targets) else float("nan")

    def __len__(self) -> int:
        return len(self.targets)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (numerically stable)."""
    return np.exp(log_softmax(logits))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (numerically stable)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


# ----------------------------------------------------------------------------------------------------
# Pure metrics on labels and probabilities
# ----------------------------------------------------------------------------------------------------


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    num_classes: int,
    normalize: Normalize = None,
) -> np.ndarray:
    """``cm[i, j]`` = images of true class ``i`` predicted as ``j`` (as ``sklearn.metrics.confusion_matrix``).

    ``normalize="true"`` divides each row by its total (recall on the diagonal), ``"pred"`` each column
    (precision on the diagonal); empty rows/columns give zeros, as in scikit-learn.
    """
    y_true = _labels(y_true, num_classes, "y_true")
    y_pred = _labels(y_pred, num_classes, "y_pred")
    if len(y_true) != len(y_pred):
        raise EvaluationError(
            "y_true has {n_y_true} labels but y_pred has {n_y_pred}.",
            n_y_true=len(y_true),
            n_y_pred=len(y_pred),
        )
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    cm = counts.reshape(num_classes, num_classes).astype(np.int64)
    if normalize is None:
        return cm
    if normalize not in ("true", "pred"):
        raise EvaluationError(
            "normalize must be None, 'true' or 'pred', got {normalize}.", normalize=repr(normalize)
        )
    axis = 1 if normalize == "true" else 0
    totals = cm.sum(axis=axis, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(totals > 0, cm / np.where(totals > 0, totals, 1), 0.0)
    return out


def confusion_matrix_frame(predictions: Predictions, normalize: Normalize = None) -> pd.DataFrame:
    """Confusion matrix labelled with class names: index = true class, columns = predicted class."""
    cm = confusion_matrix(predictions.targets, predictions.preds, len(predictions.classes), normalize)
    frame = pd.DataFrame(cm, index=list(predictions.classes), columns=list(predictions.classes))
    frame.index.name = "true"
    frame.columns.name = "predicted"
    return frame


def classification_report_frame(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, classes: Sequence[str]
) -> pd.DataFrame:
    """scikit-learn's ``classification_report`` as a table.

    One row per class, then ``accuracy``, ``macro avg`` and ``weighted avg``; columns ``precision``,
    ``recall``, ``f1-score``, ``support``. As in scikit-learn's printed report, the ``accuracy`` row holds
    the accuracy in ``f1-score`` (precision and recall are empty) and the number of images in ``support``.
    Classes absent from both labels and predictions get zeros (``zero_division=0``).
    """
    classes = [str(c) for c in classes]
    y_true = _labels(y_true, len(classes), "y_true")
    y_pred = _labels(y_pred, len(classes), "y_pred")
    if len(y_true) == 0:
        raise EvaluationError("Cannot build a classification report from zero images.")
    # Imported here, not at the top: scikit-learn (with scipy) costs ~1.3 s to import, and every page that
    # shows predictions imports this module (Grad-CAM's first paint needs none of sklearn).
    from sklearn.metrics import classification_report

    report = classification_report(
        y_true,
        y_pred,
        labels=list(range(len(classes))),
        target_names=classes,
        output_dict=True,
        zero_division=0,
    )
    rows = {}
    for name in [*classes, "macro avg", "weighted avg"]:
        rows[name] = [report[name][col] for col in REPORT_COLUMNS]
    accuracy = report.get("accuracy", float((y_true == y_pred).mean()))
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=REPORT_COLUMNS)
    acc_row = pd.DataFrame(
        [[np.nan, np.nan, accuracy, len(y_true)]], index=["accuracy"], columns=REPORT_COLUMNS
    )
    frame = pd.concat([frame.iloc[: len(classes)], acc_row, frame.iloc[len(classes) :]])
    frame["support"] = frame["support"].astype(np.int64)
    frame.index.name = "class"
    return frame


def top_k_accuracy(y_true: Sequence[int] | np.ndarray, probs: np.ndarray, k: int = 5) -> float:
    """Fraction of images whose true class is among the ``k`` highest scores (``k`` capped at K)."""
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise EvaluationError("probs must be (N, K), got shape {probs_shape}.", probs_shape=probs.shape)
    y_true = _labels(y_true, probs.shape[1], "y_true")
    if len(y_true) != len(probs):
        raise EvaluationError(
            "y_true has {n_y_true} labels but probs has {n_probs} rows.",
            n_y_true=len(y_true),
            n_probs=len(probs),
        )
    if k < 1:
        raise EvaluationError("k must be at least 1, got {k}.", k=k)
    if len(y_true) == 0:
        return float("nan")
    k = min(k, probs.shape[1])
    # Rank of the true class = number of classes scored strictly higher, so a tie counts in the true
    # class's favour (sklearn breaks ties by class index instead; equal floats are rare in practice).
    true_scores = probs[np.arange(len(y_true)), y_true]
    higher = (probs > true_scores[:, None]).sum(axis=1)
    return float((higher < k).mean())


def per_class_accuracy(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, classes: Sequence[str]
) -> pd.DataFrame:
    """Per class: ``accuracy`` (= recall: correct / images of that class), ``correct``, ``support``.

    A class without validation images has accuracy NaN.
    """
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    correct = np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(support > 0, correct / np.where(support > 0, support, 1), np.nan)
    return pd.DataFrame(
        {"class": [str(c) for c in classes], "accuracy": accuracy, "correct": correct, "support": support}
    )


def most_confused(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    *,
    min_count: int = 1,
    top: int | None = None,
) -> pd.DataFrame:
    """Off-diagonal cells with at least ``min_count`` images, largest first (fastai's ``most_confused``).

    Columns: ``true``, ``predicted`` (class names), ``true_index``, ``pred_index``, ``count``,
    ``fraction_of_true`` (count / images of the true class). Ties are ordered by (true, predicted) index.
    """
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    rows = [
        (str(classes[i]), str(classes[j]), i, j, int(cm[i, j]), cm[i, j] / support[i])
        for i in range(len(classes))
        for j in range(len(classes))
        if i != j and cm[i, j] >= max(min_count, 1)
    ]
    rows.sort(key=lambda r: (-r[4], r[2], r[3]))
    if top is not None:
        rows = rows[:top]
    return pd.DataFrame(
        rows, columns=["true", "predicted", "true_index", "pred_index", "count", "fraction_of_true"]
    )


def top_confused_classes(cm: np.ndarray, n: int) -> list[int]:
    """The ``n`` classes most involved in mistakes (errors as true + as predicted), for large matrices.

    Returned in ascending class order so a sub-matrix keeps the original layout.
    """
    cm = np.asarray(cm)
    errors = cm.astype(np.float64).copy()
    np.fill_diagonal(errors, 0)
    involvement = errors.sum(axis=0) + errors.sum(axis=1)
    order = sorted(range(len(cm)), key=lambda i: (-involvement[i], i))
    return sorted(order[: max(n, 0)])


def cell_indices(predictions: Predictions, true_class: int, pred_class: int) -> np.ndarray:
    """Validation indices of the images of ``true_class`` predicted as ``pred_class``, most confident first."""
    k = len(predictions.classes)
    for value, name in ((true_class, "true_class"), (pred_class, "pred_class")):
        if not 0 <= value < k:
            raise EvaluationError(
                "{name} must be a class index in 0..{k}, got {value}.", name=name, k=k - 1, value=value
            )
    idx = np.flatnonzero((predictions.targets == true_class) & (predictions.preds == pred_class))
    confidence = predictions.probs[idx, pred_class] if len(idx) else np.zeros(0)
    return idx[np.argsort(-confidence, kind="stable")]


def misclassified_indices(predictions: Predictions) -> list[int]:
    """Validation indices of the images whose prediction is wrong, in index order."""
    return [int(i) for i in np.flatnonzero(predictions.preds != predictions.targets)]


def top_losses(predictions: Predictions, k: int = 16, *, mistakes_only: bool = False) -> pd.DataFrame:
    """The ``k`` images with the highest cross-entropy loss (fastai's ``plot_top_losses``).

    Columns: ``index`` (validation index), ``true``, ``predicted`` (names), ``true_index``, ``pred_index``,
    ``loss``, ``prob_true``, ``prob_pred``.
    """
    if k < 1:
        raise EvaluationError("k must be at least 1, got {k}.", k=k)
    losses = predictions.losses
    preds = predictions.preds
    candidates = np.arange(len(losses))
    if mistakes_only:
        candidates = candidates[preds != predictions.targets]
    order = candidates[np.argsort(-losses[candidates], kind="stable")][:k]
    probs = predictions.probs
    classes = predictions.classes
    return pd.DataFrame(
        {
            "index": order,
            "true": [classes[t] for t in predictions.targets[order]],
            "predicted": [classes[p] for p in preds[order]],
            "true_index": predictions.targets[order],
            "pred_index": preds[order],
            "loss": losses[order],
            "prob_true": probs[order, predictions.targets[order]],
            "prob_pred": probs[order, preds[order]],
        }
    )


def top_k_table(probs: np.ndarray, classes: Sequence[str], k: int = 3) -> list[pd.DataFrame]:
    """For each row of ``probs``: a table of its ``k`` most probable classes (``class``, ``probability``)."""
    probs = np.asarray(probs)
    k = max(1, min(k, probs.shape[1]))
    tables = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        tables.append(
            pd.DataFrame(
                {N_("class"): [str(classes[i]) for i in order], N_("probability"): row[order].astype(float)}
            )
        )
    return tables


# Validation loss must rise by more than this share of its best value to count as overfitting: a rise
# of a few per cent (0.47 -> 0.51) is noise on a small validation set.
OVERFIT_MIN_RISE = 0.15


def overfitting_hint(
    metrics: pd.DataFrame, *, patience: int = 2, augmented: bool = False, weight_decay: float = 0.0
) -> str | None:
    """A plain-language warning when validation loss rises clearly while training loss keeps falling.

    Looks at the last ``patience`` epochs after the epoch with the lowest validation loss: if validation
    loss went up by more than ``OVERFIT_MIN_RISE`` of its best value, ended above the training loss, and
    training loss went down, the model is memorising the training set. The advice leaves out what the run
    already does (``augmented``, ``weight_decay``). Returns None when there is no sign of it.
    """
    needed = {"epoch", "train_loss", "val_loss"}
    if metrics is None or not needed <= set(metrics.columns) or len(metrics) < patience + 1:
        return None
    frame = metrics.dropna(subset=["train_loss", "val_loss"]).sort_values("epoch")
    if len(frame) < patience + 1:
        return None
    best_pos = int(np.argmin(frame["val_loss"].to_numpy()))
    epochs_after = len(frame) - 1 - best_pos
    if epochs_after < patience:
        return None
    tail = frame.iloc[best_pos:]
    best_val, last_val = tail["val_loss"].iloc[0], tail["val_loss"].iloc[-1]
    val_up = last_val > best_val * (1 + OVERFIT_MIN_RISE) and last_val > tail["train_loss"].iloc[-1]
    train_down = tail["train_loss"].iloc[-1] < tail["train_loss"].iloc[0]
    if not (val_up and train_down):
        return None
    best_epoch = int(frame["epoch"].iloc[best_pos])
    remedies = ["use the best checkpoint"]
    remedies += [] if augmented else ["add augmentation"]
    remedies += [] if weight_decay > 0 else ["add weight decay"]
    remedies += ["stop training earlier"]
    return (
        f"Validation loss has risen for {epochs_after} epochs since epoch {best_epoch} while training loss "
        "kept falling: the model is starting to overfit (memorise the training images). "
        + ", ".join(remedies[:-1]).capitalize()
        + f" or {remedies[-1]}."
    )


def _labels(values: Sequence[int] | np.ndarray, num_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EvaluationError(
            "{name} must be a 1-D list of class indices, got shape {arr_shape}.",
            name=name,
            arr_shape=arr.shape,
        )
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise EvaluationError(
            "{name} must hold integer class indices, got {arr_dtype}.", name=name, arr_dtype=arr.dtype
        )
    if arr.min() < 0 or arr.max() >= num_classes:
        raise EvaluationError(
            "{name} has class index {min} outside 0..{num_classes}; the labels do not match the "
            "{num_classes2} classes.",
            name=name,
            min=int(arr.min() if arr.min() < 0 else arr.max()),
            num_classes=num_classes - 1,
            num_classes2=num_classes,
        )
    return arr.astype(np.int64)


def summary_numbers(predictions: Predictions, k: int = 5) -> dict[str, float]:
    """Headline numbers for a page or a report: accuracy, top-k accuracy, mean loss, image count.

    ``k`` is capped at K - 1 classes (top-K accuracy is always 100%, so it would say nothing).
    """
    n = len(predictions)
    k = max(1, min(k, len(predictions.classes) - 1))
    return {
        "images": n,
        "accuracy": predictions.accuracy,
        "top_k": k,
        "top_k_accuracy": top_k_accuracy(predictions.targets, predictions.logits, k) if n else math.nan,
        "mean_loss": float(predictions.losses.mean()) if n else math.nan,
    }
