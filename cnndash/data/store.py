"""The stored datasets: names that point at an upload's content — import, replace, list, reports, delete.

A name is a row of the catalog (:mod:`cnndash.data.catalog`) pointing at a content folder
(:mod:`cnndash.data.contents`) or at a version (:mod:`cnndash.data.versions`). An import writes its
content under a hidden staging name, bounded by the quota ledger as it is written, and publishes it in
the one transaction that points the name at it: another process sees the dataset complete or not at
all, a replace swaps the pointer (the old content is freed once nothing refers to it), and a ``kill -9``
at any instant leaves the name as it was. ``docs/storage.md`` walks through every kill point.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from pathlib import Path

from cnndash.data import catalog, manifests, startup
from cnndash.data.archive import extract_image_zip
from cnndash.data.catalog import NAME_MAX_CHARS, UPLOAD, check_dataset_name, transaction
from cnndash.data.contents import content_root, empty_trash, staging
from cnndash.data.images import DatasetError
from cnndash.data.limits import MAX_ZIP_FILES
from cnndash.data.report import ValidationReport, report_of, validate_image_folder

__all__ = ["NAME_MAX_CHARS", "check_dataset_name"]  # re-exported: they used to live here
ON_EXISTS = ("error", "suffix", "replace")


def datasets_dir(data_dir: Path | None = None) -> Path:
    """``data_dir()/datasets``: the old layout's folder. A folder put there (by an older cnndash or by
    hand) is adopted as a stored dataset of its name at the next start (:mod:`cnndash.data.startup`)."""
    return catalog.data_root(data_dir) / startup.DATASETS_DIR


def list_datasets(data_dir: Path | None = None) -> list[str]:
    """Names of the stored datasets and versions, sorted."""
    startup.ready(data_dir)
    return catalog.dataset_names(catalog.db(data_dir))


def quota_used(data_dir: Path | None = None) -> int:
    """Bytes the data folder's quota counts now: every stored file once, plus imports in flight."""
    startup.ready(data_dir)
    return catalog.quota_used(catalog.db(data_dir))


def dataset_name_from(filename: str) -> str:
    """A valid dataset name derived from an upload's file name (``"My Pets!.zip"`` -> ``"My-Pets"``)."""
    stem = Path(filename).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:NAME_MAX_CHARS]
    return name or "dataset"


def import_dataset_zip(
    zip_path: str | os.PathLike,
    name: str | None = None,
    *,
    data_dir: Path | None = None,
    on_exists: str = "error",
) -> ValidationReport:
    """Store an uploaded zip as dataset ``name`` and return its validation report.

    ``name`` defaults to the zip's file name. When a dataset of that name exists, ``on_exists="error"``
    raises :class:`DatasetError`, ``"suffix"`` stores it as ``<name>-2``, ``<name>-3``, … and
    ``"replace"`` makes ``name`` mean the new dataset in one step (the old one stays intact until then,
    and whatever fails before — a bad zip, the quota, a full disk, a kill — leaves it as it was). The
    data folder's quota and the free disk space bound what it may store (:mod:`cnndash.data.limits`).
    """
    if on_exists not in ON_EXISTS:
        raise ValueError(f"on_exists must be one of {ON_EXISTS}")
    name = check_dataset_name(name if name is not None else dataset_name_from(Path(zip_path).name))
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    if on_exists == "error" and catalog.dataset_row(conn, name) is not None:  # fail before extracting
        catalog.free_name(conn, name, on_exists)
    chosen: list[str] = []

    def register(conn, content) -> None:
        final = catalog.free_name(conn, name, on_exists)
        row = catalog.dataset_row(conn, final)
        if row is not None and row["version"] is not None:
            raise DatasetError(
                "{final} is a dataset version; delete it first or store the upload under another name.",
                final=repr(final),
            )
        catalog.point_name(conn, final, content=content.id)
        catalog.collect(conn)  # a replaced upload goes once nothing else refers to it
        chosen.append(final)

    with staging(data_dir) as stage:
        extract_image_zip(zip_path, stage.path, reserve=stage.reserve)
        content = stage.publish(kind=UPLOAD, source=Path(zip_path).name, register=register)
    empty_trash(data_dir)
    return validate_image_folder(catalog.content_folder(content, data_dir), name=chosen[0])


def replace_dataset_zip(
    zip_path: str | os.PathLike, name: str, *, data_dir: Path | None = None
) -> ValidationReport:
    """Store the zip as ``name`` in place of the dataset of that name (the Data page's "Replace it"): in
    one step, so ``name`` holds the old dataset intact or the new one complete, whatever happens."""
    return import_dataset_zip(zip_path, name, data_dir=data_dir, on_exists="replace")


