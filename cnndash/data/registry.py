"""From a dataset name to labelled images: :func:`load_dataset`, the one entry point."""

from __future__ import annotations

import os
from pathlib import Path

from cnndash.data import catalog, manifests, startup
from cnndash.data.builtin import BUILTIN_DATASETS, load_builtin, parse_builtin
from cnndash.data.contents import content_root, zip_content
from cnndash.data.folders import check_val_fraction, load_image_folder
from cnndash.data.images import DatasetError, ImageSet
from cnndash.data.store import datasets_dir, version_base_root


def load_dataset(
    name_or_path: str | os.PathLike,
    *,
    data_dir: Path | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> ImageSet:
    """Load a dataset by built-in name, stored-dataset or version name, or image-folder directory / zip path.

    The train/val split is deterministic for the same arguments: datasets with a ``val/`` folder (and
    torchvision's datasets, via their test split) keep theirs; the others get a stratified split with
    ``val_fraction`` of every class in val, shuffled with ``seed``. A version loads from its base's files
    and its manifest (:mod:`cnndash.data.manifests`): nothing is replayed, no folder is built.
    """
    check_val_fraction(val_fraction)
    base = catalog.data_root(data_dir)
    text = os.fspath(name_or_path)
    builtin, options = parse_builtin(text)
    if builtin is not None:
        return load_builtin(text, builtin, options, base=base, val_fraction=val_fraction, seed=seed)

    if catalog.is_plain_name(text):
        startup.ready(base)
        conn = catalog.db(base)
        row = catalog.dataset_row(conn, text)
        if row is not None and row["content"] is not None:
            content = catalog.get_content(conn, row["content"])
            return load_image_folder(
                content_root(content, base), name=text, val_fraction=val_fraction, seed=seed
            )
        if row is not None:
            info = conn.execute("SELECT * FROM versions WHERE id = ?", (row["version"],)).fetchone()
            rows = manifests.version_rows(conn, row["version"])
            root = version_base_root(info, base)
            return manifests.load_rows(text, root, rows, val_fraction=val_fraction, seed=seed)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_image_folder(path, name=text, val_fraction=val_fraction, seed=seed)
    if path.is_file() and path.suffix.lower() == ".zip":
        root = content_root(zip_content(path, base), base)
        return load_image_folder(root, name=text, val_fraction=val_fraction, seed=seed)
    if path.is_file():
        raise DatasetError(
            "{text} is a file but not a .zip archive; give an image-folder zip or directory.", text=text
        )
    known = ", ".join(BUILTIN_DATASETS)
    startup.ready(base)
    stored = catalog.dataset_names(catalog.db(base))
    hint = f" Stored datasets: {', '.join(stored[:20])}{', …' if len(stored) > 20 else ''}." if stored else ""
    raise DatasetError(
        "Unknown dataset {text}: not a built-in ({known}), not a stored dataset in {parent}, and not an "
        "existing folder or .zip path.{hint}",
        text=repr(text),
        known=known,
        parent=datasets_dir(base).parent,
        hint=hint,
    )
