"""What a run trained on, fixed: a pin on the dataset store, and the run's data loaded from it.

When training starts, :func:`pin_dataset` records what the dataset's name means at that moment as a
:class:`DatasetRef` — the upload's content, a snapshot of the version's manifest (copied once per version
state), the zip's content and hash, or just the name for a built-in — and a pin row that keeps it: a
content or snapshot some pin holds is never removed, whatever later happens to the name (edited,
replaced, deleted). The trainer writes the ref into the run's ``dataset.json`` (``dataset_ref``);
everything that later loads a run's data calls :func:`load_run_dataset`, the one definition of a run's
split (its ref, or for runs written before refs existed its dataset name; its ``val_fraction`` and
``seed``). Deleting the run releases its pin (:func:`release`).

A folder given by path is read as it is at each use (cnndash does not own it); its ref records the
resolved path. A K-fold label check pins once and trains each fold on a *view* of that content
(``fold``: which images are held out), so no fold folder is written.

:func:`dataset_revision` changes whenever what a name means changes: the key of every cache of a
dataset by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cnndash.data import catalog, manifests, startup
from cnndash.data.builtin import builtin_key, builtin_val_paths, parse_builtin
from cnndash.data.catalog import transaction
from cnndash.data.contents import content_root, empty_trash, zip_content, zip_sha256
from cnndash.data.folders import check_val_fraction, image_properties, load_image_folder
from cnndash.data.folds import LabelledFiles, builtin_files, files_of_folder, files_of_rows, fold_split
from cnndash.data.images import DatasetError, ImageList, ImageSet
from cnndash.data.registry import load_dataset
from cnndash.data.store import version_base_root

REF_KINDS = ("builtin", "stored", "version", "zip", "folder")
DEFAULT_VAL_FRACTION, DEFAULT_SEED = 0.2, 0  # TrainConfig's defaults: a run's config without them


@dataclass(frozen=True)
class DatasetRef:
    """Exactly what a run trained on (``dataset.json``'s ``dataset_ref``)."""

    kind: str  # builtin | stored | version | zip | folder
    name: str  # the dataset as the run's config names it
    content: str | None = None  # stored, zip: the content; version: its base's content
    snapshot: int | None = None  # version: the manifest as it was
    revision: int | None = None  # version: its revision then
    steps: int | None = None  # version: its number of steps then
    sha256: str | None = None  # zip: the archive's hash
    path: str | None = None  # folder, version on a folder: the resolved path
    fold: tuple[int, int, int] | None = None  # (k, folds, seed): a K-fold label check's view

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> DatasetRef:
        try:
            ref = cls(**{k: (tuple(v) if k == "fold" else v) for k, v in dict(data).items()})
        except (TypeError, ValueError):
            ref = None
        if ref is None or ref.kind not in REF_KINDS or not isinstance(ref.name, str):
            raise DatasetError(
                "The dataset record {data} of this run is damaged; train the run again.", data=repr(data)
            )
        return ref

    def key(self) -> str:
        """A stable text for cache keys."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def with_fold(self, k: int, folds: int, seed: int) -> DatasetRef:
        return replace(self, fold=(int(k), int(folds), int(seed)))


def run_holder(run_dir: str | os.PathLike) -> str:
    """The pin holder of a run folder."""
    return f"run:{Path(run_dir).resolve()}"


def owner_holder(label: str, data_dir: Path | None = None) -> str:
    """A pin holder that lives as long as this process (a label check in progress)."""
    return f"owner:{catalog.owner_token(data_dir)}:{label}"


def _pin(conn, holder: str, *, content: str | None = None, snapshot: int | None = None) -> None:
    exists = conn.execute(
        "SELECT 1 FROM pins WHERE holder = ? AND content IS ? AND snapshot IS ?", (holder, content, snapshot)
    ).fetchone()
    if exists is None:
        conn.execute(
            "INSERT INTO pins (holder, content, snapshot, created) VALUES (?, ?, ?, strftime('%s','now'))",
            (holder, content, snapshot),
        )


def pin_dataset(name: str, holder: str, *, data_dir: Path | None = None) -> DatasetRef:
    """Pin what ``name`` means now for ``holder`` and return it (see the module docstring)."""
    text = os.fspath(name)
    if parse_builtin(text)[0] is not None:
        return DatasetRef("builtin", text)
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    if catalog.is_plain_name(text):
        with transaction(conn):
            row = catalog.dataset_row(conn, text)
            if row is not None and row["content"] is not None:
                _pin(conn, holder, content=row["content"])
                return DatasetRef("stored", text, content=row["content"])
            if row is not None:
                info = conn.execute("SELECT * FROM versions WHERE id = ?", (row["version"],)).fetchone()
                snap = manifests.snapshot(conn, info["id"], text)
                _pin(conn, holder, snapshot=snap)
                steps = conn.execute("SELECT steps FROM snapshots WHERE id = ?", (snap,)).fetchone()[0]
                return DatasetRef(
                    "version", text, content=info["base_content"], snapshot=snap, revision=info["revision"],
                    steps=steps, path=info["base_path"],
                )  # fmt: skip
    path = Path(text).expanduser()
    if path.is_dir():
        return DatasetRef("folder", text, path=str(path.resolve()))
    if path.is_file() and path.suffix.lower() == ".zip":
        digest = zip_sha256(path)
        content = zip_content(path, data_dir, digest=digest)
        return pin_ref(DatasetRef("zip", text, content=content.id, sha256=digest), holder, data_dir=data_dir)
    load_dataset(text, data_dir=data_dir)  # raises the "Unknown dataset" error
    raise DatasetError("Dataset {text} cannot be pinned.", text=repr(text))


def pin_ref(ref: DatasetRef, holder: str, *, data_dir: Path | None = None) -> DatasetRef:
    """Pin for ``holder`` what ``ref`` already names (a fold run of a label check, a resumed run)."""
    if ref.content is None and ref.snapshot is None:
        return ref
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    with transaction(conn):
        if ref.snapshot is not None:
            if conn.execute("SELECT 1 FROM snapshots WHERE id = ?", (ref.snapshot,)).fetchone() is None:
                raise _gone(ref)
            _pin(conn, holder, snapshot=ref.snapshot)
        elif catalog.get_content(conn, ref.content) is None:
            raise _gone(ref)
        else:
            _pin(conn, holder, content=ref.content)
    return ref


def _gone(ref: DatasetRef) -> DatasetError:
    return DatasetError(
        "The files of dataset {ref_name} as this run used them are no longer in the data folder "
        "{data_root} (the run folder was moved or the data folder changed by hand); train a new run.",
        ref_name=repr(ref.name),
        data_root=catalog.data_root(),
    )


def release(holder: str, *, data_dir: Path | None = None) -> None:
    """Drop ``holder``'s pins; what only they kept is removed."""
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    with transaction(conn):
        conn.execute("DELETE FROM pins WHERE holder = ?", (holder,))
        catalog.collect(conn)
    empty_trash(data_dir)


# --------------------------------------------------------------------------------------------------
# Loading what a ref names


def _ref_root_and_rows(ref: DatasetRef, data_dir: Path | None) -> tuple[Path, list[manifests.Row] | None]:
    """The folder of the ref's files and, for a version, its frozen rows."""
    conn = catalog.db(data_dir)
    if ref.kind == "version":
        info = conn.execute("SELECT * FROM snapshots WHERE id = ?", (ref.snapshot,)).fetchone()
        if info is None:
            raise _gone(ref)
        return version_base_root(info, data_dir), manifests.snapshot_rows(conn, ref.snapshot)
    if ref.kind in ("stored", "zip"):
        content = catalog.get_content(conn, str(ref.content))
        if content is None:
            raise _gone(ref)
        return content_root(content, data_dir), None
    if ref.kind == "folder":
        return Path(str(ref.path)), None
    raise DatasetError("A {ref_kind} dataset has no folder of its own.", ref_kind=ref.kind)


def ref_files(ref: DatasetRef, *, data_dir: Path | None = None) -> LabelledFiles:
    """Every image of what ``ref`` names (fold aside), as :func:`cnndash.data.folds.labelled_files` lists them."""
    if ref.kind == "builtin":
        return files_of_folder(ref.name, builtin_files(ref.name, data_dir=data_dir))
    startup.ready(data_dir)
    root, rows = _ref_root_and_rows(ref, data_dir)
    return files_of_rows(ref.name, root, rows) if rows is not None else files_of_folder(ref.name, root)


def load_ref(ref: DatasetRef, *, val_fraction: float, seed: int, data_dir: Path | None = None) -> ImageSet:
    """The :class:`ImageSet` of what ``ref`` names, split as a run with ``val_fraction`` and ``seed`` is
    (a fold view: its fold held out)."""
    check_val_fraction(val_fraction)
    if ref.fold is not None:
        return _fold_view(ref, data_dir)
    if ref.kind == "builtin":
        return load_dataset(ref.name, data_dir=data_dir, val_fraction=val_fraction, seed=seed)
    startup.ready(data_dir)
    root, rows = _ref_root_and_rows(ref, data_dir)
    if rows is not None:
        return manifests.load_rows(ref.name, root, rows, val_fraction=val_fraction, seed=seed)
    return load_image_folder(root, name=ref.name, val_fraction=val_fraction, seed=seed)


def _fold_view(ref: DatasetRef, data_dir: Path | None) -> ImageSet:
    k, folds, seed = ref.fold  # type: ignore[misc]
    files = ref_files(replace(ref, fold=None), data_dir=data_dir)
    train_idx, val_idx = fold_split(files.labels, k, folds, seed)
    paths = [files.root / p for p in files.paths]
    channels, image_size = image_properties(paths)
    images = ImageList(files.labels, files=paths, mode="L" if channels == 1 else "RGB")
    return ImageSet(
        name=ref.name, classes=files.classes, channels=channels, image_size=image_size,
        train=images.subset(train_idx), val=images.subset(val_idx), root=files.root,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# A run's data: the one place that says what it is and how it is split


def run_split(config: Mapping) -> tuple[float, int]:
    """A run's ``(val_fraction, seed)`` as its config records them."""
    return float(config.get("val_fraction", DEFAULT_VAL_FRACTION)), int(config.get("seed", DEFAULT_SEED))


def run_ref(dataset_info: Mapping) -> DatasetRef | None:
    """The ref a run's ``dataset.json`` records; None for a run written before refs existed."""
    data = dataset_info.get("dataset_ref") if isinstance(dataset_info, Mapping) else None
    return DatasetRef.from_dict(data) if data else None


def load_run_dataset(config: Mapping, dataset_info: Mapping, *, data_dir: Path | None = None) -> ImageSet:
    """A run's dataset, split exactly as in its training."""
    val_fraction, seed = run_split(config)
    ref = run_ref(dataset_info)
    if ref is None:
        return load_dataset(str(config["dataset"]), data_dir=data_dir, val_fraction=val_fraction, seed=seed)
    return load_ref(ref, val_fraction=val_fraction, seed=seed, data_dir=data_dir)


def run_val_paths(config: Mapping, dataset_info: Mapping, *, data_dir: Path | None = None) -> list[str]:
    """Paths of a run's validation images in the order its predictions list them: relative to the
    dataset's root (a version's images: their origin), the ``class_name/<index>.png`` scheme for built-ins."""
    val_fraction, seed = run_split(config)
    ref, name = run_ref(dataset_info), str(config["dataset"])
    if ref is not None and ref.fold is not None:
        files = ref_files(replace(ref, fold=None), data_dir=data_dir)
        return [files.paths[i] for i in fold_split(files.labels, *ref.fold)[1]]
    if (ref.kind == "builtin") if ref is not None else parse_builtin(name)[0] is not None:
        return builtin_val_paths(name, val_fraction, seed)
    imageset = load_run_dataset(config, dataset_info, data_dir=data_dir)
    if imageset.root is None or imageset.val.files is None:
        raise DatasetError("Dataset {name} has no image files to point at.", name=repr(name))
    return [Path(f).relative_to(imageset.root).as_posix() for f in imageset.val.files]


def run_data_key(config: Mapping, dataset_info: Mapping, *, data_dir: Path | None = None) -> str:
    """Changes exactly when what a run's data loads changes: the key of every cache of a run's results."""
    ref = run_ref(dataset_info)
    if ref is not None:
        return ref.key()
    val_fraction, seed = run_split(config)
    return f"{dataset_revision(str(config.get('dataset', '')), data_dir=data_dir)}|{val_fraction}|{seed}"


def dataset_revision(name: str, *, data_dir: Path | None = None) -> str:
    """Changes whenever what ``name`` means changes (an upload replaced, a version edited or undone, a
    folder or zip given by path modified); the same text while it does not."""
    text = os.fspath(name)
    if parse_builtin(text)[0] is not None:
        return f"builtin:{builtin_key(text)}"
    if catalog.is_plain_name(text):
        startup.ready(data_dir)
        conn = catalog.db(data_dir)
        row = catalog.dataset_row(conn, text)
        if row is not None and row["content"] is not None:
            return f"content:{row['content']}"
        if row is not None:
            revision = conn.execute(
                "SELECT revision FROM versions WHERE id = ?", (row["version"],)
            ).fetchone()
            return f"version:{row['version']}.{revision[0]}"
    path = Path(text).expanduser()
    try:
        stat = path.stat()
    except OSError:
        return f"missing:{text}"
    return f"path:{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"
