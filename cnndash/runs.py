"""Run directories on disk: find, read, load and delete training runs.

A run is one folder under the runs directory (``cnndash.paths.runs_dir()``, default ``./runs``):

- ``config.json``   — the resolved :class:`cnndash.train.TrainConfig` (everything needed to rerun);
- ``dataset.json``  — classes, channels and the normalisation the model was trained with;
- ``metrics.csv``   — one row per finished epoch: ``epoch,train_loss,train_acc,val_loss,val_acc`` (+ extras);
- ``last.pt`` / ``best.pt`` — checkpoints (plain types only, ``torch.load(weights_only=True)`` reads them);
- ``summary.json``  — ``val_accuracy``, ``epochs``, ``device``, ``images_per_sec``, ``seconds``, ``best_epoch``…;
- ``status.json``   — ``running`` | ``finished`` | ``stopped`` | ``failed`` with a message.

All writes go through :func:`write_json_atomic` / :func:`save_atomic`, so a reader (the page, a second
tab) never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cnndash.paths import runs_dir as default_runs_dir

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from cnndash.data import ImageSet

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
STATUSES = ("running", "finished", "stopped", "failed")


class RunError(ValueError):
    """A run that does not exist or lacks the file asked for."""


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
    import torch

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
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_status(run_dir: Path, status: str, message: str = "", **extra: Any) -> None:
    """Record the run's state (with this process's pid, so a dead run can be told from a live one)."""
    data = {"status": status, "message": message, "pid": os.getpid(), "updated": time.time(), **extra}
    write_json_atomic(Path(run_dir) / "status.json", data)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


@dataclass
class Run:
    path: Path
    name: str
    config: dict
    classes: list[str]
    status: str  # running | finished | stopped | failed
    summary: dict | None
    message: str = ""  # why it stopped or failed, from status.json

    @classmethod
    def from_dir(cls, path: Path) -> Run:
        path = Path(path)
        config = read_json(path / "config.json")
        if not isinstance(config, dict):
            raise RunError(f"{path} is not a training run (no readable config.json).")
        dataset_info = read_json(path / "dataset.json") or {}
        status_info = read_json(path / "status.json") or {}
        summary = read_json(path / "summary.json")
        status = status_info.get("status", "finished" if summary else "failed")
        message = status_info.get("message", "")
        if status == "running" and not _pid_alive(int(status_info.get("pid", -1))):
            status, message = "failed", "the process training this run ended without finishing it"
        return cls(
            path=path,
            name=path.name,
            config=config,
            classes=list(dataset_info.get("classes", [])),
            status=status,
            summary=summary if isinstance(summary, dict) else None,
            message=message,
        )

    @property
    def dataset_info(self) -> dict:
        """``dataset.json``: classes, channels, image_size, mean, std."""
        return read_json(self.path / "dataset.json") or {}

    def metrics(self) -> pd.DataFrame:
        """Per-epoch metrics (``metrics.csv``); an empty frame with the standard columns if none yet."""
        path = self.path / "metrics.csv"
        if not path.is_file() or path.stat().st_size == 0:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        return pd.read_csv(path)

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise RunError(f"Checkpoint must be 'best' or 'last', got {which!r}.")
        path = self.path / f"{which}.pt"
        if not path.is_file():
            raise RunError(
                f"Run {self.name!r} has no {which}.pt yet (status: {self.status}); "
                "wait for its first epoch to finish or train it again."
            )
        return path

    def load_checkpoint(self, which: str = "best") -> dict:
        import torch

        path = self.checkpoint_path(which)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated/corrupt file or not a cnndash checkpoint
            raise RunError(
                f"Checkpoint {path.name} of run {self.name!r} cannot be read ({type(exc).__name__}); "
                "it may be truncated or not a cnndash checkpoint — train the run again or use the other checkpoint."
            ) from exc

    def load_model(self, which: str = "best", device: str | torch.device = "cpu") -> torch.nn.Module:
        """The trained model in eval mode with the checkpoint's weights, on ``device``."""
        from cnndash.models import build_model

        checkpoint = self.load_checkpoint(which)
        model = build_model(
            checkpoint["model_name"],
            num_classes=len(checkpoint["classes"]),
            in_channels=int(checkpoint["in_channels"]),
            image_size=int(checkpoint["image_size"]),
        )
        model.load_state_dict(checkpoint["model"])
        return model.to(device).eval()

    @property
    def image_size(self) -> int:
        return int(self.dataset_info.get("image_size") or self.config["image_size"])

    @property
    def in_channels(self) -> int:
        # train.py writes "in_channels"; "channels" is accepted for runs written before that name settled.
        info = self.dataset_info
        return int(info.get("in_channels", info.get("channels", 3)))

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """Exactly the evaluation preprocessing of this run: (N, C, H, W) float32, normalised, on CPU."""
        from cnndash.train import images_to_uint8, normalize_batch

        info = self.dataset_info
        batch = images_to_uint8(list(images), channels=self.in_channels, size=self.image_size)
        return normalize_batch(
            batch, info.get("mean", [0.5] * self.in_channels), info.get("std", [0.5] * self.in_channels)
        )

    def dataset(self) -> ImageSet:
        """The run's dataset, split exactly as in training (same seed and validation fraction)."""
        from cnndash.data import load_dataset

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
