"""The datasets' metadata in SQLite (domain ``"datasets"`` of :mod:`cnndash.store.db`): what exists and what
refers to what. Bytes stay files (:mod:`cnndash.data.contents`); this module never reads an image.

Tables (``docs/storage.md`` draws them; their schema, the connection and the names' listing live in
:mod:`cnndash.data.names`, which imports no PyTorch, and are re-exported here):

- ``contents``: immutable image folders: an upload, a built-in written as PNGs, a zip given by path. Each
  has its folder (relative to the data folder) and the bytes it stores, measured once, each file once.
- ``datasets``: a name points at a content (an upload) or at a version; replacing a dataset is one
  ``UPDATE`` of that pointer.
- ``versions``, ``version_images``, ``steps``, ``step_changes``: a version is its base's content and its
  current manifest (every image's origin, class and path now), plus every edit step with what undoing it
  needs. An edit changes the rows of the images it moves, nothing else.
- ``snapshots``, ``snapshot_images``, ``pins``: what a run (or a label check) trained on, frozen; a
  content or snapshot that a pin holds is never removed.
- ``reservations``: bytes an import in flight may still write; the quota counts them with the contents.
- ``trash``: content folders no longer referenced, removed after the transaction that freed them.

Liveness without pids: every process that stages files holds an ``flock`` on its own file under
``contents/.owners``; the kernel drops the lock when the process dies, so a sweep knows which staging
folders and reservations belong to nobody without trusting a pid.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cnndash.data.images import DatasetError
from cnndash.data.limits import data_quota_bytes, quota_message
from cnndash.data.names import (  # noqa: F401  the schema, the connection and the names live there, torch-free
    BUILTIN_DATASETS,
    DOMAIN,
    MIGRATIONS,
    SCHEMA_V1,
    data_root,
    dataset_names,
    db,
)
from cnndash.store import db as store_db

CONTENTS_DIR = "contents"  # under the data folder: one folder per content, named by its id
OWNERS_DIR = ".owners"  # under contents/: one locked file per live process that stages files
STAGING_PREFIX = ".staging-"  # contents/.staging-<owner>-<id>: an import being written
TRASH_PREFIX = ".trash-"  # a freed folder being removed
UPLOAD, BUILTIN, ZIP = "upload", "builtin", "zip"  # kinds of content
RESERVE_CHUNK = 8 * 2**20  # a reservation grows by at least this much, so a big import commits rarely
NAME_MAX_CHARS = 64  # longest dataset name
NAME_SUFFIX_STEM = NAME_MAX_CHARS - 4  # a taken name gets "-2", "-3", … (up to "-999") after this many
_NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{NAME_MAX_CHARS - 1}}}")


transaction = store_db.transaction


def contents_dir(data_dir: Path | None = None) -> Path:
    """Where contents live: ``data_dir()/contents``."""
    return data_root(data_dir) / CONTENTS_DIR


# --------------------------------------------------------------------------------------------------
# Owners: one flock per live process, so that a sweep can tell a dead process's leftovers from work
# in progress without reading a pid.

_owners: dict[tuple[str, int], tuple[str, int]] = {}  # (contents dir, pid) -> (token, locked fd)
_owners_lock = threading.Lock()


def owner_token(data_dir: Path | None = None) -> str:
    """This process's owner token in ``data_dir`` (created and locked on first use, held until exit)."""
    folder = contents_dir(data_dir) / OWNERS_DIR
    key = (str(folder.resolve()), os.getpid())
    with _owners_lock:
        if key in _owners:
            return _owners[key][0]
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            token = secrets.token_hex(6)
            path = folder / token
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:  # a sweep may have removed the file between its creation and the lock: then start again
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        _owners[key] = (token, fd)
        return token


def owner_alive(token: str, data_dir: Path | None = None) -> bool:
    """True while the process that holds ``token`` lives; a dead owner's file is removed here."""
    if not token or "/" in token or token.startswith("."):
        return False
    path = contents_dir(data_dir) / OWNERS_DIR / token
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        path.unlink(missing_ok=True)  # unlinked while locked: a late owner sees another inode and retries
        return False
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------------
# Contents and names


def check_dataset_name(name: str) -> str:
    """Return ``name`` if it can name a stored dataset, else raise :class:`DatasetError` saying why."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DatasetError(
            "Dataset name {name} is not allowed: use 1–{name_max_chars} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            name=repr(name),
            name_max_chars=NAME_MAX_CHARS,
        )
    if name.lower() in BUILTIN_DATASETS:
        raise DatasetError("{name} is the name of a built-in dataset; choose another name.", name=repr(name))
    return name


def is_plain_name(text: str) -> bool:
    """A bare name (no path separators), as stored datasets are named."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", text))


@dataclass(frozen=True)
class Content:
    """One immutable image folder and what it costs."""

    id: str
    folder: str  # relative to the data folder
    kind: str
    key: str | None
    source: str
    bytes: int
    files: int


def _content(row: sqlite3.Row | None) -> Content | None:
    if row is None:
        return None
    return Content(
        row["id"], row["folder"], row["kind"], row["key"], row["source"], row["bytes"], row["files"]
    )


def get_content(conn: sqlite3.Connection, content_id: str) -> Content | None:
    return _content(conn.execute("SELECT * FROM contents WHERE id = ?", (content_id,)).fetchone())


