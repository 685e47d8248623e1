"""Deleting and stopping runs, and sweeping what killed processes left: by run name, never by path."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from cnndash.data import release, run_holder
from cnndash.runs.files import RunError
from cnndash.runs.layout import DELETING_PREFIX, check_run_name, leftovers, remove_deleting, runs_root
from cnndash.runs.lease import live_owner, request_stop
from cnndash.runs.store import read_run
from cnndash.runs.writer import LEFTOVER_AGE_S


def _named(name: str, runs_dir: Path | None) -> Path:
    """The folder of run ``name`` in the runs folder: a name only (no path, ``.``, ``..``), a real folder."""
    path = runs_root(runs_dir) / check_run_name(name)
    if path.is_symlink() or not path.is_dir():
        raise RunError(
            "No run {name} under {runs_root}; check the name (`python -m cnndash runs`).",
            name=repr(name),
            runs_root=runs_root(runs_dir),
        )
    return path


def delete_run(name: str, runs_dir: Path | None = None) -> None:
    """Remove run ``name`` (a name in the runs folder, never a path), broken ones included; refuses a run
    that is really training (its lease is fresh). The folder is renamed to a hidden name first, so it
    vanishes from every listing in one step; a deletion cut short is finished by :func:`sweep_runs`."""
    path = _named(name, runs_dir)
    if live_owner(path) is not None:
        raise RunError(
            "Run {name} is still training; stop it first (Training page, or `python -m cnndash runs stop "
            "{name2}`), then delete it.",
            name=repr(name),
            name2=name,
        )
    doomed = path.with_name(f"{DELETING_PREFIX}{name}-{secrets.token_hex(4)}")
    os.rename(path, doomed)
    release(run_holder(path))  # the dataset content it trained on is kept no longer for it
    shutil.rmtree(doomed, ignore_errors=True)


def stop_run(name: str, runs_dir: Path | None = None) -> None:
    """Ask run ``name`` (a name in the runs folder) to stop after its current batch: a request its trainer
    reads (:func:`cnndash.runs.lease.request_stop`), never a signal. It ends ``stopped``, resumable.
    :class:`RunError` when nothing trains it."""
    path = _named(name, runs_dir)
    owner = live_owner(path)
    if owner is None:
        status = read_run(path).status
        raise RunError(
            "Run {name} is not training (status: {status}); there is nothing to stop.",
            name=repr(name),
            status=status,
        )
    request_stop(path, owner)


def sweep_runs(runs_dir: Path | None = None) -> int:
    """Remove what killed processes left in the runs folder: deletions cut short, and hidden work files
    (half-written checkpoints, caches, rendezvous stores) in runs nobody trains. Returns how many."""
    root = runs_root(runs_dir)
    removed = remove_deleting(root)
    try:
        children = [Path(e.path) for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for child in children:
        if child.name.startswith(".") or live_owner(child) is not None:
            continue
        for leftover in leftovers(child, older_than=LEFTOVER_AGE_S):
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed
