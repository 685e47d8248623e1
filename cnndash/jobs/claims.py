"""What may run together, enforced in one place for every process: the ``jobs`` table of the SQLite core.

Every job — a training run in a thread of the app, a torchrun run the app launched, a label check, and a
``python -m cnndash train`` from a terminal — first takes a :class:`Claim`: one row, inserted in a
``BEGIN IMMEDIATE`` transaction after :func:`conflict` found no live job it may not run beside. The rule:

- one training per device (the CPU, the GPU, MPS); a search (:mod:`cnndash.search.job`) trains its trials on
  its device and counts as a training there;
- a label check never beside a training, nor beside another label check;
- one job per run folder.

A claim's id is also the owner token of the run's lease (:mod:`cnndash.runs.lease`) and of stop requests.
A row is live while its process renews it (a heartbeat thread, every ``lease_seconds()``) or while the run
it trains holds a fresh lease under the same id — so a torchrun run outlives the server that launched it,
and a process killed with ``kill -9`` frees its device once its row and lease go stale. Rows that are
neither are deleted by the next claim. Nothing here records or trusts a pid.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cnndash import paths
from cnndash.errors import UserError
from cnndash.runs.lease import lease_seconds, live_owner, new_owner, stale_after
from cnndash.store import db

log = logging.getLogger("cnndash.jobs.claims")
TRAINING, LABEL_CHECK, SEARCH = "training", "label_check", "search"
MIGRATIONS = [
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,          -- the owner token (the run's lease, stop requests)
        holder TEXT NOT NULL,         -- the registry (or CLI process) that started it
        kind TEXT NOT NULL,           -- training | label_check | search
        device TEXT NOT NULL,         -- cpu | cuda | mps
        name TEXT NOT NULL,           -- the run's name, or the label check's key
        run_dir TEXT NOT NULL,        -- the run folder ('' for a label check)
        processes INTEGER NOT NULL,   -- torchrun processes (1: a thread or a plain CLI run)
        config TEXT NOT NULL,         -- the TrainConfig as JSON ('' for a label check)
        started REAL NOT NULL,
        renewed REAL NOT NULL,
        interval REAL NOT NULL        -- the holder renews every this many seconds
    );
    """
]


class JobBusyError(UserError):
    """A job may not start now: another live job holds what it needs (the message names it)."""


@dataclass(frozen=True)
class JobRow:
    """One live job as the table records it."""

    id: str
    holder: str
    kind: str
    device: str
    name: str
    run_dir: str
    processes: int
    config: str
    started: float
    renewed: float
    interval: float

    def config_dict(self) -> dict | None:
        try:
            value = json.loads(self.config) if self.config else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def conflict(kind: str, device: str, run_dir: str, other: JobRow) -> str | None:
    """Why a new job (``kind`` on ``device`` in ``run_dir``) may not start beside ``other``; None if it may."""
    if run_dir and other.run_dir == run_dir:
        return (
            f"Run {other.name!r} is already training; wait for it to finish or stop it first (if its process "
            "was just killed, it counts as training until its lease goes stale, a few seconds)."
        )
    if kind == LABEL_CHECK and other.kind == LABEL_CHECK:
        return (
            f"Label issues are already being computed (for run {other.name!r}); wait for them or stop them "
            "first."
        )
    if kind == LABEL_CHECK:
        return (
            f"Run {other.name!r} is training; checking every image trains several more runs. Wait for it to "
            "finish or stop it on the Training page, then start the check again."
        )
    if other.kind == LABEL_CHECK:
        return (
            f"The label check of run {other.name!r} is training its folds; wait for it to finish or stop it "
            "on Evaluation → Data, then start this run."
        )
    if other.kind == SEARCH and other.device == device:
        return (
            f"A search ({other.name!r}) is training on the {device.upper()}; wait for it to finish or stop it, "
            "then start again."
        )
    if other.device == device:
        return (
            f"Run {other.name!r} is already training on the {device.upper()}; wait for it to finish or stop "
            "it, then start again."
        )
    return None