def content_by_key(conn: sqlite3.Connection, kind: str, key: str) -> Content | None:
    return _content(conn.execute("SELECT * FROM contents WHERE kind = ? AND key = ?", (kind, key)).fetchone())


def content_folder(content: Content, data_dir: Path | None = None) -> Path:
    return data_root(data_dir) / content.folder


def add_content(conn: sqlite3.Connection, content: Content) -> None:
    conn.execute(
        "INSERT INTO contents (id, folder, kind, key, source, bytes, files, created) VALUES (?,?,?,?,?,?,?,?)",
        (content.id, content.folder, content.kind, content.key, content.source, content.bytes,
         content.files, time.time()),
    )  # fmt: skip


def dataset_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    """``(name, content, version)`` of a stored dataset or version; None when no such name."""
    return conn.execute("SELECT name, content, version FROM datasets WHERE name = ?", (name,)).fetchone()


def free_name(conn: sqlite3.Connection, name: str, on_exists: str) -> str:
    """The name a new dataset gets inside the current transaction: ``name``; or, when it is taken,
    ``name-2``, ``name-3``, … (``"suffix"``), ``name`` itself (``"replace"``: the caller repoints it),
    or :class:`DatasetError` (``"error"``)."""
    if dataset_row(conn, name) is None or on_exists == "replace":
        return name
    if on_exists != "suffix":
        raise DatasetError(
            "A dataset named {name} already exists; choose another name or delete it first.", name=repr(name)
        )
    number = 2
    while dataset_row(conn, chosen := f"{name[:NAME_SUFFIX_STEM]}-{number}") is not None:
        number += 1
    return chosen


def point_name(
    conn: sqlite3.Connection, name: str, *, content: str | None = None, version: int | None = None
) -> None:
    """Make ``name`` mean ``content`` (an upload) or ``version`` — a new name, or a replaced one."""
    conn.execute(
        "INSERT INTO datasets (name, content, version, created) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO "
        "UPDATE SET content = excluded.content, version = excluded.version, created = excluded.created",
        (name, content, version, time.time()),
    )


# --------------------------------------------------------------------------------------------------
# The quota ledger: contents' bytes (each stored file once) plus the reservations of imports in flight


def quota_used(conn: sqlite3.Connection) -> int:
    """Bytes the data folder's quota counts now."""
    stored = conn.execute("SELECT coalesce(sum(bytes), 0) FROM contents").fetchone()[0]
    reserved = conn.execute("SELECT coalesce(sum(bytes), 0) FROM reservations").fetchone()[0]
    return int(stored) + int(reserved)


def reserve(conn: sqlite3.Connection, token: str, owner: str, total: int) -> int:
    """Grow reservation ``token`` so that it covers ``total`` bytes; return the bytes now reserved.

    Refuses (:class:`DatasetError` naming the quota) when the quota cannot hold ``total`` next to what
    the others store and reserve. Runs in its own immediate transaction (or the caller's)."""
    quota = data_quota_bytes()
    with transaction(conn):
        row = conn.execute("SELECT bytes FROM reservations WHERE token = ?", (token,)).fetchone()
        mine = int(row[0]) if row else 0
        others = quota_used(conn) - mine
        if others + total > quota:
            raise DatasetError(quota_message(quota, quota - others))
        granted = max(mine, min(total + RESERVE_CHUNK, quota - others))
        conn.execute(
            "INSERT INTO reservations (token, owner, bytes, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(token) DO UPDATE SET bytes = excluded.bytes",
            (token, owner, granted, time.time()),
        )
    return granted


def drop_reservation(conn: sqlite3.Connection, token: str) -> None:
    conn.execute("DELETE FROM reservations WHERE token = ?", (token,))


# --------------------------------------------------------------------------------------------------
# References and garbage: an upload's content lives while a name, a version, a snapshot or a pin needs it

_UNREFERENCED = """
SELECT id, folder FROM contents c WHERE kind = 'upload'
  AND NOT EXISTS (SELECT 1 FROM datasets d WHERE d.content = c.id)
  AND NOT EXISTS (SELECT 1 FROM versions v WHERE v.base_content = c.id)
  AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.base_content = c.id)
  AND NOT EXISTS (SELECT 1 FROM pins p WHERE p.content = c.id)
"""


def collect(conn: sqlite3.Connection) -> list[str]:
    """Inside a transaction: forget snapshots no pin holds and uploads nothing refers to; their folders
    go to the ``trash`` table (removed by :func:`cnndash.data.contents.empty_trash` after the commit)."""
    conn.execute(
        "DELETE FROM snapshots WHERE NOT EXISTS (SELECT 1 FROM pins p WHERE p.snapshot = snapshots.id)"
    )
    freed = [(row["id"], row["folder"]) for row in conn.execute(_UNREFERENCED)]
    for content_id, folder in freed:
        conn.execute("DELETE FROM contents WHERE id = ?", (content_id,))
        conn.execute("INSERT OR IGNORE INTO trash (folder, since) VALUES (?, ?)", (folder, time.time()))
    return [folder for _, folder in freed]


def trash_folders(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT folder FROM trash ORDER BY folder")]


def versions_on(conn: sqlite3.Connection, content_id: str) -> list[str]:
    """Names of the versions whose base is ``content_id``."""
    rows = conn.execute(
        "SELECT d.name FROM datasets d JOIN versions v ON d.version = v.id WHERE v.base_content = ? "
        "ORDER BY d.name",
        (content_id,),
    )
    return [row[0] for row in rows]
