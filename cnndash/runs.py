"""Run folders on disk: the only code that knows their layout.

A run is one folder under the runs directory (``cnndash.paths.runs_dir()``, default ``./runs``):

- ``config.json``   — the resolved :class:`cnndash.train.TrainConfig` (everything needed to rerun);
- ``dataset.json``  — classes, channels, image size and the normalisation the model was trained with;
- ``metrics.csv``   — one row per finished epoch: ``epoch,train_loss,train_acc,val_loss,val_acc`` (+ extras);
- ``last.pt`` / ``best.pt`` — a :class:`Checkpoint` stored as a dict of plain types
  (``torch.load(weights_only=True)`` reads it);
- ``summary.json``  — ``val_accuracy``, ``epochs``, ``device``, ``images_per_sec``, ``seconds``, ``best_epoch``…;
- ``status.json``   — ``running`` | ``finished`` | ``stopped`` | ``failed`` with a message.

:class:`RunWriter` writes them (the trainer's only way to touch the folder); :class:`Run` answers what the
pages and the CLI ask (metrics, checkpoints, the model, its preprocessing, its dataset). Every write is
atomic, so a reader (the page, a second tab) never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image

from cnndash.data import ImageSet, load_dataset
from cnndash.models import build_model
from cnndash.paths import runs_dir as default_runs_dir
from cnndash.preprocess import images_to_uint8, normalize_batch

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
EXTRA_METRIC_COLUMNS = ["lr", "seconds", "images_per_sec"]
CHECKPOINTS = ("best", "last")


class RunError(ValueError):
    """A run that does not exist, or whose files are missing or unreadable; the message names the fix."""


# --------------------------------------------------------------------------------------------------
# Atomic files


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


def write_status(run_dir: Path, status: str, message: str = "", **extra: Any) -> None:
    """Record the run's state (with this process's pid, so a dead run can be told from a live one)."""
    data = {"status": status, "message": message, "pid": os.getpid(), "updated": time.time(), **extra}
    write_json_atomic(Path(run_dir) / "status.json", data)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:  # -1 or 0 would ask about a whole process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# --------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class TrainState:
    """Where training is: enough, with the optimiser's state, to resume exactly."""

    epoch: int = 0  # finished epochs
    batch: int = 0  # batches done in the unfinished epoch (after a stop)
    step: int = 0  # optimiser steps so far
    best_val_acc: float = -1.0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the last improvement (early stopping)
    last_val_acc: float = -1.0  # validation accuracy of the last finished epoch (-1: none yet)
    train_seconds: float = 0.0  # training time so far, summed over every resumed part
    images_seen: int = 0  # training images processed so far (throughput of the whole run)


@dataclass
class Checkpoint:
    """A model's weights with what it needs to be used (classes, input, normalisation) or resumed."""

    model: dict[str, torch.Tensor]  # state_dict, on the CPU
    config: dict  # TrainConfig.to_dict()
    classes: list[str]
    in_channels: int
    image_size: int
    mean: list[float]
    std: list[float]
    state: TrainState = field(default_factory=TrainState)
    optimizer: dict | None = None
    scheduler: dict | None = None
    scaler: dict | None = None

    @property
    def model_name(self) -> str:
        return str(self.config["model"])

    def to_dict(self) -> dict:
        """The stored form: one flat dict of plain types (what ``torch.load(weights_only=True)`` reads)."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            **asdict(self.state),
            "config": self.config,
            "model_name": self.model_name,
            "classes": list(self.classes),
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Checkpoint:
        """Raises ``KeyError``/``TypeError``/``ValueError`` for anything that is not a cnndash checkpoint."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise TypeError("not a dict with a model state")
        config = dict(data["config"])
        config.setdefault("model", data["model_name"])
        defaults = TrainState()
        state = TrainState(
            **{name: type(value)(data.get(name, value)) for name, value in asdict(defaults).items()}
        )
        return cls(
            model=data["model"],
            config=config,
            classes=[str(c) for c in data["classes"]],
            in_channels=int(data["in_channels"]),
            image_size=int(data["image_size"]),
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
            state=state,
            optimizer=data.get("optimizer"),
            scheduler=data.get("scheduler"),
            scaler=data.get("scaler"),
        )


# --------------------------------------------------------------------------------------------------
# Writing a run


