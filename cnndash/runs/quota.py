"""The runs quota: what the runs folder may hold, beside the data folder's quota.

``CNNDASH_RUNS_QUOTA_MB`` (default :data:`RUNS_QUOTA_MB`) bounds the bytes stored under the runs folder
(``cnndash.paths.runs_dir()``), each file counted once however many hard links it has. When it is full:

- a new run is refused before anything is written (:func:`check_new_run`);
- a checkpoint is written to a hidden file first and checked before it replaces the previous one
  (:func:`checkpoint_check`): over the quota, it is removed and the run **fails** with the quota's
  message, keeping its previous ``last.pt`` — delete runs (or raise the quota) and resume it.

Logs (``metrics.csv``, ``batches.csv``, TensorBoard events) are not checked as they are appended (one row
is not worth a walk of the folder); they count towards the total that the next check sees.
A run outside the runs folder (``train --out`` elsewhere) is the operator's and is not counted.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cnndash.paths import runs_dir as default_runs_dir
from cnndash.preprocess import limit_from_env
from cnndash.runs.files import RunError

RUNS_QUOTA_MB = 20_480  # 20 GiB: a few hundred ResNet-18 runs with both checkpoints
RUNS_QUOTA_ENV = "CNNDASH_RUNS_QUOTA_MB"
_MIB = 2**20


class RunsQuotaError(RunError):
    """The runs folder is full: the message says how full and what to delete or raise."""


def runs_quota_bytes() -> int:
    """``RUNS_QUOTA_MB`` (or ``$CNNDASH_RUNS_QUOTA_MB``) in bytes."""
    return limit_from_env(RUNS_QUOTA_ENV, RUNS_QUOTA_MB) * _MIB


def stored_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root``, each file (inode) once; links are not followed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            try:
                stat = os.lstat(os.path.join(dirpath, name))
            except OSError:  # removed meanwhile
                continue
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += stat.st_size
    return total


def _counted_root(run_dir: Path) -> Path | None:
    """The runs folder, when ``run_dir`` lies directly inside it (else the quota does not apply)."""
    root = default_runs_dir()
    try:
        return root if Path(run_dir).resolve().parent == root.resolve() else None
    except OSError:
        return None


def _full(used: int, quota: int, what: str) -> RunsQuotaError:
    return RunsQuotaError(
        "The runs folder is full: {used:,.0f} MiB of its {quota:,} MiB quota ({runs_quota_env}) are "
        "used, so {what}. Delete runs you no longer need (Training → Runs, or `python -m cnndash runs "
        "delete NAME`) or raise {runs_quota_env}.",
        used=used / _MIB,
        quota=quota // _MIB,
        runs_quota_env=RUNS_QUOTA_ENV,
        what=what,
    )


def check_new_run(run_dir: Path) -> None:
    """Refuse a new run in ``run_dir`` while the runs folder is at or over its quota."""
    root = _counted_root(run_dir)
    if root is None:
        return
    quota, used = runs_quota_bytes(), stored_bytes(root)
    if used >= quota:
        raise _full(used, quota, "no new run can start")


def checkpoint_check(target: Path) -> Callable[[Path], None] | None:
    """For :func:`cnndash.runs.files.save_atomic`: refuse a written checkpoint that would replace ``target``
    and leave the runs folder over its quota (the bytes it replaces are counted as freed)."""
    root = _counted_root(Path(target).parent)
    if root is None:
        return None

    def check(_tmp: Path) -> None:
        quota, used = runs_quota_bytes(), stored_bytes(root)  # includes the new hidden file
        try:
            freed = os.lstat(target).st_size
        except OSError:
            freed = 0
        if used - freed > quota:
            raise _full(used - freed, quota, f"checkpoint {Path(target).name} was not saved")

    return check
