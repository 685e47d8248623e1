"""Safe extraction of uploaded image-folder zips.

The archive is untrusted. Every entry name is checked before anything is written (no absolute paths, no
``..``, no NUL bytes, no symlinks or special files, no duplicates); every entry is streamed into a
staging folder with size-limited copies that do not trust the sizes in the zip's headers (total bytes,
bytes per entry, compression ratio); every image is decoded fully; the dataset layout is checked; and
only then is the staging folder's content moved into place. On any error nothing is left behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO

from PIL import Image

from cnndash.data.folders import find_dataset_root, scan_image_folder
from cnndash.data.images import IMAGE_EXTENSIONS, DatasetError, is_image_file, is_visible
from cnndash.data.report import IMPORT_RECORD, SkippedFile

# Limits for untrusted archives (keyword arguments of extract_image_zip override them).
MAX_ZIP_FILES = 50_000  # entries in the archive
MAX_ZIP_TOTAL_BYTES = 4 * 2**30  # uncompressed bytes of everything extracted
MAX_ZIP_ENTRY_BYTES = 256 * 2**20  # uncompressed bytes of one entry
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of one entry (checked beyond RATIO_FLOOR bytes)
RATIO_FLOOR = 2**20  # small entries (a flat-colour BMP) may compress well without being a bomb
MAX_IMAGE_PIXELS = 64_000_000  # one decoded image (phones take 50 MP photos)
_CHUNK = 2**16  # bytes per read when streaming an entry (and the most a limit can be overshot by)
_HASH_CHUNK = 2**20  # bytes per read when hashing a zip for the extraction cache
_CACHE_KEY_CHARS = 16  # hex digits of the zip's SHA-256 naming its cache folder (64 bits: no clashes)
_ENCRYPTED_FLAG = 0x1  # bit 0 of a zip entry's general-purpose flags: the entry is encrypted
_MIB = 2**20


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)  # the Unix mode lives in the high 16 bits


def _is_special(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _safe_parts(name: str) -> list[str]:
    """Path components of an archive entry name, or DatasetError for names that could escape."""
    if "\x00" in name:
        raise DatasetError(
            f"Archive entry {name!r} has a NUL byte in its name; the zip is not safe to extract."
        )
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise DatasetError(
            f"Archive entry {name!r} has an absolute path; refusing to extract it. Zip the folder with "
            "relative paths (e.g. `zip -r data.zip cats dogs`)."
        )
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(
            f"Archive entry {name!r} contains '..' (it would be written outside the dataset folder); "
            "refusing to extract it."
        )
    return parts


def _skip_reason(parts: list[str]) -> str | None:
    if any(p == "__MACOSX" for p in parts):
        return "macOS metadata (__MACOSX)"
    if any(p.startswith(".") for p in parts):
        return "hidden file"
    if Path(parts[-1]).suffix.lower() not in IMAGE_EXTENSIONS:
        suffix = Path(parts[-1]).suffix.lower() or "no extension"
        return f"not an image ({suffix})"
    return None


def _copy_bounded(
    source: IO[bytes], target: Path, info: zipfile.ZipInfo, *, budget: int, max_entry: int, max_ratio: float
) -> int:
    """Stream one entry to ``target`` without trusting the sizes in its header; return bytes written."""
    written = 0
    compressed = max(info.compress_size, 1)
    with open(target, "xb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > max_entry:
                raise DatasetError(
                    f"Archive entry {info.filename!r} unpacks to more than {max_entry // _MIB} MiB; "
                    "refusing it as a possible zip bomb."
                )
            if written > budget:
                raise DatasetError(
                    "The archive unpacks to more than the allowed total size; refusing it as a possible "
                    "zip bomb. Split the dataset or remove large files."
                )
            if written > RATIO_FLOOR and written / compressed > max_ratio:
                raise DatasetError(
                    f"Archive entry {info.filename!r} is compressed more than {max_ratio:g}:1, which "
                    "is typical of a zip bomb; refusing the archive."
                )
            out.write(chunk)
    return written


def _check_images(root: Path) -> None:
    """Decode every image fully: a file that does not decode rejects the upload, naming the file."""
    for path in sorted(root.rglob("*")):
        if not is_image_file(path) or any(not is_visible(Path(p)) for p in path.relative_to(root).parts):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            with Image.open(path) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise DatasetError(
                        f"{rel} is {img.width}×{img.height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels allowed; downscale it."
                    )
                img.load()
        except DatasetError:
            raise
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DatasetError(f"{rel} does not decode as an image ({exc}); remove or replace it.") from None


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DatasetError(
            f"{Path(zip_path).name} is not a zip archive (or it is corrupt); upload a .zip of class folders."
        ) from None
    except OSError as exc:
        raise DatasetError(f"Cannot read {zip_path}: {exc}") from None


def _plan(
    infos: list[zipfile.ZipInfo], *, max_files: int, max_total_bytes: int
) -> list[tuple[zipfile.ZipInfo, list[str]]]:
    """Check the archive's declared sizes and every entry name before anything is written."""
    if len(infos) > max_files:
        raise DatasetError(
            f"The archive has {len(infos)} entries, more than the {max_files} allowed; split it into "
            "smaller datasets."
        )
    declared = sum(max(i.file_size, 0) for i in infos)
    if declared > max_total_bytes:
        raise DatasetError(
            f"The archive would unpack to {declared / _MIB:.0f} MiB, more than the "
            f"{max_total_bytes / _MIB:.0f} MiB allowed; split it or remove large files."
        )
    plan: list[tuple[zipfile.ZipInfo, list[str]]] = []
    seen: set[str] = set()
    for info in infos:
        parts = _safe_parts(info.filename)
        if _is_zip_symlink(info) or _is_special(info):
            raise DatasetError(
                f"Archive entry {info.filename!r} is a symbolic link or special file; refusing the "
                "archive. Zip real files only."
            )
        if not parts:
            continue
        key = "/".join(parts).lower()
        if key in seen and not info.is_dir():
            raise DatasetError(f"Archive entry {info.filename!r} appears twice; remove the duplicate.")
        seen.add(key)
        plan.append((info, parts))
    return plan


