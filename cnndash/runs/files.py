"""Atomic files and run ownership: the low-level half of the run store.

Every write goes to a temporary file in the same folder and is moved into place, so a reader (a page, a
second tab, another process) sees the old file or the new one, never half of one.

A run that says ``running`` names its owner: the process (pid, and its start time so that a reused pid
after a restart is not mistaken for it) and, inside that process, whether the run is still registered as
training. A run whose owner is gone is ``interrupted``.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

STATUS_FILE = "status.json"


class RunError(ValueError):
    """A run that does not exist, or whose files are missing or unreadable; the message names the fix."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to ``path`` and move it into place, so readers see the old or the new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


# --------------------------------------------------------------------------------------------------
# Ownership of a running run


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:  # not Linux: pid + start time below are still checked where available
        return None


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its closing ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of the whole line


_BOOT_ID = _boot_id()
_OWN_PID = os.getpid()
_OWN_START = process_start(_OWN_PID)
# Run folders this process is training right now (registered by RunWriter while a run is open).
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


def owner_record() -> dict:
    """Who is writing: stored in status.json so another process (or a restarted server) can tell."""
    return {"pid": os.getpid(), "pid_start": process_start(os.getpid()), "boot_id": _BOOT_ID}


def mark_active(run_dir: Path, active: bool) -> None:
    key = str(Path(run_dir).resolve())
    with _ACTIVE_LOCK:
        (_ACTIVE.add if active else _ACTIVE.discard)(key)


def owner_alive(status: dict, run_dir: Path) -> bool:
    """Is the process that wrote this ``running`` status still training this run?"""
    pid = status.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:  # -1/0 would name a process group
        return False
    if status.get("boot_id") and _BOOT_ID and status["boot_id"] != _BOOT_ID:
        return False  # written before the machine restarted
    if pid == os.getpid() and status.get("pid_start") in (None, _OWN_START):
        with _ACTIVE_LOCK:  # this very process: is the run still registered as training?
            return str(Path(run_dir).resolve()) in _ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        pass  # exists, owned by another user
    recorded = status.get("pid_start")
    return recorded is None or process_start(pid) in (None, recorded)


def write_status(run_dir: Path, status: str, message: str = "", **extra: Any) -> None:
    """Record the run's state with its owner, so a dead run can be told from a live one."""
    data = {"status": status, "message": message, **owner_record(), "updated": time.time(), **extra}
    write_json_atomic(Path(run_dir) / STATUS_FILE, data)
