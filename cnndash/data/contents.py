"""The bytes of the dataset store: content folders, written under a hidden name and published by one rename.

A content is an immutable image folder under ``data_dir()/contents/<id>``. It is written inside a
:class:`Staging` folder, ``contents/.staging-<owner>-<id>``, whose bytes are reserved in the quota ledger as
they are written; :meth:`Staging.publish` measures it, registers it, lets the caller point a name at it and
renames it into place — all in one transaction, so a content exists for other processes complete or not
at all. A ``kill -9`` at any instant leaves either a staging folder of a dead owner or an unregistered
folder, both removed by the next sweep (:mod:`cnndash.data.startup`).

Freed contents (nothing refers to them any more, :func:`cnndash.data.catalog.collect`) are listed in the
``trash`` table by the transaction that frees them and removed by :func:`empty_trash` after it commits.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from cnndash.data import catalog
from cnndash.data.archive import extract_image_zip
from cnndash.data.builtin import builtin_arrays, builtin_key, builtin_path, parse_builtin
from cnndash.data.catalog import BUILTIN, CONTENTS_DIR, STAGING_PREFIX, ZIP, Content, transaction
from cnndash.data.folders import find_dataset_root
from cnndash.data.images import DatasetError

_HASH_CHUNK = 2**20  # bytes per read when hashing a zip for the extraction cache
_CACHE_KEY_CHARS = 16  # hex digits of a zip's SHA-256 that key its cached extraction (64 bits: no clashes)

Register = Callable[[sqlite3.Connection, Content], None]


def measure(folder: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``folder``, each file (inode) counted once."""
    seen: set[tuple[int, int]] = set()
    total = files = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            total += stat.st_size
            files += 1
    return total, files


