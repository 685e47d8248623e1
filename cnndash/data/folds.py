"""Every image of a dataset as a labelled file, and K-fold splits written as ordinary image folders.

Label-issue finding (:mod:`cnndash.evaluate.label_issues`) and dataset versions (:mod:`cnndash.data.versions`) both need
a dataset as *files with paths*: :func:`labelled_files` gives every image of any dataset as a path
relative to the dataset root (``class_name/file.png``, or ``train/class_name/file.png`` for a dataset
with its own train/val folders) and its given label.

Built-in datasets live in memory; they get a path scheme of their own, ``class_name/<index>.png``, where
``<index>`` is the image's position in the built-in's own order (scikit-learn's ``load_digits`` order for
``digits``, generation order for ``shapes``, the training files then the test files for torchvision's
datasets). :func:`builtin_files` writes them once as lossless PNGs under
``data_dir()/builtin-files/<name>`` so the same code handles every dataset.

:func:`write_folds` writes fold *k* of a stratified K-fold split as ``fold-k/train/<class>/…`` +
``fold-k/val/<class>/…`` of hard links to the dataset's files (copies where links are impossible), named
``<image number><suffix>`` so each held-out file maps back to its image. A fold is then a plain
image-folder dataset: the normal trainer trains on it by path and its runs can be opened like any other.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnndash import paths
from cnndash.data.builtin import (
    SHAPE_CLASSES,
    digits_arrays,  # the full, unsplit arrays: the built-in's own image order defines its paths
    generate_shapes,
    load_builtin,
    parse_builtin,
    shapes_options,
)
from cnndash.data.folders import find_dataset_root, scan_image_folder
from cnndash.data.images import DatasetError
from cnndash.data.registry import load_dataset
from cnndash.data.splits import stratified_split

MIN_FOLDS, MAX_FOLDS = 2, 20
BUILTIN_FILES_DIR = "builtin-files"  # under data_dir(): built-ins written once as PNG files


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


def builtin_arrays(text: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """``(classes, images (N, H, W, C) uint8, targets (N,))`` of a built-in in its own order; None when
    ``text`` is not a built-in name."""
    name, options = parse_builtin(text)
    if name is None:
        return None
    if name == "digits":
        if options:
            raise DatasetError(f"The 'digits' dataset takes no options; remove {', '.join(options)}.")
        classes, images, targets = digits_arrays()
        return list(classes), images, targets
    if name == "shapes":
        images, _, targets = generate_shapes(**shapes_options(options))
        return list(SHAPE_CLASSES), images, targets
    imageset = load_builtin(text, name, options, base=paths.data_dir(), val_fraction=0.2, seed=0)
    train, val = imageset.train.uint8_array(), imageset.val.uint8_array()
    assert train is not None and val is not None  # torchvision's datasets are held in memory
    targets = np.asarray(imageset.train.targets + imageset.val.targets, dtype=np.int64)
    return list(imageset.classes), np.concatenate([train, val]), targets


def builtin_path(classes: list[str], target: int, index: int) -> str:
    """The path of built-in image ``index``: ``class_name/<index>.png`` (``/`` in a class name -> ``_``)."""
    return f"{class_folder(classes[target])}/{index}.png"


def class_folder(name: str) -> str:
    """A class name as a folder name: path separators and a leading dot replaced by ``_``."""
    folder = re.sub(r"[/\\]", "_", name)
    return "_" + folder[1:] if folder.startswith(".") else folder


def builtin_val_paths(text: str, val_fraction: float, seed: int) -> list[str]:
    """The paths (built-in scheme) of the validation images of ``load_dataset(text, val_fraction, seed)``,
    in the split's order — how a run's validation predictions map back to images."""
    arrays = builtin_arrays(text)
    if arrays is None:
        raise DatasetError(f"{text!r} is not a built-in dataset.")
    classes, _, targets = arrays
    name, _ = parse_builtin(text)
    if name in ("digits", "shapes"):
        val = stratified_split(targets, val_fraction, seed)[1]
    else:  # torchvision: the official test files are the val split, after the training files
        n_val = len(load_builtin(text, str(name), {}, base=paths.data_dir(), val_fraction=0.2, seed=0).val)
        val = list(range(len(targets) - n_val, len(targets)))
    return [builtin_path(classes, int(targets[i]), int(i)) for i in val]


def builtin_files(text: str, *, data_dir: Path | None = None) -> Path:
    """The folder holding built-in ``text`` as ``class_name/<index>.png`` files, written on first use."""
    arrays = builtin_arrays(text)
    if arrays is None:
        raise DatasetError(f"{text!r} is not a built-in dataset.")
    base = (Path(data_dir) if data_dir is not None else paths.data_dir()) / BUILTIN_FILES_DIR
    folder = base / re.sub(r"[^A-Za-z0-9._=-]+", "_", text.strip().lower())
    if folder.is_dir():
        return folder
    classes, images, targets = arrays
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=base, prefix=".staging-"))
    try:
        for i, (pixels, target) in enumerate(zip(images, targets, strict=True)):
            path = staging / builtin_path(classes, int(target), i)
            path.parent.mkdir(exist_ok=True)
            mode = "L" if pixels.shape[-1] == 1 else "RGB"
            Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(path)
        try:
            staging.rename(folder)
        except OSError:  # written at the same time by another caller: theirs is identical
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def labelled_files(name_or_path: str | os.PathLike, *, data_dir: Path | None = None) -> LabelledFiles:
    """Every image of a dataset (built-in, stored, version, folder or zip) as a path and a label."""
    text = os.fspath(name_or_path)
    if builtin_arrays(text) is not None:
        root = builtin_files(text, data_dir=data_dir)
    else:
        root = load_dataset(text, data_dir=data_dir).root
        if root is None:
            raise DatasetError(f"Dataset {text!r} has no image files to list.")
    root = find_dataset_root(root)
    classes, parts = scan_image_folder(root)
    items = [item for part in ("all", "train", "val") for item in parts.get(part, [])]
    return LabelledFiles(
        name=text,
        root=root,
        classes=classes,
        paths=[path.relative_to(root).as_posix() for path, _ in items],
        labels=[label for _, label in items],
    )


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes a hard link to ``source`` (same bytes, no new storage), or a copy where the
    filesystem cannot link. Neither ever writes to ``source``."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def fold_assignment(labels: list[int], folds: int, seed: int) -> np.ndarray:
    """Fold number (0..folds-1) of every image: each class spread evenly over the folds, seeded."""
    if not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise DatasetError(f"folds must be from {MIN_FOLDS} to {MAX_FOLDS}, got {folds}.")
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


def write_folds(files: LabelledFiles, folds: int, dest: Path, *, seed: int = 0) -> list[Path]:
    """Write the K folds of ``files`` under ``dest`` (``fold-1`` …) and return their folders.

    Every class needs at least two images, so that every fold's training part has all the classes.
    """
    counts = np.bincount(np.asarray(files.labels, dtype=np.int64), minlength=len(files.classes))
    small = [c for c, n in zip(files.classes, counts, strict=True) if n < 2]
    if small:
        raise DatasetError(
            f"Class(es) {', '.join(small)} of {files.name!r} have fewer than 2 images; K-fold training "
            "needs at least 2 per class — add images or remove the class."
        )
    assignment = fold_assignment(files.labels, folds, seed)
    width = len(str(len(files)))
    out = []
    for k in range(folds):
        folder = Path(dest) / f"fold-{k + 1}"
        if folder.exists():
            shutil.rmtree(folder)
        for i, (rel, label) in enumerate(zip(files.paths, files.labels, strict=True)):
            part = "val" if assignment[i] == k else "train"
            target = folder / part / class_folder(files.classes[label]) / f"{i:0{width}d}{Path(rel).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(files.root / rel, target)
        out.append(folder)
    return out


def fold_image_number(path: Path) -> int:
    """The image number of a file written by :func:`write_folds` (its name without the suffix)."""
    return int(Path(path).stem)
