"""Predictions of a trained run: on its validation split (cached per checkpoint) and on new images.

:func:`predict_run` runs a run's checkpoint (``best`` by default, ``last`` on request) over the run's
validation split with exactly the training's eval preprocessing (``Run.preprocess``) and returns
:class:`cnndash.evaluate.metrics.Predictions`. The result is cached in the run directory as
``predictions_<checkpoint>.npz`` with the checkpoint's fingerprint (SHA-256) and the run's data key
(:func:`cnndash.data.run_data_key`: the content it pinned), so the model runs once per checkpoint; a
changed checkpoint (resumed training, a new best epoch) invalidates the cache, and so does, for a run
from before pins, an edit of the dataset it names.
:func:`write_evaluation_files` is what ``python -m cnndash evaluate --run RUN_DIR`` calls.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from cnndash.data.pins import run_data_key
from cnndash.evaluate.metrics import (
    EvaluationError,
    Predictions,
    classification_report_frame,
    confusion_matrix_frame,
    softmax,
)
from cnndash.modes import eval_mode
from cnndash.runs import CHECKPOINTS, Run, load_run
from cnndash.runs.layout import cache_file, evaluation_files

if TYPE_CHECKING:
    from cnndash.data import ImageSet

ProgressCallback = Callable[[int, int], None]  # (images done, images in total)
CACHE_VERSION = 2  # 2: the data key joined the checkpoint's fingerprint
EVAL_BATCH_SIZE = 256  # images per forward pass: no gradients, so memory allows more than training


def predictions_cache_path(run_dir: str | os.PathLike, checkpoint: str = "best") -> Path:
    """Where :func:`predict_run` caches the predictions of ``checkpoint`` inside ``run_dir``."""
    _check_checkpoint(checkpoint)
    return cache_file(Path(run_dir), "predictions", checkpoint)


def predict_run(
    run: Run | str | os.PathLike,
    checkpoint: str = "best",
    *,
    device: str = "cpu",
    batch_size: int = EVAL_BATCH_SIZE,
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
        raise EvaluationError("batch_size must be at least 1, got {batch_size}.", batch_size=batch_size)
    run = _as_run(run)
    digest = f"{run.fingerprint(checkpoint)}|{run_data_key(run.config, run.dataset_info)}"
    cache = predictions_cache_path(run.path, checkpoint)
    if use_cache:
        cached = _read_cache(cache, digest, checkpoint)
        if cached is not None:
            return cached

    dataset = _run_dataset(run)
    classes = list(run.classes) or list(dataset.classes)
    model = run.load_model(checkpoint, device=device)
    val = dataset.val
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(val), batch_size):
            stop = min(start + batch_size, len(val))
            images = [val[i][0] for i in range(start, stop)]
            chunks.append(_logits(run, model, images, checkpoint, device, len(classes)))
            if on_progress is not None:
                on_progress(stop, len(val))
    logits = np.concatenate(chunks) if chunks else np.zeros((0, len(classes)), dtype=np.float32)
    predictions = Predictions(
        logits=logits.astype(np.float32),
        targets=np.asarray(val.targets, dtype=np.int64),
        classes=classes,
        checkpoint=checkpoint,
    )
    _write_cache(cache, predictions, digest)
    return predictions


def check_predictions_match(run: Run, dataset: ImageSet, predictions: Predictions) -> None:
    """Refuse ``predictions`` that do not cover ``dataset``'s validation split image for image.

    Row ``i`` of the predictions is validation image ``i``; when the split's size differs, the dataset
    changed since the predictions were made and no row can be matched to its image. Raises
    :class:`EvaluationError`.
    """
    if len(dataset.val) != len(predictions):
        raise EvaluationError(
            "The dataset of run {run_name} now has {n_dataset_val} validation images but the predictions "
            "cover {n_predictions}; the dataset changed since training.",
            run_name=repr(run.name),
            n_dataset_val=len(dataset.val),
            n_predictions=len(predictions),
        )


def _run_dataset(run: Run):
    """The run's dataset, refused when it is gone or its classes changed since training."""
    try:
        dataset = run.dataset()
    except ValueError as exc:  # DatasetError: deleted upload, missing torchvision files, …
        raise EvaluationError(
            "The dataset {dataset} of run {run_name} cannot be loaded: {exc}",
            dataset=repr(run.config.get("dataset")),
            run_name=repr(run.name),
            exc=exc,
        ) from exc
    classes = list(run.classes) or list(dataset.classes)
    if list(dataset.classes) != classes:
        raise EvaluationError(
            "Run {run_name} was trained on classes {run_classes} but its dataset {dataset_name} now has {dataset_classes}; "
            "the dataset changed since training. Restore the original dataset or train a new run.",
            run_name=repr(run.name),
            run_classes=_short(classes),
            dataset_name=repr(dataset.name),
            dataset_classes=_short(dataset.classes),
        )
    return dataset


def _logits(
    run: Run, model: torch.nn.Module, images: list, checkpoint: str, device: str, num_classes: int
) -> np.ndarray:
    """The model's outputs for ``images`` after the run's preprocessing, with clear errors for a mismatch."""
    batch = run.preprocess(images).to(device)
    try:
        logits = model(batch).float().cpu().numpy()
    except RuntimeError as exc:  # e.g. 3-channel images into a 1-channel model
        raise EvaluationError(
            "The {checkpoint} checkpoint of run {run_name} does not accept the run's preprocessed images of "
            "shape {batch_shape} ({first_line}). The run's files disagree with each other; retrain the run.",
            checkpoint=checkpoint,
            run_name=repr(run.name),
            batch_shape=tuple(batch.shape[1:]),
            first_line=_first_line(exc),
        ) from exc
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise EvaluationError(
            "The {checkpoint} checkpoint of run {run_name} outputs {logits_shape} classes but the dataset "
            "has {num_classes}; retrain the run on this dataset.",
            checkpoint=checkpoint,
            run_name=repr(run.name),
            logits_shape=logits.shape[-1],
            num_classes=num_classes,
        )
    return logits


def _as_run(run: Run | str | os.PathLike) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def _check_checkpoint(checkpoint: str) -> None:
    if checkpoint not in CHECKPOINTS:
        raise EvaluationError(
            "Unknown checkpoint {checkpoint}; choose 'best' or 'last'.", checkpoint=repr(checkpoint)
        )


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
    with eval_mode(model), torch.inference_mode():
        return softmax(_logits(run, model, list(images), checkpoint, device, len(run.classes)))


def write_evaluation_files(run_dir: str | os.PathLike, checkpoint: str = "best") -> list[Path]:
    """Write ``confusion_matrix.csv`` and ``classification_report.csv`` into ``run_dir``; return their paths.

    ``confusion_matrix.csv``: counts, index = true class names, columns = predicted class names.
    ``classification_report.csv``: :func:`classification_report_frame` (index column ``class``).
    Read them back with ``pandas.read_csv(path, index_col=0)``.
    """
    run_path = Path(run_dir)
    if not run_path.is_dir():
        raise EvaluationError(
            "Run directory {run_path} does not exist; pass a folder written by `train`.",
            run_path=repr(str(run_path)),
        )
    predictions = predict_run(run_path, checkpoint)
    cm_path, report_path = evaluation_files(run_path)
    confusion_matrix_frame(predictions).to_csv(cm_path)
    classification_report_frame(predictions.targets, predictions.preds, predictions.classes).to_csv(
        report_path
    )
    return [cm_path, report_path]
