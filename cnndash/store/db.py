"""The SQLite core: one database file per data folder, a connection per thread, transactions that take
the write lock up front, and migrations kept per domain.

- **WAL mode** lets readers go on while one writer commits; ``busy_timeout`` makes a second writer wait
  (up to :data:`BUSY_TIMEOUT_S`) instead of failing at once.
- :func:`transaction` runs ``BEGIN IMMEDIATE``: the write lock is taken before the first read, so a
  read-modify-write (an edit that checks the current step, a quota check before a reservation) can never
  interleave with another process's. A ``kill -9`` mid-transaction leaves the database as it was before it.
- **Migrations per domain**: a domain (``"datasets"``, ``"jobs"``, …) passes its ordered list of SQL
  scripts to :func:`connect`; the ones not yet applied run once, in one transaction, recorded in
  ``schema_versions``. Domains never edit each other's lists, so each owns its tables.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cnndash import paths

DB_FILE = "cnndash.sqlite3"
BUSY_TIMEOUT_S = 60.0  # a writer waits this long for another's transaction before giving up

_local = threading.local()  # {(database path, pid): connection} per thread
_migrated: set[tuple[str, str, int]] = set()  # (database, domain, version) known applied in this process
_migrate_lock = threading.Lock()


def database_path(data_dir: Path | None = None) -> Path:
    """Where the metadata of ``data_dir`` (default: ``paths.data_dir()``) lives."""
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / DB_FILE


def _open(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True)
    conn.row_factory = sqlite3.Row
    _wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, never corrupt
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions (domain TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    return conn


def _wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting for other processes: several processes opening a new database at once race to
    convert it, and SQLite answers that race with SQLITE_BUSY at once (its busy handler is not consulted
    for the conversion), so retry until :data:`BUSY_TIMEOUT_S`. Once converted, WAL persists in the file."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def connect(domain: str, migrations: Sequence[str], *, data_dir: Path | None = None) -> sqlite3.Connection:
    """This thread's connection to the database of ``data_dir``, with ``domain``'s migrations applied.

    ``migrations`` is the domain's ordered list of SQL scripts; never edit one that shipped, append a new
    one. A connection is per thread and per process (a forked child opens its own).
    """
    path = database_path(data_dir).resolve() if data_dir is not None else database_path().resolve()
    key = (str(path), os.getpid())
    cache = getattr(_local, "connections", None)
    if cache is None:
        cache = _local.connections = {}
    conn = cache.get(key)
    if conn is None:
        conn = cache[key] = _open(path)
    _migrate(conn, str(path), domain, migrations)
    return conn


def _migrate(conn: sqlite3.Connection, path: str, domain: str, migrations: Sequence[str]) -> None:
    if (path, domain, len(migrations)) in _migrated:
        return
    with _migrate_lock, transaction(conn):
        row = conn.execute("SELECT version FROM schema_versions WHERE domain = ?", (domain,)).fetchone()
        applied = row["version"] if row else 0
        if applied > len(migrations):
            raise RuntimeError(
                f"The database {path} was written by a newer cnndash (schema {domain} v{applied}, this one "
                f"knows v{len(migrations)}); upgrade cnndash or point CNNDASH_DATA_DIR elsewhere."
            )
        for script in migrations[applied:]:
            for statement in _statements(script):
                conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_versions (domain, version) VALUES (?, ?) "
            "ON CONFLICT(domain) DO UPDATE SET version = excluded.version",
            (domain, len(migrations)),
        )
    _migrated.add((path, domain, len(migrations)))


def _statements(script: str) -> list[str]:
    """The statements of a migration script (``executescript`` would commit the open transaction)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()[:80]!r}")
    return out


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception). Nested use joins the outer one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def close_all() -> None:
    """Close this thread's connections (tests that delete a data folder call this first)."""
    for conn in getattr(_local, "connections", {}).values():
        conn.close()
    _local.connections = {}
