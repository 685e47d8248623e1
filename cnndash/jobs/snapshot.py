"""A training job's state as pages draw it: :class:`JobSnapshot`, the same for a run in a thread of this process
(folded from the trainer's events by :func:`apply_event`) and for a torchrun run in a subprocess (read from
the run folder its rank 0 writes, :mod:`cnndash.jobs.torchrun`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndash.runs.batchlog import MAX_POINTS
from cnndash.text import N_
from cnndash.training.events import BatchEvent, EndEvent, EpochEvent, StartEvent, TrainEvent

MAX_BATCH_POINTS = MAX_POINTS  # per-batch points kept for the live chart (older ones thinned out), as read


def format_eta(seconds: float | None) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour on), or ``—`` when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class JobSnapshot:
    """A job's state at one moment: plain data, safe to read while the job runs."""

    run_name: str
    run_dir: Path
    device: str  # "cpu" | "cuda" | "mps"
    status: str = "starting"  # starting | running | finished | stopped | failed
    epoch: int = 0  # the epoch in progress (1-based), or the last finished one at the end
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    completed_epochs: int = 0
    images_per_sec: float = 0.0
    lr: float = 0.0
    device_description: str = ""
    image_size: int = 0  # what the model sees: side in px and channels (known once data is ready)
    in_channels: int = 0
    batch_points: tuple[dict, ...] = ()  # {"step", "epoch", "batch", "loss", "acc", "lr"}
    epoch_rows: tuple[dict, ...] = ()  # one metrics.csv row per finished epoch
    summary: dict | None = None
    error: str = ""
    stop_requested: bool = False
    started: float | None = None  # when the first batch began (ETA is measured from here)
    finished: float | None = None
    start_fraction: float = 0.0  # share of the run already done when it started (a resume)
    world_size: int = 1  # processes training the run (torchrun), 1 for a run in a thread

    @property
    def fraction(self) -> float:
        if self.status == "finished":
            return 1.0
        if not self.epochs:
            return 0.0
        within = self.batch / self.batches if self.batches and self.epoch > self.completed_epochs else 0.0
        return min((self.completed_epochs + within) / self.epochs, 1.0)

    @property
    def eta_seconds(self) -> float | None:
        if self.started is None or self.finished is not None:
            return None
        done = self.fraction - self.start_fraction
        if done <= 0:
            return None
        return (time.time() - self.started) * (1.0 - self.fraction) / done

    def status_text(self) -> str:
        """One line for people, e.g. ``epoch 3/10 · batch 12/45 · 1,530 img/s · ETA 0:21``."""
        template, params = self.status_template()
        return template.format(**params)

    def status_template(self) -> tuple[str, dict]:
        """:meth:`status_text` as a template and its parameters, so that a page can show it translated."""
        if self.status == "starting":
            return N_("preparing data and model…"), {}
        if self.status == "failed":
            return N_("failed: {error}"), {"error": self.error}
        if self.status in ("finished", "stopped"):
            acc = (self.summary or {}).get("val_accuracy")
            params = {"done": self.completed_epochs, "epochs": self.epochs}
            if acc is None:
                template = {
                    "finished": N_("finished after {done}/{epochs} epochs"),
                    "stopped": N_("stopped after {done}/{epochs} epochs"),
                }[self.status]
                return template, params
            template = {
                "finished": N_("finished after {done}/{epochs} epochs · best val acc {acc:.1%}"),
                "stopped": N_("stopped after {done}/{epochs} epochs · best val acc {acc:.1%}"),
            }[self.status]
            return template, params | {"acc": acc}
        params = {
            "epoch": self.epoch,
            "epochs": self.epochs,
            "batch": self.batch,
            "batches": self.batches,
            "speed": self.images_per_sec,
        }
        stopping = self.stop_requested
        if self.eta_seconds is None:
            return (
                N_("epoch {epoch}/{epochs} · batch {batch}/{batches} · {speed:,.0f} img/s · stopping…")
                if stopping
                else N_("epoch {epoch}/{epochs} · batch {batch}/{batches} · {speed:,.0f} img/s")
            ), params
        params["eta"] = format_eta(self.eta_seconds)
        return (
            N_(
                "epoch {epoch}/{epochs} · batch {batch}/{batches} · {speed:,.0f} img/s · ETA {eta} · stopping…"
            )
            if stopping
            else N_("epoch {epoch}/{epochs} · batch {batch}/{batches} · {speed:,.0f} img/s · ETA {eta}")
        ), params


def apply_event(snap: JobSnapshot, event: TrainEvent) -> JobSnapshot:
    """The job's state after ``event``."""
    if isinstance(event, StartEvent):
        return replace(
            snap,
            status="running",
            epochs=event.epochs,
            completed_epochs=event.start_epoch,
            epoch=event.start_epoch + 1,
            batches=event.steps_per_epoch,
            device_description=event.device_description,
            image_size=event.image_size,
            in_channels=event.in_channels,
            start_fraction=event.start_epoch / max(event.epochs, 1),
            started=time.time(),
        )
    if isinstance(event, BatchEvent):
        points = (
            *snap.batch_points,
            {k: getattr(event, k) for k in ("step", "epoch", "batch", "loss", "acc", "lr")},
        )
        if len(points) > MAX_BATCH_POINTS:
            points = points[::2]
        return replace(
            snap,
            epoch=event.epoch,
            batch=event.batch,
            batches=event.batches,
            images_per_sec=event.images_per_sec,
            lr=event.lr,
            batch_points=points,
        )
    if isinstance(event, EpochEvent):
        return replace(snap, epoch_rows=(*snap.epoch_rows, event.row()), completed_epochs=event.epoch)
    if isinstance(event, EndEvent):
        return replace(snap, summary=event.summary)
    return snap  # ErrorEvent: the worker records the failure when train() raises


@dataclass
class BackgroundJob:
    """What a page reads of any training job (a thread of this process, or a torchrun subprocess): the snapshot
    under a lock, and the thread that keeps it current. Subclasses start that thread and define ``stop``."""

    _snap: JobSnapshot
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, kw_only=True)
    _thread: threading.Thread | None = field(default=None, repr=False, kw_only=True)

    @property
    def run_name(self) -> str:
        return self._snap.run_name

    @property
    def run_dir(self) -> Path:
        return self._snap.run_dir

    @property
    def device(self) -> str:
        return self._snap.device

    def _update(self, **changes) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` seconds pass (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the job's state for drawing (safe to use while the job runs)."""
        with self._lock:
            return self._snap

    def fraction_done(self) -> float:
        return self.snapshot().fraction

    def status_text(self) -> str:
        return self.snapshot().status_text()
