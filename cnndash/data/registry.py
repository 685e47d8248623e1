"""From a dataset name to labelled images: :func:`load_dataset`, the one entry point."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cnndash import paths
from cnndash.data.archive import extract_cached_zip
from cnndash.data.builtin import BUILTIN_DATASETS, load_builtin, parse_builtin
from cnndash.data.folders import load_image_folder
from cnndash.data.images import DatasetError, ImageSet
from cnndash.data.store import datasets_dir, list_datasets


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    data_dir: Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> ImageSet:
    """Load a dataset by built-in name, uploaded-dataset name, or image-folder directory / zip path.

    The train/val split is deterministic for the same arguments: datasets with a ``val/`` folder (and
    torchvision's datasets, via their test split) keep theirs; the others get a stratified split with
    ``val_fraction`` of every class in val, shuffled with ``seed``.
    """
    if not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}.")
    base = Path(data_dir) if data_dir is not None else paths.data_dir()
    text = os.fspath(name_or_path)
    builtin, options = parse_builtin(text)
    if builtin is not None:
        return load_builtin(text, builtin, options, base=base, val_fraction=val_fraction, seed=seed)

    stored = datasets_dir(base) / text
    if _is_plain_name(text) and stored.is_dir():
        return load_image_folder(stored, name=text, val_fraction=val_fraction, seed=seed)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_image_folder(path, name=text, val_fraction=val_fraction, seed=seed)
    if path.is_file() and path.suffix.lower() == ".zip":
        root = extract_cached_zip(path, base)
        return load_image_folder(root, name=text, val_fraction=val_fraction, seed=seed)
    if path.is_file():
        raise DatasetError(f"{text} is a file but not a .zip archive; give an image-folder zip or directory.")
    known = ", ".join(BUILTIN_DATASETS)
    uploaded = list_datasets(base)
    hint = f" Uploaded datasets: {', '.join(uploaded)}." if uploaded else ""
    raise DatasetError(
        f"Unknown dataset {text!r}: not a built-in ({known}), not an uploaded dataset under "
        f"{datasets_dir(base)}, and not an existing folder or .zip path.{hint}"
    )


def _is_plain_name(text: str) -> bool:
    """A bare name (no path separators), as stored datasets are named."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text))