def _extract_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    out_path: Path,
    *,
    budget: int,
    max_entry: int,
    max_ratio: float,
) -> int:
    """Stream one checked file entry to ``out_path``; return the bytes written."""
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise DatasetError(f"Archive entry {info.filename!r} is encrypted; upload an unencrypted zip.")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with archive.open(info) as source:
            return _copy_bounded(
                source, out_path, info, budget=budget, max_entry=max_entry, max_ratio=max_ratio
            )
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DatasetError(
            f"Archive entry {info.filename!r} is corrupt ({exc}); re-create the zip."
        ) from None
    except FileExistsError:
        raise DatasetError(
            f"Archive entry {info.filename!r} collides with another entry; rename one of them."
        ) from None


def _extract_to(
    zip_path: Path,
    target: Path,
    *,
    max_files: int,
    max_total_bytes: int,
    max_entry_bytes: int,
    max_ratio: float,
) -> list[SkippedFile]:
    """Extract the archive's image entries under ``target``; return the entries skipped, and why."""
    skipped: list[SkippedFile] = []
    with _open_zip(zip_path) as archive:
        budget = max_total_bytes
        for info, parts in _plan(archive.infolist(), max_files=max_files, max_total_bytes=max_total_bytes):
            if info.is_dir():
                # A folder is kept unless it is hidden or metadata (asked as if it held an image).
                if _skip_reason([*parts, "x.png"]) is None:
                    target.joinpath(*parts).mkdir(parents=True, exist_ok=True)
                continue
            reason = _skip_reason(parts)
            if reason is not None:
                skipped.append(SkippedFile("/".join(parts), reason))
                if reason.startswith("not an image") and len(parts) > 1:
                    # Keep its folder, so a class holding only non-images is reported as empty.
                    target.joinpath(*parts[:-1]).mkdir(parents=True, exist_ok=True)
                continue
            budget -= _extract_entry(
                archive,
                info,
                target.joinpath(*parts),
                budget=budget,
                max_entry=max_entry_bytes,
                max_ratio=max_ratio,
            )
    return skipped


def extract_image_zip(
    zip_path: str | os.PathLike,
    dest_dir: str | os.PathLike,
    *,
    max_files: int = MAX_ZIP_FILES,
    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
    max_entry_bytes: int = MAX_ZIP_ENTRY_BYTES,
    max_ratio: float = MAX_ZIP_RATIO,
) -> Path:
    """Safely extract an uploaded image-folder archive into ``dest_dir``; return the dataset root.

    The archive is untrusted: entries with absolute paths, ``..`` or symlinks, too many entries, too many
    bytes or a suspicious compression ratio, a corrupt or non-zip file, images that do not decode, fewer
    than 2 classes or an empty class raise :class:`DatasetError`. ``__MACOSX/``, hidden files and
    non-images are skipped (listed in ``<dest_dir>/.cnndash-import.json``). Everything is unpacked into
    a temporary folder inside ``dest_dir`` and moved into place only once it validates; on error nothing
    is left behind (``dest_dir`` is removed again if this call created it).
    """
    dest = Path(dest_dir)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        skipped = _extract_to(
            Path(zip_path),
            staging,
            max_files=max_files,
            max_total_bytes=max_total_bytes,
            max_entry_bytes=max_entry_bytes,
            max_ratio=max_ratio,
        )
        skipped += _validate_staging(staging)
        root = _move_into_place(staging, dest)
        record = {"zip": Path(zip_path).name, "skipped": [[s.path, s.reason] for s in skipped]}
        (dest / IMPORT_RECORD).write_text(json.dumps(record, indent=1))
        return root
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _validate_staging(staging: Path) -> list[SkippedFile]:
    """Check the extracted files form a dataset; return the images outside every class folder."""
    if not any(is_image_file(p) for p in staging.rglob("*")):
        raise DatasetError(
            f"The archive contains no images ({', '.join(IMAGE_EXTENSIONS)}); it needs one "
            "folder per class with images inside."
        )
    _check_images(staging)
    _, parts = scan_image_folder(staging, shown_as="the archive")
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
        raise DatasetError(f"{dest} already contains {', '.join(clashes)}; extract into an empty folder.")
    for entry in staging.iterdir():
        os.replace(entry, dest / entry.name)
    return dest / root_in_staging.relative_to(staging)


def extract_cached_zip(zip_path: Path, base: Path) -> Path:
    """Extract a zip given by path (CLI) once, into ``data_dir()/cache/zips/<content hash>``."""
    digest = hashlib.sha256()
    with open(zip_path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    dest = base / "cache" / "zips" / digest.hexdigest()[:_CACHE_KEY_CHARS]
    if (dest / IMPORT_RECORD).is_file():
        return find_dataset_root(dest)
    shutil.rmtree(dest, ignore_errors=True)
    return extract_image_zip(zip_path, dest)
