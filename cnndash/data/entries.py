"""The names inside an uploaded zip, checked before anything is written.

An entry name is untrusted text that becomes a path on the server and, as a class or file name, text on
a page. Refused (:class:`DatasetError`, naming the entry): absolute paths, ``..``, NUL and other control
or invisible formatting characters (a newline, an ANSI escape, a right-to-left override), names longer
than the filesystem allows, paths deeper than ``MAX_ENTRY_DEPTH`` folders, symlinks and special files,
duplicates (also differing only in case), and a file and a folder of one name. What is left is a plan:
every entry with its path components.
"""

from __future__ import annotations

import re
import stat
import unicodedata
import zipfile
from pathlib import Path

from cnndash.data.images import IMAGE_EXTENSIONS, DatasetError
from cnndash.data.limits import MAX_ENTRY_DEPTH, MAX_NAME_BYTES, MAX_PATH_CHARS

# Unicode categories never allowed in a name: control (Cc) and format (Cf: bidi overrides, zero-width).
_REFUSED_CATEGORIES = ("Cc", "Cf")
_MIB = 2**20

Plan = list[tuple[zipfile.ZipInfo, list[str]]]


def _is_zip_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)  # the Unix mode lives in the high 16 bits


def _is_special(info: zipfile.ZipInfo) -> bool:
    kind = stat.S_IFMT(info.external_attr >> 16)
    return kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def _check_characters(name: str, parts: list[str]) -> None:
    bad = next((c for c in name if unicodedata.category(c) in _REFUSED_CATEGORIES), None)
    if bad is not None:
        raise DatasetError(
            "Archive entry {name} has an invisible or control character (U+{code:04X}) in its name; rename "
            "it.",
            name=repr(name),
            code=ord(bad),
        )
    if len(name) > MAX_PATH_CHARS or len(parts) > MAX_ENTRY_DEPTH:
        raise DatasetError(
            "Archive entry {name}… is nested {n_parts} folders deep / {n_name} characters long; at most "
            "{max_entry_depth} levels and {max_path_chars} characters are allowed.",
            name=repr(name[:80]),
            n_parts=len(parts),
            n_name=len(name),
            max_entry_depth=MAX_ENTRY_DEPTH,
            max_path_chars=MAX_PATH_CHARS,
        )
    long = next((p for p in parts if len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES), None)
    if long is not None:
        raise DatasetError(
            "Archive entry {name}… has a name of {n_encode} bytes; names may have at most {max_name_bytes}. "
            "Shorten it.",
            name=repr(name[:80]),
            n_encode=len(long.encode("utf-8", "surrogatepass")),
            max_name_bytes=MAX_NAME_BYTES,
        )


def safe_parts(name: str) -> list[str]:
    """Path components of an archive entry name, or DatasetError for names that could escape or break."""
    if "\x00" in name:
        raise DatasetError(
            "Archive entry {name} has a NUL byte in its name; the zip is not safe to extract.",
            name=repr(name),
        )
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        raise DatasetError(
            "Archive entry {name} has an absolute path; refusing to extract it. Zip the folder with "
            "relative paths (e.g. `zip -r data.zip cats dogs`).",
            name=repr(name),
        )
    parts = [p for p in normal.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DatasetError(
            "Archive entry {name} contains '..' (it would be written outside the dataset folder); refusing "
            "to extract it.",
            name=repr(name),
        )
    _check_characters(name, parts)
    return parts


def skip_reason(parts: list[str]) -> str | None:
    """Why an entry is not extracted (macOS metadata, hidden, not an image), or None."""
    if any(p == "__MACOSX" for p in parts):
        return "macOS metadata (__MACOSX)"
    if any(p.startswith(".") for p in parts):
        return "hidden file"
    if Path(parts[-1]).suffix.lower() not in IMAGE_EXTENSIONS:
        suffix = Path(parts[-1]).suffix.lower() or "no extension"
        return f"not an image ({suffix})"
    return None


def plan_entries(infos: list[zipfile.ZipInfo], *, max_files: int, max_total_bytes: int) -> Plan:
    """Check the archive's declared sizes and every entry name before anything is written."""
    if len(infos) > max_files:
        raise DatasetError(
            "The archive has {n_infos} entries, more than the {max_files} allowed; split it into smaller "
            "datasets.",
            n_infos=len(infos),
            max_files=max_files,
        )
    declared = sum(max(i.file_size, 0) for i in infos)
    if declared > max_total_bytes:
        raise DatasetError(
            "The archive would unpack to {declared:.0f} MiB, more than the {max_total_bytes:.0f} MiB "
            "allowed; split it or remove large files.",
            declared=declared / _MIB,
            max_total_bytes=max_total_bytes / _MIB,
        )
    plan: Plan = []
    files: dict[str, str] = {}  # lower-cased path -> entry name
    folders: dict[str, str] = {}  # lower-cased folder path (every parent of an entry) -> entry name
    for info in infos:
        parts = safe_parts(info.filename)
        if _is_zip_symlink(info) or _is_special(info):
            raise DatasetError(
                "Archive entry {info_filename} is a symbolic link or special file; refusing the archive. Zip "
                "real files only.",
                info_filename=repr(info.filename),
            )
        if not parts:
            continue
        key = "/".join(parts).lower()
        owners = [("/".join(parts[:k]).lower(), info.filename) for k in range(1, len(parts))]
        if info.is_dir():
            owners.append((key, info.filename))
        elif key in files:
            raise DatasetError(
                "Archive entry {info_filename} appears twice; remove the duplicate.",
                info_filename=repr(info.filename),
            )
        else:
            files[key] = info.filename
        for folder, owner in owners:
            folders.setdefault(folder, owner)
        _check_file_folder_clash(files, folders, key, parts, info)
        plan.append((info, parts))
    return plan


def _check_file_folder_clash(
    files: dict[str, str], folders: dict[str, str], key: str, parts: list[str], info: zipfile.ZipInfo
) -> None:
    """A file and a folder of one name (``cat`` and ``cat/1.png``) cannot both exist on disk."""
    prefixes = ["/".join(parts[:k]).lower() for k in range(1, len(parts) + (1 if info.is_dir() else 0))]
    clash = next((p for p in prefixes if p in files), None)
    if clash is None and not info.is_dir() and key in folders:
        clash = key
    if clash is not None:
        file_name = files.get(clash, info.filename)
        folder_name = folders.get(clash, info.filename)
        raise DatasetError(
            "Archive entries {file_name} (a file) and {folder_name} (in a folder of the same name) collide; "
            "rename one of them.",
            file_name=repr(file_name),
            folder_name=repr(folder_name),
        )
