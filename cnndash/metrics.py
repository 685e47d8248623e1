"""Evaluation of a trained run: predictions on its validation split, confusion matrix, report, mistakes.

Data flows in two steps. :func:`predict_run` runs a run's checkpoint (``best`` by default, ``last`` on
request) over the run's validation split with exactly the training's eval preprocessing and returns a
:class:`Predictions` (logits, targets, class names). The result is cached in the run directory as
``predictions_<checkpoint>.npz`` together with the checkpoint's SHA-256, so the model runs once per
checkpoint; a changed checkpoint (resumed training, a new best epoch) invalidates the cache.

Everything else is a pure function of labels and probabilities — confusion matrix (counts or normalised
by true / by predicted class), scikit-learn's classification report as a table, top-k and per-class
accuracy, most-confused pairs, top losses — so it can be tested against scikit-learn without a model.
:func:`write_evaluation_files` is what ``python -m cnndash evaluate --run RUN_DIR`` calls.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image

from cnndash.runs import Run, load_run

Normalize = Literal["true", "pred"] | None
ProgressCallback = Callable[[int, int], None]  # (images done, images in total)

CHECKPOINTS = ("best", "last")
CACHE_VERSION = 1
REPORT_COLUMNS = ["precision", "recall", "f1-score", "support"]


class EvaluationError(ValueError):
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


def predictions_cache_path(run_dir: str | os.PathLike, checkpoint: str = "best") -> Path:
    """Where :func:`predict_run` caches the predictions of ``checkpoint`` inside ``run_dir``."""
    _check_checkpoint(checkpoint)
    return Path(run_dir) / f"predictions_{checkpoint}.npz"


def predict_run(
    run: Run | str | os.PathLike,
    checkpoint: str = "best",
    *,
    device: str = "cpu",
    batch_size: int = 256,
    on_progress: ProgressCallback | None = None,
    use_cache: bool = True,
) -> Predictions:
    """Predictions of ``run``'s checkpoint on its validation split, computed once and cached on disk.

    ``run`` is a :class:`cnndash.runs.Run`, a run directory or a run name. The cache file
    ``predictions_<checkpoint>.npz`` records the checkpoint's SHA-256 and is reused only while the
    checkpoint is byte-for-byte the same. ``on_progress(done, total)`` is called after every batch.
    Raises :class:`EvaluationError` (a ``ValueError``) when the checkpoint is missing or does not fit the
    run's dataset, and the dataset's own ``DatasetError`` when the dataset can no longer be loaded.
    """
    _check_checkpoint(checkpoint)
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be at least 1, got {batch_size}.")
    run = _as_run(run)
    digest = run.fingerprint(checkpoint)
    cache = predictions_cache_path(run.path, checkpoint)
    if use_cache:
        cached = _read_cache(cache, digest, checkpoint)
        if cached is not None:
            return cached

    try:
        dataset = run.dataset()
    except ValueError as exc:  # DatasetError: deleted upload, missing torchvision files, …
        raise EvaluationError(
            f"The dataset {run.config.get('dataset')!r} of run {run.name!r} cannot be loaded: {exc}"
        ) from exc
    classes = list(run.classes) or list(dataset.classes)
    if list(dataset.classes) != classes:
        raise EvaluationError(
            f"Run {run.name!r} was trained on classes {_short(classes)} but its dataset "
            f"{dataset.name!r} now has {_short(dataset.classes)}; the dataset changed since training. "
            "Restore the original dataset or train a new run."
        )
    model = run.load_model(checkpoint, device=device)

    val = dataset.val
    total = len(val)
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            images = [val[i][0] for i in range(start, stop)]
            batch = run.preprocess(images).to(device)
            try:
                logits = model(batch).float().cpu().numpy()
            except RuntimeError as exc:  # e.g. 3-channel images into a 1-channel model
                raise EvaluationError(
                    f"The {checkpoint} checkpoint of run {run.name!r} does not accept the run's "
                    f"preprocessed images of shape {tuple(batch.shape[1:])} ({_first_line(exc)}). "
                    "The run's files disagree with each other; retrain the run."
                ) from exc
            if logits.ndim != 2 or logits.shape[1] != len(classes):
                raise EvaluationError(
                    f"The {checkpoint} checkpoint of run {run.name!r} outputs {logits.shape[-1]} classes "
                    f"but the dataset has {len(classes)}; retrain the run on this dataset."
                )
            chunks.append(logits)
            if on_progress is not None:
                on_progress(stop, total)
    logits = np.concatenate(chunks) if chunks else np.zeros((0, len(classes)), dtype=np.float32)
    predictions = Predictions(
        logits=logits.astype(np.float32),
        targets=np.asarray(val.targets, dtype=np.int64),
        classes=classes,
        checkpoint=checkpoint,
    )
    _write_cache(cache, predictions, digest)
    return predictions


def _as_run(run: Run | str | os.PathLike) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _check_checkpoint(checkpoint: str) -> None:
    if checkpoint not in CHECKPOINTS:
        raise EvaluationError(f"Unknown checkpoint {checkpoint!r}; choose 'best' or 'last'.")


def _read_cache(path: Path, digest: str, checkpoint: str) -> Predictions | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != CACHE_VERSION or str(data["checkpoint_sha256"]) != digest:
                return None
            return Predictions(
                logits=data["logits"],
                targets=data["targets"].astype(np.int64),
                classes=[str(c) for c in data["classes"]],
                checkpoint=checkpoint,
                from_cache=True,
            )
    except (OSError, KeyError, ValueError):  # unreadable / partial cache: recompute
        return None


def _write_cache(path: Path, predictions: Predictions, digest: str) -> None:
    # A unique temporary name per writer (two browser tabs may compute the same cache at once), then an
    # atomic rename: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                version=np.int64(CACHE_VERSION),
                checkpoint_sha256=np.str_(digest),
                logits=predictions.logits,
                targets=predictions.targets,
                classes=np.array(predictions.classes, dtype=np.str_),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _short(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    head = ", ".join(names[:limit])
    return f"[{head}{', …' if len(names) > limit else ''}] ({len(names)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
        raise EvaluationError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}.")
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    cm = counts.reshape(num_classes, num_classes).astype(np.int64)
    if normalize is None:
        return cm
    if normalize not in ("true", "pred"):
        raise EvaluationError(f"normalize must be None, 'true' or 'pred', got {normalize!r}.")
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
    from sklearn.metrics import classification_report

    classes = [str(c) for c in classes]
    y_true = _labels(y_true, len(classes), "y_true")
    y_pred = _labels(y_pred, len(classes), "y_pred")
    if len(y_true) == 0:
        raise EvaluationError("Cannot build a classification report from zero images.")
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
        raise EvaluationError(f"probs must be (N, K), got shape {probs.shape}.")
    y_true = _labels(y_true, probs.shape[1], "y_true")
    if len(y_true) != len(probs):
        raise EvaluationError(f"y_true has {len(y_true)} labels but probs has {len(probs)} rows.")
    if k < 1:
        raise EvaluationError(f"k must be at least 1, got {k}.")
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
            raise EvaluationError(f"{name} must be a class index in 0..{k - 1}, got {value}.")
    idx = np.flatnonzero((predictions.targets == true_class) & (predictions.preds == pred_class))
    confidence = predictions.probs[idx, pred_class] if len(idx) else np.zeros(0)
    return idx[np.argsort(-confidence, kind="stable")]


def top_losses(predictions: Predictions, k: int = 16, *, mistakes_only: bool = False) -> pd.DataFrame:
    """The ``k`` images with the highest cross-entropy loss (fastai's ``plot_top_losses``).

    Columns: ``index`` (validation index), ``true``, ``predicted`` (names), ``true_index``, ``pred_index``,
    ``loss``, ``prob_true``, ``prob_pred``.
    """
    if k < 1:
        raise EvaluationError(f"k must be at least 1, got {k}.")
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
            pd.DataFrame({"class": [str(classes[i]) for i in order], "probability": row[order].astype(float)})
        )
    return tables


def overfitting_hint(metrics: pd.DataFrame, *, patience: int = 2) -> str | None:
    """A plain-language warning when validation loss rises while training loss keeps falling.

    Looks at the last ``patience`` epochs after the epoch with the lowest validation loss: if validation
    loss went up over them while training loss went down, the model is memorising the training set.
    Returns None when there is no sign of it (or too few epochs to tell).
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
    val_up = tail["val_loss"].iloc[-1] > tail["val_loss"].iloc[0]
    train_down = tail["train_loss"].iloc[-1] < tail["train_loss"].iloc[0]
    if not (val_up and train_down):
        return None
    best_epoch = int(frame["epoch"].iloc[best_pos])
    return (
        f"Validation loss has risen for {epochs_after} epochs since epoch {best_epoch} while training loss "
        "kept falling: the model is starting to overfit (memorise the training images). Use the best "
        "checkpoint, add augmentation or weight decay, or stop training earlier."
    )


def _labels(values: Sequence[int] | np.ndarray, num_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EvaluationError(f"{name} must be a 1-D list of class indices, got shape {arr.shape}.")
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise EvaluationError(f"{name} must hold integer class indices, got {arr.dtype}.")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise EvaluationError(
            f"{name} has class index {int(arr.min() if arr.min() < 0 else arr.max())} outside "
            f"0..{num_classes - 1}; the labels do not match the {num_classes} classes."
        )
    return arr.astype(np.int64)


# ----------------------------------------------------------------------------------------------------
# Predicting uploaded images, and the CLI files
# ----------------------------------------------------------------------------------------------------


def predict_images(
    run: Run | str | os.PathLike,
    images: Sequence[Image.Image],
    *,
    checkpoint: str = "best",
    device: str = "cpu",
    model=None,
) -> np.ndarray:
    """Class probabilities (N, K) for ``images`` using exactly the run's eval preprocessing.

    Grayscale/RGB conversion and resizing are the run's (``Run.preprocess``). Pass ``model`` to reuse an
    already loaded one.
    """
    _check_checkpoint(checkpoint)
    run = _as_run(run)
    if not images:
        return np.zeros((0, len(run.classes)))
    if model is None:
        model = run.load_model(checkpoint, device=device)
    model.eval()
    batch = run.preprocess(list(images)).to(device)
    with torch.inference_mode():
        try:
            logits = model(batch).float().cpu().numpy()
        except RuntimeError as exc:
            raise EvaluationError(
                f"The {checkpoint} checkpoint of run {run.name!r} does not accept the run's preprocessed "
                f"images of shape {tuple(batch.shape[1:])} ({_first_line(exc)}); retrain the run."
            ) from exc
    return softmax(logits)


def write_evaluation_files(run_dir: str | os.PathLike, checkpoint: str = "best") -> list[Path]:
    """Write ``confusion_matrix.csv`` and ``classification_report.csv`` into ``run_dir``; return their paths.

    ``confusion_matrix.csv``: counts, index = true class names, columns = predicted class names.
    ``classification_report.csv``: :func:`classification_report_frame` (index column ``class``).
    Read them back with ``pandas.read_csv(path, index_col=0)``.
    """
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise EvaluationError(
            f"Run directory {str(run_path)!r} does not exist; pass a folder written by `train`."
        )
    predictions = predict_run(run_path, checkpoint)
    cm_path = run_path / "confusion_matrix.csv"
    report_path = run_path / "classification_report.csv"
    confusion_matrix_frame(predictions).to_csv(cm_path)
    classification_report_frame(predictions.targets, predictions.preds, predictions.classes).to_csv(
        report_path
    )
    return [cm_path, report_path]


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
