"""The run folder's layout: every file name a run folder holds, and the names a run may have.

Nothing outside :mod:`cnndash.runs` spells a file name of a run folder: trainers, jobs, evaluation and the
pages ask for paths through these functions (or :class:`cnndash.runs.Run`'s methods), so the layout can
change in one place.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from cnndash.errors import UserError
from cnndash.paths import runs_dir as default_runs_dir

CONFIG_FILE = "config.json"  # the resolved TrainConfig
DATASET_FILE = "dataset.json"  # classes, channels, image size, normalisation
METRICS_FILE = "metrics.csv"  # one row per finished epoch
BATCH_LOG = "batches.csv"  # one row per reported training batch
SUMMARY_FILE = "summary.json"
STATUS_FILE = "status.json"  # running | finished | stopped | failed, with a message
LEASE_FILE = "lease.json"  # the trainer's lease: who trains the run now (cnndash.runs.lease)
STOP_FILE = "stop.json"  # a stop request addressed to the lease's owner
LAUNCH_FILE = "launch.json"  # a torchrun run the app started: its TrainConfig and command (no pid)
PROCESS_LOG = "train.log"  # a torchrun run started from the app: the output of torchrun and every rank
EXPORT_DIR = "export"  # the bundle built from the run (cnndash.export)
EVALUATION_FILES = ("confusion_matrix.csv", "classification_report.csv")  # `cnndash evaluate`
CHECKPOINTS = ("best", "last")

# Hidden names: work in progress that a reader never lists, and that a sweep removes once nobody owns it.
TMP_SUFFIX = ".tmp"  # ".<file>.<random>.tmp": a file being written, moved into place when complete
DELETING_PREFIX = ".deleting-"  # a run folder being deleted (renamed first, so it vanishes in one step)
RENDEZVOUS_PREFIX = ".rendezvous-"  # torchrun's file store of an app-started run
_NAME = re.compile(r"[^/\\\x00]+")


class RunError(UserError):
    """A run that does not exist, or whose files are missing or unreadable; the message names the fix."""


class RunNameError(RunError):
    """A run name that is a path, ``.``, ``..`` or empty: runs are named, never located by path."""


def check_run_name(name: object) -> str:
    """``name`` when it names a run folder directly inside the runs folder; :class:`RunNameError` for a
    path, ``.``, ``..``, a hidden name or an empty name (which would reach outside it or a work folder)."""
    text = str(name) if isinstance(name, str | os.PathLike) else ""
    if not text or text in (".", "..") or text.startswith(".") or not _NAME.fullmatch(text):
        raise RunNameError(
            "{text} is not a run name: give the name of a run in the runs folder as `python -m cnndash "
            "runs` lists it (no path, no '/', not '.', '..' or empty).",
            text=repr(text),
        )
    return text


def runs_root(runs_dir: Path | None = None) -> Path:
    """The runs folder (``runs_dir``, or ``cnndash.paths.runs_dir()``)."""
    return Path(runs_dir) if runs_dir is not None else default_runs_dir()


def named_run_dir(name: str, runs_dir: Path | None = None) -> Path:
    """The folder of run ``name`` inside the runs folder (checked by :func:`check_run_name`)."""
    return runs_root(runs_dir) / check_run_name(name)


def checkpoint_file(run_dir: Path, which: str) -> Path:
    return Path(run_dir) / f"{which}.pt"


def cache_file(run_dir: Path, kind: str, checkpoint: str) -> Path:
    """Where results computed from ``checkpoint`` (``kind``: predictions, embeddings) are cached."""
    return Path(run_dir) / f"{kind}_{checkpoint}.npz"


def evaluation_files(run_dir: Path) -> tuple[Path, Path]:
    """``confusion_matrix.csv`` and ``classification_report.csv`` of the run."""
    return Path(run_dir) / EVALUATION_FILES[0], Path(run_dir) / EVALUATION_FILES[1]


def has_checkpoint(run_dir: Path, which: str = "last") -> bool:
    return which in CHECKPOINTS and checkpoint_file(run_dir, which).is_file()


def holds_run(run_dir: Path) -> bool:
    """The folder already holds a run (it has a config)."""
    return (Path(run_dir) / CONFIG_FILE).exists()


def launch_file(run_dir: Path) -> Path:
    return Path(run_dir) / LAUNCH_FILE


def process_log_file(run_dir: Path) -> Path:
    return Path(run_dir) / PROCESS_LOG


def rendezvous_file(run_dir: Path, token: str) -> Path:
    """A private, empty file for torchrun's rendezvous store (mode 0600: only this user reads it)."""
    path = Path(run_dir) / f"{RENDEZVOUS_PREFIX}{token}"
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    return path


# --------------------------------------------------------------------------------------------------
# Leftovers of killed processes


def leftovers(run_dir: Path, older_than: float = 0.0) -> list[Path]:
    """Hidden files in ``run_dir`` older than ``older_than`` seconds: every file a run folder keeps has a
    plain name, so a hidden one is work in progress (a half-written ``.tmp``, a cache being written, a
    rendezvous store) that a killed process left unless its writer is still alive."""
    now, found = time.time(), []
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime >= older_than:
                found.append(Path(entry.path))
        except OSError:
            continue
    return found


def remove_deleting(root: Path) -> int:
    """Finish deletions that a killed process began (folders renamed ``.deleting-*``); returns how many."""
    removed = 0
    try:
        entries = [Path(e.path) for e in os.scandir(root) if e.name.startswith(DELETING_PREFIX)]
    except OSError:
        return 0
    for path in entries:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