def import_dataset(
    source: str | os.PathLike,
    name: str | None = None,
    *,
    data_dir: Path | None = None,
    on_exists: str = "error",
) -> ValidationReport:
    """Store an image-folder zip or directory as a dataset (what ``cnndash data import`` does).

    A directory goes through exactly the checks of an upload: it is packed into a temporary zip (stored,
    not compressed) next to the data folder and imported with :func:`import_dataset_zip`, so limits,
    skipped files, re-encoding and name claiming are the same whatever the source.
    """
    source = Path(source)
    if name is not None:
        check_dataset_name(name)  # a bad name is refused before anything is read
    if source.is_file():
        return import_dataset_zip(source, name, data_dir=data_dir, on_exists=on_exists)
    if not source.is_dir():
        raise DatasetError(
            "{source} is neither a zip file nor a folder; pass an image-folder zip or directory.",
            source=repr(str(source)),
        )
    root = catalog.data_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    owner = catalog.owner_token(root)  # a sweep removes the zip of a killed import by this name
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f"{startup.IMPORT_PREFIX}{owner}-", suffix=".zip")
    os.close(fd)
    try:
        _zip_folder(source, Path(tmp))
        return import_dataset_zip(
            tmp, name or dataset_name_from(source.name), data_dir=data_dir, on_exists=on_exists
        )
    finally:
        Path(tmp).unlink(missing_ok=True)


def _zip_folder(source: Path, zip_path: Path) -> None:
    """Pack ``source``'s regular files (no symlinks) into ``zip_path``, bounded like an upload."""
    count = 0
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            count += 1
            if count > MAX_ZIP_FILES:
                raise DatasetError(
                    "{source} holds more than {max_zip_files} files; import a smaller folder.",
                    source=source,
                    max_zip_files=MAX_ZIP_FILES,
                )
            archive.write(path, path.relative_to(source).as_posix())


def _row(name: str, data_dir: Path | None, what: str):
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    row = catalog.dataset_row(conn, check_dataset_name(name))
    if row is None:
        raise DatasetError(
            "No uploaded dataset named {name} in {data_root}{what}; `python -m cnndash data list` shows the "
            "stored ones.",
            name=repr(name),
            data_root=catalog.data_root(data_dir),
            what=what,
        )
    return conn, row


def dataset_report(name: str, *, data_dir: Path | None = None) -> ValidationReport:
    """Validation report of a stored dataset or version."""
    conn, row = _row(name, data_dir, "")
    if row["content"] is not None:
        content = catalog.get_content(conn, row["content"])
        return validate_image_folder(catalog.content_folder(content, data_dir), name=name)
    info = conn.execute("SELECT * FROM versions WHERE id = ?", (row["version"],)).fetchone()
    root = version_base_root(info, data_dir)
    classes, parts = manifests.layout(manifests.version_rows(conn, row["version"]))
    files = {p: [(root / o, label) for o, label in items] for p, items in parts.items()}
    return report_of(name, root, classes, files, [])


def version_base_root(info, data_dir: Path | None = None) -> Path:
    """The root folder of the base of a version (or snapshot) row: where its images' files are."""
    if info["base_content"] is not None:
        content = catalog.get_content(catalog.db(data_dir), info["base_content"])
        if content is None:
            raise DatasetError("The base of {info} is missing from the data folder.", info=repr(info["base"]))
        return content_root(content, data_dir)
    path = Path(info["base_path"])
    if not path.is_dir():
        raise DatasetError(
            "The folder {path} that {info} is built on no longer exists.",
            path=repr(str(path)),
            info=repr(info["base"]),
        )
    return path


def delete_dataset(name: str, *, data_dir: Path | None = None) -> None:
    """Delete a stored dataset or version. A dataset with versions built on it is refused (naming them);
    files a run trained on stay until that run is deleted (:mod:`cnndash.data.pins`)."""
    conn, _ = _row(name, data_dir, "; nothing deleted")
    with transaction(conn):
        row = catalog.dataset_row(conn, name)
        if row is None:
            raise DatasetError("Dataset {name} was deleted meanwhile; nothing to do.", name=repr(name))
        if row["content"] is not None:
            users = catalog.versions_on(conn, row["content"])
            if users:
                raise DatasetError(
                    "Dataset {name} has versions built on it ({users}); delete them first (`python -m cnndash data "
                    "delete VERSION`), or keep it.",
                    name=repr(name),
                    users=", ".join(users),
                )
        conn.execute("DELETE FROM datasets WHERE name = ?", (name,))
        if row["version"] is not None:
            conn.execute("DELETE FROM versions WHERE id = ?", (row["version"],))
        catalog.collect(conn)
    empty_trash(data_dir)