def _connect(data_dir: Path) -> sqlite3.Connection:
    return db.connect("jobs", MIGRATIONS, data_dir=data_dir)


def _rows(conn: sqlite3.Connection) -> list[JobRow]:
    return [JobRow(**dict(row)) for row in conn.execute("SELECT * FROM jobs ORDER BY started")]


def is_live(row: JobRow, now: float | None = None) -> bool:
    """Its holder renewed it recently, or the run it trains holds a fresh lease under its id."""
    now = time.time() if now is None else now
    if now - row.renewed <= stale_after(row.interval):
        return True
    return bool(row.run_dir) and live_owner(Path(row.run_dir)) == row.id


def live_jobs(data_dir: Path | None = None) -> list[JobRow]:
    """Every live job of the data folder, oldest first."""
    conn = _connect(_data_dir(data_dir))
    now = time.time()
    return [row for row in _rows(conn) if is_live(row, now)]


def _data_dir(data_dir: Path | None) -> Path:
    return (Path(data_dir) if data_dir is not None else paths.data_dir()).resolve()


@dataclass
class Claim:
    """A job's row, renewed by this process's heartbeat until :meth:`release`."""

    id: str
    data_dir: Path
    interval: float

    def release(self) -> None:
        """The job ended: its row goes (idempotent). Should the database refuse, the row is no longer renewed
        and counts as ended once stale, so the job's end is never held up by it."""
        _HEARTBEAT.forget(self)
        try:
            with db.transaction(_connect(self.data_dir)) as conn:
                conn.execute("DELETE FROM jobs WHERE id = ?", (self.id,))
        except sqlite3.Error:
            log.exception("releasing job %s failed; its row goes stale instead", self.id)

    def alive(self) -> bool:
        """The row is still there and live (False once released or gone stale)."""
        row = _connect(self.data_dir).execute("SELECT * FROM jobs WHERE id = ?", (self.id,)).fetchone()
        return row is not None and is_live(JobRow(**dict(row)))


def claim(
    kind: str,
    device: str,
    name: str,
    *,
    holder: str,
    run_dir: Path | None = None,
    processes: int = 1,
    config: dict | None = None,
    job_id: str | None = None,
    error: type[JobBusyError] = JobBusyError,
    data_dir: Path | None = None,
) -> Claim:
    """Insert a job's row unless a live job forbids it (``error`` naming that job); dead rows are removed."""
    where = _data_dir(data_dir)
    interval = lease_seconds()
    run_text = str(Path(run_dir).resolve()) if run_dir is not None else ""
    job = Claim(job_id or new_owner(), where, interval)
    conn = _connect(where)
    with db.transaction(conn):
        now = time.time()
        for row in _rows(conn):
            if row.id == job.id:
                continue  # the same job again (a torchrun group restarted): it takes its row over
            if not is_live(row, now):
                conn.execute("DELETE FROM jobs WHERE id = ?", (row.id,))
            elif (why := conflict(kind, device, run_text, row)) is not None:
                raise error(why)
        conn.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.id, holder, kind, device, name, run_text, processes, json.dumps(config) if config else "",
             now, now, interval),
        )  # fmt: skip
    _HEARTBEAT.keep(job)
    return job


class _Heartbeat:
    """One daemon thread per process renewing every claim it holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, Claim] = {}
        self._thread: threading.Thread | None = None

    def keep(self, job: Claim) -> None:
        with self._lock:
            self._claims[job.id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="cnndash-job-heartbeat", daemon=True)
                self._thread.start()

    def forget(self, job: Claim) -> None:
        with self._lock:
            self._claims.pop(job.id, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                held = list(self._claims.values())
            if not held:
                with self._lock:
                    if not self._claims:
                        self._thread = None
                        return
                continue
            time.sleep(min(job.interval for job in held))
            for job in held:
                try:
                    with db.transaction(_connect(job.data_dir)) as conn:
                        conn.execute("UPDATE jobs SET renewed = ? WHERE id = ?", (time.time(), job.id))
                except sqlite3.Error:  # a busy or vanished database: the next beat tries again
                    continue


_HEARTBEAT = _Heartbeat()
