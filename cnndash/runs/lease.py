"""Who trains a run right now, without trusting a pid: a lease the trainer renews, and stop requests.

While a run trains, its writer (rank 0 of a torchrun group) rewrites ``lease.json`` every
:func:`lease_seconds` with a random owner token and the time, atomically. A run whose status says
``running`` is really training only while that lease is fresh; a process that died (``kill -9``, a crash,
a lost machine) stops renewing it, and the run reads ``interrupted`` once it is stale
(:data:`STALE_RENEWALS` missed renewals).

Stopping is a request, never a signal: :func:`request_stop` writes ``stop.json`` naming the lease's owner,
and the trainer reads it before each batch (rank 0 reads it; the stop flag is already agreed across ranks).
A request names one owner, so a request left over from an earlier part of the run never stops a resume,
and a copied run folder (whose lease names the original's owner) never reaches the original: each folder
is read only by the trainer writing it. The same request works for a run in a thread of the app, a
torchrun run, a run adopted after a server restart, and ``python -m cnndash runs stop NAME``.

Times are ``time.time()`` of the machine that writes the lease; a reader on another machine (a shared
run folder) needs clocks within a few seconds of each other.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cnndash.runs.files import RunError, read_json, write_json_atomic
from cnndash.runs.layout import LEASE_FILE, STOP_FILE

LEASE_ENV = "CNNDASH_LEASE_SECONDS"
LEASE_SECONDS = 2.0  # how often a trainer renews its lease
STALE_RENEWALS = 5  # a lease not renewed for this many intervals is stale: its owner is gone
MIN_STALE_SECONDS = 1.0  # never stale sooner (a busy disk may delay one write)
STOP_POLL_SECONDS = 0.2  # the trainer reads stop.json at most this often (a stat per batch otherwise)


def lease_seconds() -> float:
    """:data:`LEASE_SECONDS`, or ``$CNNDASH_LEASE_SECONDS`` (tests make it short)."""
    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.01 <= value <= 3600:
        raise ValueError(
            f"{LEASE_ENV}={text!r} is not a number of seconds from 0.01 to 3600; fix or unset it "
            f"(default {LEASE_SECONDS:g})."
        )
    return value


def stale_after(interval: float) -> float:
    """Seconds after its last renewal that a lease renewed every ``interval`` seconds is stale."""
    return max(STALE_RENEWALS * interval, MIN_STALE_SECONDS)


def new_owner() -> str:
    """A fresh owner token (128 random bits)."""
    return secrets.token_hex(16)


def read_lease(run_dir: Path) -> dict | None:
    """The run's lease (``owner``, ``renewed``, ``interval``), or None when there is none or it is malformed."""
    lease = read_json(Path(run_dir) / LEASE_FILE)
    if not isinstance(lease, dict):
        return None
    owner, renewed, interval = lease.get("owner"), lease.get("renewed"), lease.get("interval")
    if not isinstance(owner, str) or not owner:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (renewed, interval)):
        return None
    return lease


def is_fresh(lease: dict | None, now: float | None = None) -> bool:
    """The lease was renewed recently enough that its owner is still training."""
    if lease is None:
        return False
    interval = min(max(float(lease["interval"]), 0.01), 3600.0)
    age = (time.time() if now is None else now) - float(lease["renewed"])
    return -stale_after(interval) <= age <= stale_after(interval)  # a lease from the future is not trusted


def live_owner(run_dir: Path) -> str | None:
    """The owner token of the run's fresh lease; None when nobody is training it."""
    lease = read_lease(run_dir)
    return str(lease["owner"]) if is_fresh(lease) else None


def request_stop(run_dir: Path, owner: str) -> None:
    """Ask the trainer holding lease ``owner`` in ``run_dir`` to stop after its current batch."""
    write_json_atomic(Path(run_dir) / STOP_FILE, {"owner": owner, "requested": time.time()})


def stop_requested_for(run_dir: Path, owner: str) -> bool:
    request = read_json(Path(run_dir) / STOP_FILE)
    return isinstance(request, dict) and request.get("owner") == owner


class Lease:
    """The lease of one trainer on one run folder, renewed by a daemon thread until :meth:`release`."""

    def __init__(self, run_dir: Path, owner: str | None = None, interval: float | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.owner = owner or new_owner()
        self.interval = lease_seconds() if interval is None else interval
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_checked = 0.0
        self._stop_seen = False

    def acquire(self) -> None:
        """Write the lease and keep renewing it; a fresh lease of another owner is a ``RunError``."""
        current = live_owner(self.run_dir)
        if current is not None and current != self.owner:
            raise RunError(
                "Run {run_dir_name} is already being trained by another process; stop it first (python -m "
                "cnndash runs stop {run_dir_name2}) or wait for it to end.",
                run_dir_name=repr(self.run_dir.name),
                run_dir_name2=self.run_dir.name,
            )
        self._write()
        self._thread = threading.Thread(
            target=self._renew, name=f"cnndash-lease-{self.run_dir.name}", daemon=True
        )
        self._thread.start()

    def _write(self) -> None:
        write_json_atomic(
            self.run_dir / LEASE_FILE,
            # host and pid say who it was for a person reading the file; nothing ever signals that pid
            {"owner": self.owner, "renewed": time.time(), "interval": self.interval,
             "host": socket.gethostname(), "pid": os.getpid()},
        )  # fmt: skip

    def _renew(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self._write()
            except OSError:  # a full disk or a vanished folder: try again next time, the run goes on
                continue

    def stop_requested(self) -> bool:
        """A stop request names this lease's owner (read at most every :data:`STOP_POLL_SECONDS`)."""
        if self._stop_seen:
            return True
        now = time.monotonic()
        if now - self._stop_checked >= STOP_POLL_SECONDS:
            self._stop_checked = now
            if (self.run_dir / STOP_FILE).exists():
                self._stop_seen = stop_requested_for(self.run_dir, self.owner)
        return self._stop_seen

    def release(self) -> None:
        """Stop renewing; remove the lease and any stop request addressed to it."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        for name in (LEASE_FILE, STOP_FILE):
            data = read_json(self.run_dir / name)
            if isinstance(data, dict) and data.get("owner") == self.owner:
                (self.run_dir / name).unlink(missing_ok=True)


# Leases held by this process, by (run folder, owner): a job that claims a run holds its lease from the
# start (the page shows it running, delete is refused while its data loads), and the trainer it starts in
# the same process joins that lease instead of writing a second one.
_HELD: dict[tuple[str, str], list] = {}
_HELD_LOCK = threading.Lock()


@contextmanager
def holding(run_dir: Path, owner: str | None = None) -> Iterator[Lease]:
    """Hold the lease of ``run_dir`` for the block (as ``owner``, default a fresh token); nested holds of
    the same folder and owner in this process share one lease, released when the outermost ends."""
    owner = owner or new_owner()
    key = (str(Path(run_dir).resolve()), owner)
    with _HELD_LOCK:
        entry = _HELD.get(key)
        if entry is None:
            lease = Lease(run_dir, owner)
            lease.acquire()
            entry = _HELD[key] = [lease, 0]
        entry[1] += 1
    try:
        yield entry[0]
    finally:
        with _HELD_LOCK:
            entry[1] -= 1
            last = entry[1] == 0
            if last:
                del _HELD[key]
        if last:
            entry[0].release()
