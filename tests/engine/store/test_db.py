"""The SQLite core (cnndash.store.db): migrations per domain, immediate transactions, processes at once."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest

from cnndash.store import db

MIGRATIONS = [
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",
    "ALTER TABLE counters ADD COLUMN note TEXT DEFAULT '';",
]


def test_migrations_apply_once_per_domain_and_a_newer_database_is_refused(tmp_path):
    conn = db.connect("test", MIGRATIONS[:1], data_dir=tmp_path)
    conn.execute("INSERT INTO counters VALUES ('a', 1)")
    conn = db.connect("test", MIGRATIONS, data_dir=tmp_path)  # the second script is added later
    assert tuple(conn.execute("SELECT value, note FROM counters").fetchone()) == (1, "")
    row = conn.execute("SELECT version FROM schema_versions WHERE domain = 'test'").fetchone()
    assert row["version"] == 2
    db._migrated.clear()
    with pytest.raises(RuntimeError, match="newer cnndash"):
        db.connect("test", MIGRATIONS[:1], data_dir=tmp_path)
    assert db.database_path(tmp_path).name == db.DB_FILE


def test_a_failed_transaction_leaves_nothing(tmp_path):
    conn = db.connect("test", MIGRATIONS, data_dir=tmp_path)
    with pytest.raises(ZeroDivisionError), db.transaction(conn):
        conn.execute("INSERT INTO counters (name, value) VALUES ('b', 1)")
        raise ZeroDivisionError
    assert conn.execute("SELECT count(*) FROM counters").fetchone()[0] == 0


def _add(data_dir: str, times: int) -> None:
    conn = db.connect("test", MIGRATIONS, data_dir=data_dir)
    for _ in range(times):
        with db.transaction(conn):  # read, then write: only safe when the write lock is taken first
            (value,) = conn.execute("SELECT value FROM counters WHERE name = 'n'").fetchone()
            conn.execute("UPDATE counters SET value = ? WHERE name = 'n'", (value + 1,))


def test_read_modify_write_from_several_processes_loses_no_update(tmp_path):
    conn = db.connect("test", MIGRATIONS, data_dir=tmp_path)
    conn.execute("INSERT INTO counters (name, value) VALUES ('n', 0)")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add, args=(str(tmp_path), 50)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert conn.execute("SELECT value FROM counters WHERE name = 'n'").fetchone()[0] == 150
    assert isinstance(conn, sqlite3.Connection)