class RunWriter:
    """Everything the trainer writes into a run folder, each file written atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.path / "config.json", config)

    def write_dataset_info(self, info: dict) -> None:
        write_json_atomic(self.path / "dataset.json", info)

    def write_status(self, status: str, message: str = "", **extra: Any) -> None:
        write_status(self.path, status, message, **extra)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.path / "summary.json", summary)

    def has_checkpoint(self, which: str) -> bool:
        return (self.path / f"{which}.pt").is_file()

    def save_checkpoint(self, checkpoint: Checkpoint, *which: str) -> None:
        """Save ``checkpoint`` as each of ``which`` (``"last"``, ``"best"``)."""
        data = checkpoint.to_dict()
        for name in which:
            save_atomic(data, self.path / f"{name}.pt")

    def append_metrics(self, row: dict) -> None:
        """Add one epoch's row to ``metrics.csv`` (flushed to disk: a crash keeps every finished epoch)."""
        path = self.path / "metrics.csv"
        columns = METRIC_COLUMNS + EXTRA_METRIC_COLUMNS
        new = not path.is_file() or path.stat().st_size == 0
        with open(path, "a") as handle:
            if new:
                handle.write(",".join(columns) + "\n")
            values = [str(int(row[c])) if c == "epoch" else repr(float(row[c])) for c in columns]
            handle.write(",".join(values) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (a resumed run redoes them)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return
        lines = path.read_text().splitlines()
        kept = lines[:1] + [line for line in lines[1:] if line and int(line.split(",")[0]) <= last_epoch]
        path.write_text("\n".join(kept) + "\n")


# --------------------------------------------------------------------------------------------------
# Reading a run

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
    status: str  # running | finished | stopped | failed
    summary: dict | None
    message: str = ""  # why it stopped or failed, from status.json
    dataset_info: dict = field(default_factory=dict)  # dataset.json: classes, in_channels, image_size, mean, std

    @classmethod
    def from_dir(cls, path: Path) -> Run:
        path = Path(path)
        config = read_json(path / "config.json")
        if not isinstance(config, dict):
            raise RunError(f"{path} is not a training run (no readable config.json).")
        dataset_info = read_json(path / "dataset.json")
        dataset_info = dataset_info if isinstance(dataset_info, dict) else {}
        status_info = read_json(path / "status.json")
        status_info = status_info if isinstance(status_info, dict) else {}
        summary = read_json(path / "summary.json")
        status = str(status_info.get("status", "finished" if summary else "failed"))
        message = str(status_info.get("message", ""))
        if status == "running" and not _pid_alive(status_info.get("pid")):
            status, message = "failed", "the process training this run ended without finishing it"
        return cls(
            path=path,
            name=path.name,
            config=config,
            classes=[str(c) for c in dataset_info.get("classes", [])],
            status=status,
            summary=summary if isinstance(summary, dict) else None,
            message=message,
            dataset_info=dataset_info,
        )

    # ---- files
    def metrics(self) -> pd.DataFrame:
        """Per-epoch metrics (``metrics.csv``); an empty frame with the standard columns if none yet."""
        path = self.path / "metrics.csv"
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        return pd.read_csv(path)

    def has_checkpoint(self, which: str = "best") -> bool:
        return which in CHECKPOINTS and (self.path / f"{which}.pt").is_file()

    @property
    def resumable(self) -> bool:
        """A run that ended early (stopped, failed, interrupted) with a checkpoint to continue from."""
        return self.status in ("stopped", "failed", "interrupted") and self.has_checkpoint("last")

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in CHECKPOINTS:
            raise RunError(f"Checkpoint must be 'best' or 'last', got {which!r}.")
        path = self.path / f"{which}.pt"
        if not path.is_file():
            raise RunError(
                f"Run {self.name!r} has no {which}.pt yet (status: {self.status}); "
                "wait for its first epoch to finish or train it again."
            )
        return path

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
                f"Checkpoint {path.name} of run {self.name!r} cannot be read ({type(exc).__name__}); "
                "it may be truncated or not a cnndash checkpoint — train the run again or use the other "
                "checkpoint."
            ) from exc

    def load_model(self, which: str = "best", device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained model in eval mode with the checkpoint's weights, on ``device``.

        Refuses (:class:`RunError`) a checkpoint trained on other classes than this run's (one copied from
        another run) or whose weights do not fit the model it names.
        """
        checkpoint = self.load_checkpoint(which)
        if self.classes and checkpoint.classes != self.classes:
            raise RunError(
                f"The {which} checkpoint of run {self.name!r} was trained on classes "
                f"{_short(checkpoint.classes)}, not on this run's {_short(self.classes)}; it comes from "
                "another run. Retrain the run or restore its own checkpoint."
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
                f"The {which} checkpoint of run {self.name!r} does not fit its model ({first}). "
                "Retrain the run or pick the other checkpoint."
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
        """The run's dataset, split exactly as in training (same seed and validation fraction)."""
        return load_dataset(
            self.config["dataset"],
            val_fraction=float(self.config.get("val_fraction", 0.2)),
            seed=int(self.config.get("seed", 0)),
        )


def _runs_root(runs_dir: Path | None) -> Path:
    return Path(runs_dir) if runs_dir is not None else default_runs_dir()


def list_runs(runs_dir: Path | None = None) -> list[Run]:
    """Every run under ``runs_dir`` (default: ``runs_dir()``), newest first; unreadable folders skipped."""
    root = _runs_root(runs_dir)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.is_dir() and (child / "config.json").is_file():
            try:
                runs.append(Run.from_dir(child))
            except RunError:
                continue
    runs.sort(key=lambda run: (run.path / "config.json").stat().st_mtime, reverse=True)
    return runs


def load_run(path_or_name: str | os.PathLike, runs_dir: Path | None = None) -> Run:
    """A run by directory path, or by name under ``runs_dir()``."""
    path = Path(path_or_name)
    if not (path / "config.json").is_file():
        candidate = _runs_root(runs_dir) / str(path_or_name)
        if (candidate / "config.json").is_file():
            path = candidate
        else:
            raise RunError(
                f"No run {str(path_or_name)!r}: neither a run directory nor a run under "
                f"{_runs_root(runs_dir)}. Train one first or check the name."
            )
    return Run.from_dir(path)


def new_run_name(model: str, dataset: str, runs_dir: Path | None = None) -> str:
    """A fresh, readable run name such as ``lenet-digits-20250101-120000``."""
    stem = Path(str(dataset)).stem or "data"
    base = f"{model}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    root = _runs_root(runs_dir)
    name, n = base, 1
    while (root / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def delete_run(path_or_name: str | os.PathLike, runs_dir: Path | None = None) -> None:
    """Remove a run directory (refuses a run that is still training)."""
    run = load_run(path_or_name, runs_dir)
    if run.status == "running":
        raise RunError(f"Run {run.name!r} is still training; stop it before deleting it.")
    shutil.rmtree(run.path)
