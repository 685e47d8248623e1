"""Reading the run store: :class:`Run` answers what pages and the CLI ask of a run folder."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image

from cnndash.data import ImageSet, load_run_dataset
from cnndash.models import build_model
from cnndash.preprocess import images_to_uint8, normalize_batch
from cnndash.runs.batchlog import read_batch_log, read_batch_series
from cnndash.runs.checkpoint import CHECKPOINTS, Checkpoint
from cnndash.runs.files import RunError, read_json, read_process_log, read_status
from cnndash.runs.layout import (
    BATCH_LOG,
    CONFIG_FILE,
    DATASET_FILE,
    EXPORT_DIR,
    METRICS_FILE,
    STATUS_FILE,
    SUMMARY_FILE,
    cache_file,
    check_run_name,
    checkpoint_file,
    evaluation_files,
    runs_root,
)
from cnndash.runs.lease import live_owner
from cnndash.runs.quota import check_new_run
from cnndash.runs.writer import METRIC_COLUMNS
from cnndash.text import N_, Phrase

# A run's message while its process holds it but has written no status yet, and after that process ended
# without finishing (Phrases: the pages say them in the reader's language, the CLI and files in English).
STARTING = N_("starting: preparing the data and the model")
INTERRUPTED_RESUMABLE = N_(
    "The process training this run ended before the run finished (a restart or a crash); resume it to "
    "continue from its last checkpoint."
)
INTERRUPTED_LOST = N_(
    "The process training this run ended before the run finished (a restart or a crash); it saved no "
    "checkpoint, so delete it and train again."
)

# Checkpoint hashes by (path, size, mtime): a page asks for the fingerprint on every rerun.
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


def _short(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(map(str, names[:limit]))
    return f"[{shown}{', …' if len(names) > limit else ''}]"


@dataclass
class Run:
    path: Path
    name: str
    config: dict
    classes: list[str]
    status: str  # running | finished | stopped | failed | interrupted | broken
    summary: dict | None
    message: str = ""  # why it stopped, failed or is broken
    dataset_info: dict = field(
        default_factory=dict
    )  # dataset.json: classes, in_channels, image_size, mean, std
    world_size: int = 1  # processes that trained it (torchrun); a resume starts as many

    @classmethod
    def from_dir(cls, path: Path) -> Run:
        """The run in ``path``; :class:`RunError` when it has no readable ``config.json``.

        Its status is ``running`` exactly while its lease is fresh (:mod:`cnndash.runs.lease`), whatever
        ``status.json`` says: a ``running`` status without a live lease is ``interrupted``."""
        path = Path(path)
        config = read_json(path / CONFIG_FILE)
        if not isinstance(config, dict):
            raise RunError("{path} is not a training run (no readable config.json).", path=path)
        dataset_info = _dict(read_json(path / DATASET_FILE))
        status_info = read_status(path)
        summary = read_json(path / SUMMARY_FILE)
        status = str(status_info.get("status", "finished" if summary else "failed"))
        message = str(status_info.get("message", ""))
        if live_owner(path) is not None:
            if status != "running":
                status, message = "running", Phrase(STARTING)
        elif status == "running":
            status = "interrupted"
            resumable = checkpoint_file(path, "last").is_file()
            message = Phrase(INTERRUPTED_RESUMABLE if resumable else INTERRUPTED_LOST)
        classes = dataset_info.get("classes", [])
        return cls(
            path=path,
            name=path.name,
            config=config,
            classes=[str(c) for c in classes] if isinstance(classes, list) else [],
            status=status,
            summary=summary if isinstance(summary, dict) else None,
            message=message,
            dataset_info=dataset_info,
            world_size=_world_size(status_info, summary),
        )

    @classmethod
    def broken(cls, path: Path, reason: str) -> Run:
        """A folder in the runs directory that cannot be read as a run: listed so it can be deleted."""
        return cls(
            path=path, name=path.name, config={}, classes=[], status="broken", summary=None, message=reason
        )

    # ---- what it is for
    @property
    def purpose(self) -> str:
        """``train``, or ``fold`` / ``trial`` for a run a label check or a search made (``TrainConfig.purpose``)."""
        return str(self.config.get("purpose") or "train")

    @property
    def group(self) -> str:
        """The label check or search a fold or trial run belongs to ("" for a run a person started)."""
        return str(self.config.get("group") or "")

    @property
    def hidden(self) -> bool:
        """Kept out of run pickers: it belongs to its group (a label check's fold, a search's trial)."""
        return self.purpose != "train"

    # ---- files
    def metrics(self) -> pd.DataFrame:
        """Per-epoch metrics (``metrics.csv``); an empty frame with the standard columns if none yet."""
        path = self.path / METRICS_FILE
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        return pd.read_csv(path)

    def batch_log(self) -> list[dict]:
        """The run's training batches (``batches.csv``), resumed parts included, as a bounded series:
        every batch of a short log, evenly thinned beyond :data:`cnndash.runs.batchlog.MAX_POINTS` (the
        newest batch always last); dicts with ``step, epoch, batch, batches, loss, acc, lr,
        images_per_sec, seconds``; [] for a run without one."""
        return read_batch_log(self.path / BATCH_LOG)

    def metrics_with_clock(self) -> pd.DataFrame:
        """:meth:`metrics` plus ``clock``: the run's wall seconds when each epoch's training ended (the last
        logged batch of that epoch in ``batches.csv``; earlier epochs' validation and checkpoints included, a
        pause between a stop and its resume not). NaN where the log has no batch of that epoch (older runs)."""
        frame = self.metrics()
        ends = read_batch_series(self.path / BATCH_LOG).epoch_ends
        return frame.assign(clock=[ends.get(int(e), float("nan")) for e in frame["epoch"]])

    def process_log(self, limit: int = 20_000) -> str:
        """The end of the output of a torchrun run started from the app (``train.log``); "" for others."""
        return read_process_log(self.path, limit)

    def has_checkpoint(self, which: str = "best") -> bool:
        return which in CHECKPOINTS and checkpoint_file(self.path, which).is_file()

    @property
    def resumable(self) -> bool:
        """A run that ended early (stopped, failed, interrupted) with a checkpoint to continue from."""
        return self.status in ("stopped", "failed", "interrupted") and self.has_checkpoint("last")

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in CHECKPOINTS:
            raise RunError("Checkpoint must be 'best' or 'last', got {which}.", which=repr(which))
        path = checkpoint_file(self.path, which)
        if not path.is_file():
            raise RunError(
                "Run {name} has no {which}.pt yet (status: {status}); wait for its first epoch to finish or "
                "train it again.",
                name=repr(self.name),
                which=which,
                status=self.status,
            )
        return path

    @property
    def export_dir(self) -> Path:
        """Where the run's bundle is built (:mod:`cnndash.export`)."""
        return self.path / EXPORT_DIR

    def cache_path(self, kind: str, which: str = "best") -> Path:
        """Where results computed from checkpoint ``which`` (``kind``: predictions, embeddings) are cached."""
        return cache_file(self.path, kind, which)

    def evaluation_paths(self) -> tuple[Path, Path]:
        """``confusion_matrix.csv`` and ``classification_report.csv`` (``python -m cnndash evaluate``)."""
        return evaluation_files(self.path)

    def fingerprint(self, which: str = "best") -> str:
        """SHA-256 of the checkpoint file: the key for anything computed from its weights."""
        return _sha256(self.checkpoint_path(which))

    def load_checkpoint(self, which: str = "best") -> Checkpoint:
        """The checkpoint, read once; any failure (missing, truncated, foreign file) is a :class:`RunError`."""
        path = self.checkpoint_path(which)
        try:
            return Checkpoint.from_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as exc:  # torch raises many unrelated types for a truncated or foreign file
            raise RunError(
                "Checkpoint {path_name} of run {name} cannot be read ({error_kind}); it may be truncated or not a "
                "cnndash checkpoint — train the run again or use the other checkpoint.",
                path_name=path.name,
                name=repr(self.name),
                error_kind=type(exc).__name__,
            ) from exc

    def load_model(self, which: str = "best", device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained model in eval mode with the checkpoint's weights, on ``device``.

        Refuses (:class:`RunError`) a checkpoint trained on other classes than this run's (one copied from
        another run) or whose weights do not fit the model it names.
        """
        checkpoint = self.load_checkpoint(which)
        if self.classes and checkpoint.classes != self.classes:
            raise RunError(
                "The {which} checkpoint of run {name} was trained on classes {checkpoint_classes}, not on this run's "
                "{run_classes}; it comes from another run. Retrain the run or restore its own checkpoint.",
                which=which,
                name=repr(self.name),
                checkpoint_classes=_short(checkpoint.classes),
                run_classes=_short(self.classes),
            )
        try:
            model = build_model(
                checkpoint.model_name,
                num_classes=len(checkpoint.classes),
                in_channels=checkpoint.in_channels,
                image_size=checkpoint.image_size,
            )
            model.load_state_dict(checkpoint.model)
        except (RuntimeError, ValueError, KeyError) as exc:  # a state_dict that does not fit the model
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RunError(
                "The {which} checkpoint of run {name} does not fit its model ({first}). Retrain the run or pick "
                "the other checkpoint.",
                which=which,
                name=repr(self.name),
                first=first,
            ) from exc
        return model.to(device).eval()

    # ---- what the model sees
    @property
    def image_size(self) -> int:
        return int(self.dataset_info.get("image_size") or self.config["image_size"])

    @property
    def in_channels(self) -> int:
        return int(self.dataset_info.get("in_channels", 3))

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """Exactly the evaluation preprocessing of this run: (N, C, H, W) float32, normalised, on CPU."""
        info, channels = self.dataset_info, self.in_channels
        batch = images_to_uint8(list(images), channels=channels, size=self.image_size)
        return normalize_batch(batch, info.get("mean", [0.5] * channels), info.get("std", [0.5] * channels))

    def dataset(self) -> ImageSet:
        """The run's dataset exactly as in training: the content it pinned (``dataset.json``'s
        ``dataset_ref``; by name for runs from before), split with the same seed and validation fraction."""
        return load_run_dataset(self.config, self.dataset_info)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _world_size(status_info: dict, summary: Any) -> int:
    for source in (status_info, summary if isinstance(summary, dict) else {}):
        value = source.get("world_size")
        if isinstance(value, int) and value >= 1:
            return value
    return 1


def read_run(path: Path) -> Run:
    """A run for the listing: anything unreadable is a ``broken`` run, never an exception."""
    try:
        return Run.from_dir(path)
    except RunError:
        if live_owner(path) is not None:  # a new run whose data is still loading
            return Run(path=path, name=path.name, config={}, classes=[], status="running", summary=None,
                       message=Phrase(STARTING))  # fmt: skip
        return Run.broken(path, "No readable config.json: this folder is not a complete run; delete it.")
    except Exception as exc:  # any malformed file: the listing must go on for every page
        return Run.broken(path, f"Unreadable run files ({type(exc).__name__}: {exc}); delete it.")


def _started(run: Run) -> float:
    for name in (CONFIG_FILE, STATUS_FILE, ""):
        try:
            return (run.path / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


def list_runs(
    runs_dir: Path | None = None, *, include_broken: bool = False, include_hidden: bool = True
) -> list[Run]:
    """Every run under ``runs_dir`` (default: ``runs_dir()``), newest first. Folders that are not readable
    runs are left out, or listed as ``broken`` with ``include_broken=True``; this never raises.

    ``include_hidden=False`` leaves out the runs that belong to a group (:attr:`Run.hidden`: a label
    check's folds, a search's trials): what a run picker lists is this one call.
    """
    root = runs_root(runs_dir)
    try:
        children = [child for child in root.iterdir() if child.is_dir() and not child.name.startswith(".")]
    except OSError:
        return []
    runs = [read_run(child) for child in children]
    if not include_broken:
        runs = [run for run in runs if run.status != "broken" and run.config]
    if not include_hidden:
        runs = [run for run in runs if not run.hidden]
    return sorted(runs, key=_started, reverse=True)


def load_run(path_or_name: str | os.PathLike, runs_dir: Path | None = None) -> Run:
    """A run by directory path (what ``train --out`` wrote, anywhere), or by name under ``runs_dir()``.
    Only reads; deleting and stopping take a name (:func:`delete_run`, :func:`stop_run`)."""
    path = Path(path_or_name)
    if not (path / CONFIG_FILE).is_file():
        try:
            path = runs_root(runs_dir) / check_run_name(str(path_or_name))
        except ValueError:
            path = None
    if path is None or not (path / CONFIG_FILE).is_file():
        raise RunError(
            "No run {path_or_name}: neither a run directory nor a run under {runs_root}. Train one first or "
            "check the name.",
            path_or_name=repr(str(path_or_name)),
            runs_root=runs_root(runs_dir),
        )
    return Run.from_dir(path)


def new_run_name(model: str, dataset: str, runs_dir: Path | None = None) -> str:
    """A fresh, readable run name such as ``lenet-digits-20250101-120000``, claimed by creating its folder
    (``os.mkdir`` is atomic: two runs started in the same second get different names). Refused
    (:class:`cnndash.runs.quota.RunsQuotaError`) while the runs folder is over its quota."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(dataset)).stem.split(":")[0]).lstrip(".") or "data"
    base = f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    root = runs_root(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    check_new_run(root / base)
    for n in itertools.count(1):
        name = base if n == 1 else f"{base}-{n}"
        try:
            (root / name).mkdir()
        except FileExistsError:
            continue
        return name
    raise AssertionError("unreachable")
