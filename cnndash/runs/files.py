"""Atomic files, and a run's files read forgivingly: the low-level half of the run store.

Every write goes to a temporary file in the same folder and is moved into place, so a reader (a page, a
second tab, another process) sees the old file or the new one, never half of one. The temporary names are
hidden (``.<name>.<random>.tmp``); a process killed mid-write leaves one behind, which
:func:`cnndash.runs.store.sweep_runs` removes once nobody trains the run.

Who trains a run is not recorded here (no pid is ever trusted): see :mod:`cnndash.runs.lease`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cnndash.runs.layout import METRICS_FILE, PROCESS_LOG, STATUS_FILE, SUMMARY_FILE, TMP_SUFFIX, RunError

__all__ = [
    "RunError",
    "metric_rows",
    "read_json",
    "read_process_log",
    "read_status",
    "read_summary",
    "save_atomic",
    "write_json_atomic",
    "write_status",
]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON next to ``path`` and move it into place, so readers see the old or the new file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: Path, check: Any = None) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` it over ``path``.

    ``check(tmp_path)``, when given, runs once the bytes are written and before they replace ``path``
    (the runs quota): raising there leaves ``path`` as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        if check is not None:
            check(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The parsed file, or None when it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def read_status(run_dir: Path) -> dict:
    """The run's ``status.json`` as written (``status``, ``message`` and what the writer added); empty when
    missing or unreadable."""
    data = read_json(Path(run_dir) / STATUS_FILE)
    return data if isinstance(data, dict) else {}


def write_status(run_dir: Path, status: str, message: str = "", **extra: Any) -> None:
    """Record the run's state (``running`` counts only while the run's lease is fresh)."""
    data = {"status": status, "message": message, "updated": time.time(), **extra}
    write_json_atomic(Path(run_dir) / STATUS_FILE, data)


def read_summary(run_dir: Path) -> dict | None:
    summary = read_json(Path(run_dir) / SUMMARY_FILE)
    return summary if isinstance(summary, dict) else None


def metric_rows(run_dir: Path) -> tuple[dict, ...]:
    """``metrics.csv`` as dicts (``epoch`` an int, the rest floats); () when missing or damaged."""
    try:
        with open(Path(run_dir) / METRICS_FILE, newline="") as handle:
            return tuple(
                {k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                for row in csv.DictReader(handle)
            )
    except (OSError, ValueError, TypeError):
        return ()


def read_process_log(run_dir: Path, limit: int = 20_000) -> str:
    """The last ``limit`` bytes of ``run_dir/train.log`` as text ("" when there is none)."""
    try:
        with open(Path(run_dir) / PROCESS_LOG, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
