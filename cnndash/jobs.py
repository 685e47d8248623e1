"""Background training jobs: a worker thread per run and one process-wide registry.

The page never trains inside a Streamlit script run (Stop could not interrupt it, and a reload would lose
it). Instead :meth:`JobRegistry.start` runs :func:`cnndash.train.train` in a daemon thread that never
touches Streamlit; its events update a :class:`Job` (thread-safe), and any script run — a rerun, a
reload, a second tab — reads the same job from :func:`get_registry`. One job per device at a time:
starting a second one on a busy device raises :class:`JobBusyError`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndash.device import resolve_device
from cnndash.paths import runs_dir as default_runs_dir
from cnndash.runs import new_run_name
from cnndash.train import TrainConfig, train

log = logging.getLogger("cnndash.jobs")

MAX_BATCH_POINTS = 20_000  # per-batch points kept for the live chart (older ones thinned out)


class JobBusyError(ValueError):
    """A training run is already using the requested device."""


@dataclass
class Job:
    """One training run in a background thread; every field is read and written under ``_lock``."""

    run_name: str
    run_dir: Path
    config: TrainConfig
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
    batch_points: list[dict] = field(default_factory=list)  # {"step", "epoch", "loss", "acc", "lr"}
    epoch_rows: list[dict] = field(default_factory=list)  # the epoch_end events
    summary: dict | None = None
    error: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None  # when the first batch began (ETA is measured from here)
    finished: float | None = None
    _start_fraction: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    # ---- worker side
    def _on_event(self, event: dict) -> None:
        kind = event.get("type")
        with self._lock:
            if kind == "start":
                self.status = "running"
                self.epochs = event["epochs"]
                self.completed_epochs = event["start_epoch"]
                self.epoch = event["start_epoch"] + 1
                self.batches = event["steps_per_epoch"]
                self.device_description = event["device_description"]
                self._start_fraction = event["start_epoch"] / max(event["epochs"], 1)
                self.started = time.time()
            elif kind == "batch":
                self.epoch, self.batch, self.batches = event["epoch"], event["batch"], event["batches"]
                self.images_per_sec, self.lr = event["images_per_sec"], event["lr"]
                self.batch_points.append(
                    {k: event[k] for k in ("step", "epoch", "batch", "loss", "acc", "lr")}
                )
                if len(self.batch_points) > MAX_BATCH_POINTS:
                    self.batch_points = self.batch_points[::2]
            elif kind == "epoch_end":
                self.epoch_rows.append(dict(event))
                self.completed_epochs = event["epoch"]
            elif kind == "end":
                self.summary = event["summary"]

    def _run(self, resume: bool) -> None:
        try:
            summary = train(
                self.config, self.run_dir, resume=resume, on_event=self._on_event, stop_event=self._stop
            )
            with self._lock:
                self.summary = summary
                self.status = summary.get("status", "finished")
                self.error = summary.get("message", "") if self.status == "stopped" else ""
        except ValueError as exc:  # the user's settings or data: show the message as is
            with self._lock:
                self.status, self.error = "failed", str(exc)
        except Exception as exc:  # a bug: keep the traceback in the log, a short line for the page
            log.exception("training run %s crashed", self.run_name)
            with self._lock:
                self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self.finished = time.time()

    # ---- reader side
    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask the run to end; it stops before its next batch and keeps its checkpoint."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` seconds pass (False)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.alive

    def fraction_done(self) -> float:
        with self._lock:
            return self._fraction()

    def _fraction(self) -> float:
        if self.status == "finished":
            return 1.0
        if not self.epochs:
            return 0.0
        within = self.batch / self.batches if self.batches and self.epoch > self.completed_epochs else 0.0
        return min((self.completed_epochs + within) / self.epochs, 1.0)

    def eta_seconds(self) -> float | None:
        with self._lock:
            return self._eta()

    def _eta(self) -> float | None:
        if self.started is None or self.finished is not None:
            return None
        done = self._fraction() - self._start_fraction
        if done <= 0:
            return None
        elapsed = time.time() - self.started
        return elapsed * (1.0 - self._fraction()) / done

    def status_text(self) -> str:
        """One line for people, e.g. ``epoch 3/10 · batch 12/45 · 1,530 img/s · ETA 0:21``."""
        with self._lock:
            if self.status == "starting":
                return "preparing data and model…"
            if self.status == "failed":
                return f"failed: {self.error}"
            if self.status in ("finished", "stopped"):
                acc = (self.summary or {}).get("val_accuracy")
                acc_text = f" · best val acc {acc:.1%}" if acc is not None else ""
                return f"{self.status} after {self.completed_epochs}/{self.epochs} epochs{acc_text}"
            eta = self._eta()
            parts = [
                f"epoch {self.epoch}/{self.epochs}",
                f"batch {self.batch}/{self.batches}",
                f"{self.images_per_sec:,.0f} img/s",
            ]
            if eta is not None:
                parts.append(f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
            if self._stop.is_set():
                parts.append("stopping…")
            return " · ".join(parts)

    def snapshot(self) -> dict:
        """A consistent copy of the job's state for drawing (safe to use while the job runs)."""
        with self._lock:
            return {
                "run_name": self.run_name,
                "run_dir": self.run_dir,
                "status": self.status,
                "epoch": self.epoch,
                "epochs": self.epochs,
                "batch": self.batch,
                "batches": self.batches,
                "completed_epochs": self.completed_epochs,
                "images_per_sec": self.images_per_sec,
                "lr": self.lr,
                "device": self.device,
                "device_description": self.device_description,
                "fraction": self._fraction(),
                "eta_seconds": self._eta(),
                "batch_points": list(self.batch_points),
                "epoch_rows": list(self.epoch_rows),
                "summary": dict(self.summary) if self.summary else None,
                "error": self.error,
                "stop_requested": self._stop.is_set(),
            }


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
            job = Job(run_name=name, run_dir=root / name, config=config, device=device, epochs=config.epochs)
            job._thread = threading.Thread(
                target=job._run, args=(resume,), name=f"cnndash-train-{name}", daemon=True
            )
            self._jobs.append(job)
            job._thread.start()
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
