"""The dataset store: uploaded datasets kept under ``data_dir()/datasets/<name>`` — names, import,
listing, reports and deletion."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from cnndash import paths
from cnndash.data.archive import extract_image_zip
from cnndash.data.builtin import BUILTIN_DATASETS
from cnndash.data.images import DatasetError, is_visible
from cnndash.data.limits import MAX_ZIP_FILES, disk_error
from cnndash.data.report import ValidationReport, validate_image_folder

NAME_MAX_CHARS = 64  # longest dataset name (a folder name on every filesystem)
# A taken name gets "-2", "-3", … after at most this many of its characters (room for up to "-999").
_SUFFIX_STEM_CHARS = NAME_MAX_CHARS - 4
_NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{NAME_MAX_CHARS - 1}}}")


def datasets_dir(data_dir: Path | None = None) -> Path:
    """Folder holding uploaded datasets: ``data_dir()/datasets``."""
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / "datasets"


def list_datasets(data_dir: Path | None = None) -> list[str]:
    """Names of the uploaded datasets, sorted."""
    folder = datasets_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and is_visible(p))


def dataset_name_from(filename: str) -> str:
    """A valid dataset name derived from an upload's file name (``"My Pets!.zip"`` -> ``"My-Pets"``)."""
    stem = Path(filename).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:NAME_MAX_CHARS]
    return name or "dataset"


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it can name a stored dataset, else raise :class:`DatasetError` saying why."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DatasetError(
            f"Dataset name {name!r} is not allowed: use 1–{NAME_MAX_CHARS} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if name.lower() in BUILTIN_DATASETS:
        raise DatasetError(f"{name!r} is the name of a built-in dataset; choose another name.")
    return name


def import_dataset_zip(
    zip_path: str | os.PathLike,
    name: str | None = None,
    *,
    data_dir: Path | None = None,
    on_exists: str = "error",
) -> ValidationReport:
    """Extract an uploaded zip into ``data_dir()/datasets/<name>`` and return its validation report.

    ``name`` defaults to the zip's file name. When a dataset of that name exists, ``on_exists="error"``
    raises :class:`DatasetError` and ``"suffix"`` stores it as ``<name>-2``, ``<name>-3``, …
    (never overwriting). The data folder's quota and the free disk space bound what it may store
    (:mod:`cnndash.data.limits`).
    """
    if on_exists not in ("error", "suffix"):
        raise ValueError("on_exists must be 'error' or 'suffix'")
    name = check_dataset_name(name if name is not None else dataset_name_from(Path(zip_path).name))
    folder = datasets_dir(data_dir)
    try:
        target = claim_name(folder, name, suffix=on_exists == "suffix")
    except OSError as exc:
        raise disk_error(exc, f"the dataset folder {name!r}") from None
    try:
        # The claimed folder is this call's alone: extraction stages inside it and moves into place there.
        extract_image_zip(zip_path, target, quota_dir=folder.parent)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # the folder this call created, never another's
        raise
    return validate_image_folder(target, name=target.name)


def replace_dataset_zip(
    zip_path: str | os.PathLike, name: str, *, data_dir: Path | None = None
) -> ValidationReport:
    """Store the zip as ``name`` in place of the dataset of that name (the Data page's "Replace it").

    The zip is first imported and validated as a numbered copy, so a bad zip never costs the old
    dataset; only then is the old one deleted and the zip imported under ``name``.
    """
    trial = import_dataset_zip(zip_path, name, data_dir=data_dir, on_exists="suffix")
    try:
        delete_dataset(name, data_dir=data_dir)
        return import_dataset_zip(zip_path, name, data_dir=data_dir, on_exists="error")
    finally:
        delete_dataset(trial.name, data_dir=data_dir)


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
            f"{str(source)!r} is neither a zip file nor a folder; pass an image-folder zip or directory."
        )
    folder = datasets_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder.parent, prefix=".import-", suffix=".zip")
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
                    f"{source} holds more than {MAX_ZIP_FILES} files; import a smaller folder."
                )
            archive.write(path, path.relative_to(source).as_posix())


def claim_name(folder: Path, name: str, *, suffix: bool) -> Path:
    """Create ``folder/name`` (or ``name-2``, ``name-3``, … when ``suffix``) and return it.

    Creating the folder is the claim: ``mkdir`` fails for every caller but one, so imports running at
    the same time, in one process or several, never share or overwrite a dataset folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    chosen, number = name, 2
    while True:
        try:
            (folder / chosen).mkdir()
            return folder / chosen
        except FileExistsError:
            if not suffix:
                raise DatasetError(
                    f"A dataset named {name!r} already exists; choose another name or delete it first."
                ) from None
        chosen = f"{name[:_SUFFIX_STEM_CHARS]}-{number}"
        number += 1


def dataset_report(name: str, *, data_dir: Path | None = None) -> ValidationReport:
    """Validation report of a stored dataset."""
    path = datasets_dir(data_dir) / check_dataset_name(name)
    if not path.is_dir():
        raise DatasetError(f"No uploaded dataset named {name!r} under {path.parent}.")
    return validate_image_folder(path, name=name)


def delete_dataset(name: str, *, data_dir: Path | None = None) -> None:
    """Delete a stored dataset folder."""
    path = datasets_dir(data_dir) / check_dataset_name(name)
    if not path.is_dir():
        raise DatasetError(f"No uploaded dataset named {name!r} under {path.parent}; nothing deleted.")
    shutil.rmtree(path)
