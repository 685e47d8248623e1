"""What one upload may cost the server: the limits on archives, stored bytes and free disk space.

Anyone who can open the app can upload, so every resource an upload consumes is bounded before or while
it is consumed, never after. Each limit is a named default here; the ones an operator tunes per machine
are read from the environment at each import (``docs/security.md`` lists them all):

- ``CNNDASH_DATA_QUOTA_MB``: everything the data folder stores (uploads, built-ins written as files, the
  CLI's zip cache), counted by the ledger of :mod:`cnndash.data.catalog`: each stored file once, versions
  nothing, imports in flight by what they have reserved;
- ``CNNDASH_MIN_FREE_MB``: disk space an import always leaves free;
- ``CNNDASH_MAX_IMAGE_PIXELS``: pixels of one image (:mod:`cnndash.preprocess`).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnndash.data.images import DatasetError
from cnndash.preprocess import MAX_IMAGE_PIXELS, limit_from_env

__all__ = ["MAX_IMAGE_PIXELS"]  # re-exported: cnndash.data.MAX_IMAGE_PIXELS is public

# Archives (keyword arguments of extract_image_zip override these).
MAX_ZIP_FILES = 50_000  # entries in the archive
MAX_ZIP_TOTAL_BYTES = 4 * 2**30  # uncompressed bytes of everything extracted
MAX_ZIP_ENTRY_BYTES = 256 * 2**20  # uncompressed bytes of one entry
MAX_ZIP_RATIO = 200  # uncompressed / compressed size of one entry (checked beyond RATIO_FLOOR bytes)
RATIO_FLOOR = 2**20  # small entries (a flat-colour BMP) may compress well without being a bomb
# Archive-wide: everything unpacked may be at most this many times the archive's size (beyond the floor),
# so a thousand small entries of zeros cannot add up to gigabytes either.
MAX_ARCHIVE_RATIO = 100
ARCHIVE_RATIO_FLOOR = 64 * 2**20
MAX_ENTRY_DEPTH = 32  # folders in one entry's path (class/sub/…/file.png)
MAX_NAME_BYTES = 255  # one file or folder name, UTF-8 (every common filesystem's limit)
MAX_PATH_CHARS = 1024  # one entry's whole path

# The data folder and the disk.
DATA_QUOTA_MB = 10_240  # everything under data_dir(): stored datasets and the zip cache (10 GiB)
DATA_QUOTA_ENV = "CNNDASH_DATA_QUOTA_MB"
MIN_FREE_MB = 1_024  # an import never leaves less free disk space than this (1 GiB)
MIN_FREE_ENV = "CNNDASH_MIN_FREE_MB"

# Files worth storing re-encoded as (lossless) PNG: BMPs always, other PNGs when they take more than this
# share of their raw pixel bytes (stored uncompressed) and at least REENCODE_MIN_BYTES.
REENCODE_ALWAYS = frozenset({".bmp"})
WASTEFUL_SHARE = 0.5
REENCODE_MIN_BYTES = 2**20
_MIB = 2**20


def data_quota_bytes() -> int:
    """``DATA_QUOTA_MB`` (or ``$CNNDASH_DATA_QUOTA_MB``) in bytes."""
    return limit_from_env(DATA_QUOTA_ENV, DATA_QUOTA_MB) * _MIB


def min_free_bytes() -> int:
    """``MIN_FREE_MB`` (or ``$CNNDASH_MIN_FREE_MB``) in bytes."""
    return limit_from_env(MIN_FREE_ENV, MIN_FREE_MB) * _MIB


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (links not followed; files vanishing meanwhile skipped)."""
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def quota_message(quota: int, left: int) -> str:
    """What an import that would break the data folder's quota is told."""
    return (
        f"The data folder would exceed its quota of {quota // _MIB} MiB ({DATA_QUOTA_ENV}; "
        f"{max(left, 0) / _MIB:.0f} MiB left); delete datasets you no longer need, or raise {DATA_QUOTA_ENV}."
    )


