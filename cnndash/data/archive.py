"""Safe extraction of uploaded image-folder zips.

The archive is untrusted. Every entry name is checked before anything is written (:mod:`.entries`); the
expected size must fit the budget (:mod:`.limits`: expansion, quota, free disk space); every entry is
streamed into a staging folder with size-limited copies that do not trust the sizes in the zip's headers;
every image is decoded as soon as it is written — one that does not decode is deleted and reported (or,
with ``bad_images="refuse"``, rejects the archive) and a wasteful one (BMP, uncompressed PNG) is stored
re-encoded as PNG, so the bytes kept are honest; the dataset layout is checked; and only then is the
staging folder's content moved into place. On any error nothing is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image

from cnndash.data.entries import Plan, plan_entries, skip_reason
from cnndash.data.folders import find_dataset_root, scan_image_folder
from cnndash.data.images import IMAGE_EXTENSIONS, DatasetError, is_image_file
from cnndash.data.limits import (
    MAX_IMAGE_PIXELS,
    MAX_ZIP_ENTRY_BYTES,
    MAX_ZIP_FILES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    RATIO_FLOOR,
    REENCODE_ALWAYS,
    REENCODE_MIN_BYTES,
    WASTEFUL_SHARE,
    Budget,
    disk_error,
    plan_budget,
)
from cnndash.data.report import IMPORT_RECORD, SkippedFile
from cnndash.preprocess import ImageDecodeError, read_image

__all__ = [  # the limits stay importable from here, where they used to live
    "MAX_IMAGE_PIXELS",
    "MAX_ZIP_ENTRY_BYTES",
    "MAX_ZIP_FILES",
    "MAX_ZIP_RATIO",
    "MAX_ZIP_TOTAL_BYTES",
    "RATIO_FLOOR",
    "extract_image_zip",
]

_CHUNK = 2**16  # bytes per read when streaming an entry (and the most a limit can be overshot by)
_ENCRYPTED_FLAG = 0x1  # bit 0 of a zip entry's general-purpose flags: the entry is encrypted
_BAD_IMAGES = ("skip", "refuse")
_MIB = 2**20


def _copy_bounded(
    source: IO[bytes],
    target: Path,
    info: zipfile.ZipInfo,
    *,
    budget: Budget,
    max_entry: int,
    max_ratio: float,
) -> int:
    """Stream one entry to ``target`` without trusting the sizes in its header; return bytes written."""
    written = 0
    compressed = max(info.compress_size, 1)
    with open(target, "xb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > max_entry:
                raise DatasetError(
                    "Archive entry {info_filename} unpacks to more than {max_entry} MiB; refusing it as a possible "
                    "zip bomb.",
                    info_filename=repr(info.filename),
                    max_entry=max_entry // _MIB,
                )
            budget.check(written)
            if written > RATIO_FLOOR and written / compressed > max_ratio:
                raise DatasetError(
                    "Archive entry {info_filename} is compressed more than {max_ratio:g}:1, which is typical of a "
                    "zip bomb; refusing the archive.",
                    info_filename=repr(info.filename),
                    max_ratio=max_ratio,
                )
            out.write(chunk)
    return written


def _wasteful(path: Path, size: int) -> bool:
    """A file stored much larger than its pixels need: a BMP, or a (nearly) uncompressed PNG."""
    suffix = path.suffix.lower()
    if suffix in REENCODE_ALWAYS:
        return True
    if suffix != ".png" or size < REENCODE_MIN_BYTES:
        return False
    with Image.open(path) as img:
        raw = img.width * img.height * len(img.getbands())
    return size > WASTEFUL_SHARE * raw


def _reencode_png(path: Path, rel: str, taken: set[str]) -> Path:
    """Store ``path`` as a lossless PNG when that is smaller; return where the image now is.

    A BMP becomes ``name.png`` (``name.bmp.png`` when the archive has a ``name.png`` too); ``taken`` holds
    the archive's entry paths, lower-cased, so a later entry never collides with a renamed one.
    """
    target = path
    if path.suffix.lower() != ".png":
        stem = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        for name in (path.with_suffix(".png").name, path.name + ".png"):
            if (stem + name).lower() not in taken and not path.with_name(name).exists():
                target = path.with_name(name)
                break
        else:
            return path  # no free name: keep the original
    scratch = path.with_name(f".reencode-{path.name}.png")
    with Image.open(path) as img:
        img.save(scratch, format="PNG")
    if scratch.stat().st_size >= path.stat().st_size:
        scratch.unlink()
        return path
    path.unlink()
    os.replace(scratch, target)
    return target


def _admit_image(
    path: Path, rel: str, budget: Budget, *, taken: set[str], bad_images: str
) -> SkippedFile | None:
    """Check an image just written: decode it (delete and report it when it does not), re-encode it when
    its file is wasteful, and charge the bytes kept to the budget."""
    try:
        read_image(path, rel)
    except ImageDecodeError as exc:
        if bad_images == "refuse":
            raise DatasetError("{exc} Remove or replace it.", exc=exc) from None
        path.unlink()
        return SkippedFile(rel, f"unreadable image: {str(exc).removeprefix(rel + ' ')}")
    if _wasteful(path, path.stat().st_size):
        path = _reencode_png(path, rel, taken)
    budget.stored += path.stat().st_size
    budget.check()
    return None


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DatasetError(
            "{name} is not a zip archive (or it is corrupt); upload a .zip of class folders.",
            name=Path(zip_path).name,
        ) from None
    except OSError as exc:
        raise DatasetError("Cannot read {zip_path}: {exc}", zip_path=zip_path, exc=exc) from None


def _extract_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    out_path: Path,
    *,
    budget: Budget,
    max_entry: int,
    max_ratio: float,
) -> None:
    """Stream one checked file entry to ``out_path``, charging its bytes to ``budget``."""
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise DatasetError(
            "Archive entry {info_filename} is encrypted; upload an unencrypted zip.",
            info_filename=repr(info.filename),
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with archive.open(info) as source:
            written = _copy_bounded(
                source, out_path, info, budget=budget, max_entry=max_entry, max_ratio=max_ratio
            )
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DatasetError(
            "Archive entry {info_filename} is corrupt ({exc}); re-create the zip.",
            info_filename=repr(info.filename),
            exc=exc,
        ) from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise DatasetError(
            "Archive entry {info_filename} collides with another entry; rename one of them.",
            info_filename=repr(info.filename),
        ) from None
    budget.expanded += written


def _declared_image_bytes(plan: Plan) -> int:
    return sum(
        max(info.file_size, 0) for info, parts in plan if not info.is_dir() and skip_reason(parts) is None
    )


def _extract_to(
    archive: zipfile.ZipFile, plan: Plan, target: Path, budget: Budget, *, limits: dict, bad_images: str
) -> list[SkippedFile]:
    """Extract the planned image entries under ``target``; return the entries skipped, and why."""
    skipped: list[SkippedFile] = []
    taken = {"/".join(parts).lower() for _, parts in plan}
    for info, parts in plan:
        if info.is_dir():
            # A folder is kept unless it is hidden or metadata (asked as if it held an image).
            if skip_reason([*parts, "x.png"]) is None:
                target.joinpath(*parts).mkdir(parents=True, exist_ok=True)
            continue
        rel = "/".join(parts)
        reason = skip_reason(parts)
        if reason is not None:
            skipped.append(SkippedFile(rel, reason))
            if reason.startswith("not an image") and len(parts) > 1:
                # Keep its folder, so a class holding only non-images is reported as empty.
                target.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
            continue
        path = target.joinpath(*parts)
        _extract_entry(archive, info, path, budget=budget, **limits)
        bad = _admit_image(path, rel, budget, taken=taken, bad_images=bad_images)
        if bad is not None:
            skipped.append(bad)
    return skipped


def extract_image_zip(
    zip_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    max_files: int = MAX_ZIP_FILES,
    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
    max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES,
    max_ratio: float = MAX_ZIP_RATIO,
    bad_images: str = "skip",
    quota_dir: str | os.PathLike | None = None,
    reserve: Callable[[int], int] | None = None,
) -> Path:
    """Safely extract an uploaded image-folder archive into ``dest_dir``; return the dataset root.

    The archive is untrusted: entries with absolute paths, ``..``, symlinks, control characters, clashing
    or over-long names, too many entries, too many bytes (per entry, in all, or relative to the archive's
    size) or a suspicious compression ratio, a corrupt or non-zip file, fewer than 2 classes or a class
    with no readable image raise :class:`DatasetError`. So does an archive that would not fit the free
    disk space or the data folder's quota: ``reserve(total_bytes)`` (the import's reservation in the quota
    ledger, :mod:`cnndash.data.catalog`) is asked before bytes beyond what it granted are written, or, with
    only ``quota_dir``, the bytes already under that folder count. ``__MACOSX/``, hidden files,
    non-images and — unless ``bad_images="refuse"`` — images that do not decode are skipped (listed in
    ``<dest_dir>/.cnndash-import.json`` with the reason). Everything is unpacked into a temporary folder
    inside ``dest_dir`` and moved into place only once it validates; on error nothing is left behind
    (``dest_dir`` is removed again if this call created it).
    """
    if bad_images not in _BAD_IMAGES:
        raise ValueError(f"bad_images must be one of {_BAD_IMAGES}")
    dest = Path(dest_dir)
    try:
        dest.mkdir(parents=True)
        created = True  # this call made it: its to remove on failure, and only then
    except FileExistsError:
        created = False
    try:
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    try:
        limits = {"max_entry": max_entry_bytes, "max_ratio": max_ratio}
        with _open_zip(Path(zip_path)) as archive:
            plan = plan_entries(archive.infolist(), max_files=max_files, max_total_bytes=max_total_bytes)
            budget = plan_budget(
                Path(zip_path).stat().st_size,
                _declared_image_bytes(plan),
                max_total_bytes=max_total_bytes,
                target=dest,
                quota_dir=Path(quota_dir) if quota_dir is not None else None,
                reserve=reserve,
            )
            skipped = _extract_to(archive, plan, staging, budget, limits=limits, bad_images=bad_images)
        skipped += _validate_staging(staging, skipped)
        root = _move_into_place(staging, dest)
        record = {"zip": Path(zip_path).name, "skipped": [[s.path, s.reason] for s in skipped]}
        (dest / IMPORT_RECORD).write_text(json.dumps(record, indent=1))
        return root
    except OSError as exc:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise disk_error(exc, f"the upload {Path(zip_path).name}") from None
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _validate_staging(staging: Path, skipped: list[SkippedFile]) -> list[SkippedFile]:
    """Check the extracted files form a dataset; return the images outside every class folder."""
    unreadable = [s.path for s in skipped if s.reason.startswith("unreadable")]
    if not any(is_image_file(p) for p in staging.rglob("*")):
        found = f" that decode; {len(unreadable)} file(s) did not, e.g. {unreadable[0]}" if unreadable else ""
        raise DatasetError(
            "The archive contains no images ({image_extensions}){found}; it needs one folder per class with "
            "images inside.",
            image_extensions=", ".join(IMAGE_EXTENSIONS),
            found=found,
        )
    try:
        _, parts = scan_image_folder(staging, shown_as="the archive")
    except DatasetError as exc:
        if not unreadable:
            raise
        shown = ", ".join(unreadable[:5]) + (", …" if len(unreadable) > 5 else "")
        raise DatasetError(
            "{exc} ({n_unreadable} unreadable image(s) were skipped: {shown}.)",
            exc=exc,
            n_unreadable=len(unreadable),
            shown=shown,
        ) from None
    if "all" in parts and len(parts["all"]) <= len({t for _, t in parts["all"]}):
        raise DatasetError(
            "Every class of the archive has a single image: there is none left to validate on; add images "
            "(at least 2 in some class) or a val/ folder."
        )
    used = {f.resolve() for items in parts.values() for f, _ in items}
    return [
        SkippedFile(path.relative_to(staging).as_posix(), "not inside a class folder")
        for path in sorted(staging.rglob("*"))
        if is_image_file(path) and path.resolve() not in used
    ]


def _move_into_place(staging: Path, dest: Path) -> Path:
    """Move the staging folder's entries into ``dest`` (refusing clashes); return the dataset root there."""
    root_in_staging = find_dataset_root(staging)
    clashes = [p.name for p in staging.iterdir() if (dest / p.name).exists()]
    if clashes:
        raise DatasetError(
            "{dest} already contains {clashes}; extract into an empty folder.",
            dest=dest,
            clashes=", ".join(clashes),
        )
    for entry in staging.iterdir():
        os.replace(entry, dest / entry.name)
    return dest / root_in_staging.relative_to(staging)