class Staging:
    """A private folder under ``contents/`` and its reservation in the quota ledger (see the module)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = catalog.data_root(data_dir)
        self.owner = catalog.owner_token(self.data_dir)
        self.id = secrets.token_hex(8)
        self.path = catalog.contents_dir(self.data_dir) / f"{STAGING_PREFIX}{self.owner}-{self.id}"
        self.conn = catalog.db(self.data_dir)
        self.published = False

    def reserve(self, total: int) -> int:
        """Reserve ``total`` bytes (or more) for this folder; :class:`DatasetError` over the quota."""
        return catalog.reserve(self.conn, self.id, self.owner, total)

    def publish(
        self, *, kind: str, key: str | None = None, source: str = "", register: Register | None = None
    ) -> Content:
        """Register the folder as a content and rename it into place, in one transaction in which
        ``register(conn, content)`` may point a name at it (raising there publishes nothing)."""
        size, files = measure(self.path)
        content = Content(self.id, f"{CONTENTS_DIR}/{self.id}", kind, key, source, size, files)
        final = catalog.contents_dir(self.data_dir) / self.id
        renamed = False
        try:
            with transaction(self.conn):
                catalog.drop_reservation(self.conn, self.id)
                catalog.add_content(self.conn, content)
                if register is not None:
                    register(self.conn, content)
                os.rename(self.path, final)  # last: the one step that makes the bytes visible
                renamed = True
        except BaseException:
            if self.conn.in_transaction:  # COMMIT itself failed
                self.conn.execute("ROLLBACK")
            if renamed:  # never leave a published folder the database does not know (a sweep may be first)
                with suppress(OSError):
                    os.rename(final, self.path)
            raise
        self.published = True
        return content


@contextmanager
def staging(data_dir: Path | None = None) -> Iterator[Staging]:
    """A :class:`Staging` folder, removed with its reservation on exit unless it was published."""
    stage = Staging(data_dir)
    stage.path.mkdir(parents=True)
    try:
        yield stage
    finally:
        if not stage.published:
            shutil.rmtree(stage.path, ignore_errors=True)
            with transaction(stage.conn):
                catalog.drop_reservation(stage.conn, stage.id)


def free_unreferenced(data_dir: Path | None = None) -> None:
    """Forget what nothing refers to any more, then remove its folders."""
    conn = catalog.db(data_dir)
    with transaction(conn):
        catalog.collect(conn)
    empty_trash(data_dir)


def empty_trash(data_dir: Path | None = None) -> None:
    """Remove the folders the ``trash`` table lists; each row goes only once its folder is gone, so a
    folder half-removed by a killed process is finished by the next sweep (and never adopted back)."""
    conn = catalog.db(data_dir)
    root = catalog.data_root(data_dir)
    for folder in catalog.trash_folders(conn):
        shutil.rmtree(root / folder, ignore_errors=True)
        if not (root / folder).exists():
            with transaction(conn):
                conn.execute("DELETE FROM trash WHERE folder = ?", (folder,))


def _cached(kind: str, key: str, data_dir: Path | None, write: Callable[[Staging], str]) -> Content:
    """The content ``(kind, key)``: the one stored, or written once by ``write(stage)`` (which returns
    its source text); two processes writing it at once keep the first one registered."""
    conn = catalog.db(data_dir)
    found = catalog.content_by_key(conn, kind, key)
    if found is not None:
        return found
    with staging(data_dir) as stage:
        source = write(stage)
        try:
            return stage.publish(kind=kind, key=key, source=source)
        except sqlite3.IntegrityError:  # published meanwhile by another caller: identical, use theirs
            found = catalog.content_by_key(conn, kind, key)
            if found is None:
                raise
            return found


def builtin_content(text: str, data_dir: Path | None = None) -> Content:
    """The built-in ``text`` written as ``class_name/<index>.png`` files (lossless), on first use."""
    if parse_builtin(text)[0] is None:
        raise DatasetError("{text} is not a built-in dataset.", text=repr(text))

    def write(stage: Staging) -> str:
        classes, images, targets = builtin_arrays(text, base=catalog.data_root(data_dir))  # type: ignore[misc]
        for i, (pixels, target) in enumerate(zip(images, targets, strict=True)):
            path = stage.path / builtin_path(classes, int(target), i)
            path.parent.mkdir(exist_ok=True)
            mode = "L" if pixels.shape[-1] == 1 else "RGB"
            Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode).save(path)
        stage.reserve(measure(stage.path)[0])
        return text

    return _cached(BUILTIN, builtin_key(text), data_dir, write)


def zip_sha256(zip_path: Path) -> str:
    digest = hashlib.sha256()
    with open(zip_path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def zip_content(zip_path: Path, data_dir: Path | None = None, *, digest: str | None = None) -> Content:
    """A zip given by path (the CLI's ``--dataset x.zip``), extracted once per content hash."""
    key = (digest or zip_sha256(zip_path))[:_CACHE_KEY_CHARS]

    def write(stage: Staging) -> str:
        extract_image_zip(zip_path, stage.path, reserve=stage.reserve)
        return str(Path(zip_path).name)

    return _cached(ZIP, key, data_dir, write)


def content_root(content: Content, data_dir: Path | None = None) -> Path:
    """The dataset root inside a content's folder (past single wrapper folders)."""
    folder = catalog.content_folder(content, data_dir)
    if not folder.is_dir():
        raise DatasetError(
            "The files of dataset content {content_id} are missing from {folder_parent}; the data folder "
            "was changed by hand. Import the dataset again.",
            content_id=content.id,
            folder_parent=folder.parent,
        )
    return find_dataset_root(folder)


@dataclass(frozen=True)
class Base:
    """A dataset that is not a version, as the base of one: its content (an upload, a built-in's files, a
    zip given by path) or, for a folder given by path, that folder (read as it is at each use)."""

    name: str
    content: Content | None = None
    path: Path | None = None

    def root(self, data_dir: Path | None = None) -> Path:
        if self.content is not None:
            return content_root(self.content, data_dir)
        assert self.path is not None
        if not self.path.is_dir():
            raise DatasetError(
                "The folder {path} this dataset is built on no longer exists.", path=repr(str(self.path))
            )
        return find_dataset_root(self.path)


def resolve_base(text: str, data_dir: Path | None = None) -> Base | None:
    """``text`` as a :class:`Base`: a built-in, a stored upload, a folder or a zip given by path. None
    for a version's name or a name nothing answers to."""
    if parse_builtin(text)[0] is not None:
        return Base(text, content=builtin_content(text, data_dir))
    conn = catalog.db(data_dir)
    if catalog.is_plain_name(text):
        row = catalog.dataset_row(conn, text)
        if row is not None:
            found = catalog.get_content(conn, row["content"]) if row["content"] else None
            return Base(text, content=found) if found is not None else None
    path = Path(text).expanduser()
    if path.is_dir():
        return Base(text, path=path.resolve())
    if path.is_file() and path.suffix.lower() == ".zip":
        return Base(text, content=zip_content(path, data_dir))
    return None
