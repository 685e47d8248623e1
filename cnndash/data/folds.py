"""Every image of a dataset as a labelled file, and stratified K-fold splits of them.

Label-issue finding (:mod:`cnndash.evaluate.label_issues`) and dataset versions (:mod:`cnndash.data.versions`)
both need a dataset as *files with paths*: :func:`labelled_files` gives every image of any dataset as a
path relative to the dataset root (``class_name/file.png``, or ``train/class_name/file.png`` for a dataset
with its own train/val folders) and its label now. A version's images keep the paths they have in its
base (their *origin*), with the classes the version gives them.

Built-in datasets live in memory; they get a path scheme of their own, ``class_name/<index>.png``, where
``<index>`` is the image's position in the built-in's own order (scikit-learn's ``load_digits`` order for
``digits``, generation order for ``shapes``, the training files then the test files for torchvision's
datasets). :func:`builtin_files` writes them once as lossless PNGs (a content of the store, counted in the
quota) so the same code handles every dataset.

:func:`fold_assignment` gives every image its fold; a K-fold label check trains each fold as a *view* of
the content it pinned (:mod:`cnndash.data.pins`): no fold folder is ever written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnndash.data import catalog, manifests, startup
from cnndash.data.builtin import builtin_arrays, builtin_path, builtin_val_paths, class_folder, parse_builtin
from cnndash.data.contents import builtin_content, content_root
from cnndash.data.folders import find_dataset_root, scan_image_folder
from cnndash.data.images import DatasetError
from cnndash.data.registry import load_dataset
from cnndash.data.store import version_base_root

__all__ = ["builtin_arrays", "builtin_path", "builtin_val_paths", "class_folder"]  # they used to live here

MIN_FOLDS, MAX_FOLDS = 2, 20


@dataclass
class LabelledFiles:
    """Every image of a dataset: ``paths[i]`` (relative to ``root``, POSIX) has class ``labels[i]``."""

    name: str
    root: Path
    classes: list[str]
    paths: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.paths)


def builtin_files(text: str, *, data_dir: Path | None = None) -> Path:
    """The folder holding built-in ``text`` as ``class_name/<index>.png`` files, written on first use."""
    return content_root(builtin_content(text, data_dir), data_dir)


def labelled_files(name_or_path: str | os.PathLike, *, data_dir: Path | None = None) -> LabelledFiles:
    """Every image of a dataset (built-in, stored, version, folder or zip) as a path and a label."""
    text = os.fspath(name_or_path)
    if parse_builtin(text)[0] is not None:
        return files_of_folder(text, builtin_files(text, data_dir=data_dir))
    if catalog.is_plain_name(text):
        startup.ready(data_dir)
        conn = catalog.db(data_dir)
        row = catalog.dataset_row(conn, text)
        if row is not None and row["version"] is not None:
            info = conn.execute("SELECT * FROM versions WHERE id = ?", (row["version"],)).fetchone()
            return files_of_rows(
                text, version_base_root(info, data_dir), manifests.version_rows(conn, row["version"])
            )
    root = load_dataset(text, data_dir=data_dir).root
    if root is None:
        raise DatasetError("Dataset {text} has no image files to list.", text=repr(text))
    return files_of_folder(text, root)


def files_of_folder(name: str, root: Path) -> LabelledFiles:
    """The images of an image folder, in scan order: every ``all`` image, then ``train``, then ``val``."""
    root = find_dataset_root(root)
    classes, parts = scan_image_folder(root)
    items = [item for part in ("all", "train", "val") for item in parts.get(part, [])]
    return LabelledFiles(
        name=name,
        root=root,
        classes=classes,
        paths=[path.relative_to(root).as_posix() for path, _ in items],
        labels=[label for _, label in items],
    )


def files_of_rows(name: str, root: Path, rows: list[manifests.Row]) -> LabelledFiles:
    """The images of a version's (or snapshot's) rows: origins as paths, in the order of their layout."""
    classes, parts = manifests.layout(rows)
    items = [item for part in ("all", "train", "val") for item in parts.get(part, [])]
    return LabelledFiles(name, root, classes, [o for o, _ in items], [label for _, label in items])


def check_fold_count(folds: int) -> None:
    """Refuse a number of folds outside MIN_FOLDS..MAX_FOLDS."""
    if not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise DatasetError(
            "folds must be from {min_folds} to {max_folds}, got {folds}.",
            min_folds=MIN_FOLDS,
            max_folds=MAX_FOLDS,
            folds=folds,
        )


def fold_assignment(labels: list[int], folds: int, seed: int) -> np.ndarray:
    """Fold number (0..folds-1) of every image: each class spread evenly over the folds, seeded."""
    check_fold_count(folds)
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels, dtype=np.int64)
    fold = np.empty(len(labels_arr), dtype=np.int64)
    offset = 0
    for cls in np.unique(labels_arr):
        idx = np.flatnonzero(labels_arr == cls)
        rng.shuffle(idx)
        fold[idx] = (np.arange(len(idx)) + offset) % folds
        offset += len(idx)  # the next class starts where this one ended: fold sizes stay even
    return fold


def check_folds(files: LabelledFiles, folds: int) -> None:
    """Refuse a K-fold split that cannot work: more folds than images, or a class with fewer than two
    images (every fold's training part needs every class)."""
    check_fold_count(folds)
    if len(files) < folds:
        raise DatasetError(
            "{files_name} has {n_files} images, fewer than {folds} folds; use fewer folds.",
            files_name=repr(files.name),
            n_files=len(files),
            folds=folds,
        )
    counts = np.bincount(np.asarray(files.labels, dtype=np.int64), minlength=len(files.classes))
    small = [c for c, n in zip(files.classes, counts, strict=True) if n < 2]
    if small:
        raise DatasetError(
            "Class(es) {small} of {files_name} have fewer than 2 images; K-fold training needs at least 2 "
            "per class — add images or remove the class.",
            small=", ".join(small),
            files_name=repr(files.name),
        )


def fold_split(labels: list[int], k: int, folds: int, seed: int) -> tuple[list[int], list[int]]:
    """Indices (train, val) of fold ``k`` (1..folds): val is the images :func:`fold_assignment` gives
    fold ``k``, both in image order."""
    if not 1 <= k <= folds:
        raise DatasetError("Fold {k} does not exist: folds are numbered 1 to {folds}.", k=k, folds=folds)
    assignment = fold_assignment(labels, folds, seed)
    train = [int(i) for i in np.flatnonzero(assignment != k - 1)]
    return train, [int(i) for i in np.flatnonzero(assignment == k - 1)]