@dataclass
class Budget:
    """What one extraction may still write, and the message that names the limit it would break.

    ``expanded`` counts every byte unpacked (the zip-bomb bounds); ``stored`` counts the bytes kept on
    disk after re-encoding (the quota and free-space bounds). With ``reserve`` (the quota ledger's
    reservation of this import), bytes beyond what is reserved are reserved before they are written, so
    imports running at once cannot overshoot the quota together.
    """

    expand_limit: int
    expand_message: str
    store_limit: int
    store_message: str
    expanded: int = 0
    stored: int = 0
    reserve: Callable[[int], int] | None = None
    reserved: int = 0

    def check(self, extra: int = 0) -> None:
        """Raise :class:`DatasetError` when ``extra`` more bytes (being written) would break a limit."""
        if self.expanded + extra > self.expand_limit:
            raise DatasetError(self.expand_message)
        if self.stored + extra > self.store_limit:
            raise DatasetError(self.store_message)
        if self.reserve is not None and self.stored + extra > self.reserved:
            self.reserved = self.reserve(self.stored + extra)


def plan_budget(
    archive_bytes: int,
    declared_bytes: int,
    *,
    max_total_bytes: int,
    target: Path,
    quota_dir: Path | None,
    reserve: Callable[[int], int] | None = None,
) -> Budget:
    """The budget of one extraction into ``target``; refuses up front what cannot fit.

    Expansion: at most ``max_total_bytes`` and at most ``MAX_ARCHIVE_RATIO`` × the archive's size (beyond
    ``ARCHIVE_RATIO_FLOOR``). Storage: the free disk space above ``min_free_bytes()`` and the data folder's
    quota: through ``reserve`` (the ledger, see :class:`Budget`), or, with only ``quota_dir``, what is left
    of ``data_quota_bytes()`` after the bytes of the files under that folder.
    """
    ratio_limit = max(ARCHIVE_RATIO_FLOOR, MAX_ARCHIVE_RATIO * archive_bytes)
    if ratio_limit < max_total_bytes:
        expand_limit = ratio_limit
        expand_message = (
            f"The archive unpacks to more than {MAX_ARCHIVE_RATIO}× its own size "
            f"({archive_bytes / _MIB:.1f} MiB); refusing it as a possible zip bomb."
        )
    else:
        expand_limit = max_total_bytes
        expand_message = (
            f"The archive unpacks to more than the {max_total_bytes / _MIB:.0f} MiB allowed; refusing it as a "
            "possible zip bomb. Split the dataset or remove large files."
        )
    free = shutil.disk_usage(target).free - min_free_bytes()
    store_limit = free
    store_message = (
        f"Not enough free disk space: the server keeps {min_free_bytes() // _MIB} MiB free "
        f"({MIN_FREE_ENV}) and has {max(free, 0) / _MIB:.0f} MiB more; free some space or delete datasets."
    )
    if quota_dir is not None and reserve is None:
        quota = data_quota_bytes()
        left = quota - folder_bytes(quota_dir)
        if left < store_limit:
            store_limit, store_message = left, quota_message(quota, left)
    elif reserve is not None:
        data_quota_bytes()  # a malformed CNNDASH_DATA_QUOTA_MB is refused before anything is read
    budget = Budget(expand_limit, expand_message, store_limit, store_message, reserve=reserve)
    budget.check(min(declared_bytes, expand_limit + 1))  # what the headers declare must fit already
    return budget


def disk_error(exc: OSError, what: str) -> DatasetError:
    """An OSError while writing an upload, as a DatasetError a person can act on."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DatasetError(
            "The disk is full while writing {what}; free some space and try again.", what=what
        )
    if exc.errno == errno.ENAMETOOLONG:
        return DatasetError("{what} has a name too long for this filesystem; shorten it.", what=what)
    reason = exc.strerror or type(exc).__name__
    return DatasetError(
        "{what} could not be written ({reason}); rename or remove it and try again.", what=what, reason=reason
    )
