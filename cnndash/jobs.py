"""Background training jobs: a worker thread per run and one process-wide registry.

The page never trains inside a Streamlit script run (Stop could not interrupt it, and a reload would lose
it). Instead :meth:`JobRegistry.start` runs :func:`cnndash.train.train` in a daemon thread that never
touches Streamlit. The trainer's events update the job's :class:`JobSnapshot` under a lock, and any script
run — a rerun, a reload, a second tab — reads a consistent copy of it through :func:`get_registry`.
One job per device at a time: starting a second one on a busy device raises :class:`JobBusyError`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndash.device import resolve_device
from cnndash.events import BatchEvent, EndEvent, EpochEvent, StartEvent, TrainEvent
from cnndash.paths import runs_dir as default_runs_dir
from cnndash.runs import new_run_name
from cnndash.train import TrainConfig, train

log = logging.getLogger("cnndash.jobs")

MAX_BATCH_POINTS = 20_000  # per-batch points kept for the live chart (older ones thinned out)


class JobBusyError(ValueError):
    """A training run is already using the requested device."""


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
        if self.status == "starting":
            return "preparing data and model…"
        if self.status == "failed":
            return f"failed: {self.error}"
        if self.status in ("finished", "stopped"):
            acc = (self.summary or {}).get("val_accuracy")
            acc_text = f" · best val acc {acc:.1%}" if acc is not None else ""
            return f"{self.status} after {self.completed_epochs}/{self.epochs} epochs{acc_text}"
        parts = [
            f"epoch {self.epoch}/{self.epochs}",
            f"batch {self.batch}/{self.batches}",
            f"{self.images_per_sec:,.0f} img/s",
        ]
        if self.eta_seconds is not None:
            parts.append(f"ETA {format_eta(self.eta_seconds)}")
        if self.stop_requested:
            parts.append("stopping…")
        return " · ".join(parts)


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
class Job:
    """One training run in a background thread."""

    config: TrainConfig
    _snap: JobSnapshot
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def run_name(self) -> str:
        return self._snap.run_name

    @property
    def run_dir(self) -> Path:
        return self._snap.run_dir

    @property
    def device(self) -> str:
        return self._snap.device

    def start(self, *, resume: bool) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(resume,), name=f"cnndash-train-{self.run_name}", daemon=True
        )
        self._thread.start()

    def _update(self, **changes) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    def _on_event(self, event: TrainEvent) -> None:
        with self._lock:
            self._snap = apply_event(self._snap, event)

    def _run(self, resume: bool) -> None:
        try:
            summary = train(
                self.config, self.run_dir, resume=resume, on_event=self._on_event, stop_event=self._stop
            )
            status = summary.get("status", "finished")
            self._update(
                summary=summary,
                status=status,
                error=summary.get("message", "") if status == "stopped" else "",
            )
        except ValueError as exc:  # the user's settings or data: show the message as is
            self._update(status="failed", error=str(exc))
        except Exception as exc:  # a bug: keep the traceback in the log, a short line for the page
            log.exception("training run %s crashed", self.run_name)
            self._update(status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._update(finished=time.time())

    # ---- reader side
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask the run to end; it stops before its next batch and keeps its checkpoint."""
        self._stop.set()
        self._update(stop_requested=True)

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


class JobRegistry:
    """All jobs of this process. Thread-safe; shared by every browser session of the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: list[Job] = []

    def start(
        self,
        config: TrainConfig,
        *,
        run_name: str | None = None,
        runs_dir: Path | None = None,
        resume: bool = False,
    ) -> Job:
        """Start ``config`` in a background thread as run ``run_name`` (default: a fresh name)."""
        config.validate()
        device = resolve_device(config.device).type
        if device == "cpu" and config.threads == 0:
            # Leave a core to the web server and the browser so the page stays responsive.
            config = replace(config, threads=max(1, (os.cpu_count() or 2) - 1))
        root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        with self._lock:
            busy = next((job for job in self._jobs if job.alive and job.device == device), None)
            if busy is not None:
                raise JobBusyError(
                    f"Run {busy.run_name!r} is already training on the {device.upper()}; wait for it to "
                    "finish or stop it, then start again."
                )
            name = run_name or new_run_name(config.model, config.dataset, root)
            snap = JobSnapshot(run_name=name, run_dir=root / name, device=device, epochs=config.epochs)
            job = Job(config=config, _snap=snap)
            self._jobs.append(job)
            job.start(resume=resume)
        return job

    def active(self) -> Job | None:
        """The most recently started job that is still running, if any."""
        with self._lock:
            return next((job for job in reversed(self._jobs) if job.alive), None)

    def latest(self) -> Job | None:
        """The most recently started job, running or not."""
        with self._lock:
            return self._jobs[-1] if self._jobs else None

    def get(self, run_name: str) -> Job | None:
        with self._lock:
            return next((job for job in reversed(self._jobs) if job.run_name == run_name), None)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs)

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every running job and wait for them (used at shutdown and by tests)."""
        for job in self.jobs():
            job.stop()
        for job in self.jobs():
            job.wait(timeout)


_REGISTRY: JobRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def get_registry() -> JobRegistry:
    """The process-wide registry (created on first use)."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            _REGISTRY = JobRegistry()
        return _REGISTRY
