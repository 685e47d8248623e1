"""Background training jobs: a worker thread per run (or a torchrun subprocess) and one process-wide registry.

The page never trains inside a Streamlit script run (Stop could not interrupt it, and a reload would lose
it). Instead :meth:`JobRegistry.start` runs :func:`cnndash.training.loops.train` in a daemon thread that never
touches Streamlit. The trainer's events update the job's :class:`JobSnapshot` under a lock, and any script
run — a rerun, a reload, a second tab — reads a consistent copy of it through :func:`get_registry`.
One job per device at a time: starting a second one on a busy device raises :class:`JobBusyError`.

With ``processes > 1`` the run is data-parallel: :class:`cnndash.jobs.torchrun.ProcessJob` runs it under
``torchrun`` in a subprocess and reads the same snapshot from the run folder rank 0 writes.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndash.device import max_processes, resolve_device
from cnndash.jobs.snapshot import MAX_BATCH_POINTS, BackgroundJob, JobSnapshot, apply_event, format_eta
from cnndash.jobs.torchrun import ProcessJob
from cnndash.paths import runs_dir as default_runs_dir
from cnndash.runs import new_run_name
from cnndash.training.events import TrainEvent
from cnndash.training.loops import ConfigError, TrainConfig, train

__all__ = ["MAX_BATCH_POINTS", "AnyJob", "Job", "JobBusyError", "JobRegistry", "JobSnapshot", "ProcessJob",
           "apply_event", "format_eta", "get_registry"]  # fmt: skip

log = logging.getLogger("cnndash.jobs.registry")


class JobBusyError(ValueError):
    """A training run is already using the requested device."""


@dataclass
class Job(BackgroundJob):
    """One training run in a background thread."""

    config: TrainConfig
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def processes(self) -> int:
        return 1

    def start(self, *, resume: bool) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(resume,), name=f"cnndash-train-{self.run_name}", daemon=True
        )
        self._thread.start()

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

    def stop(self) -> None:
        """Ask the run to end; it stops before its next batch and keeps its checkpoint."""
        self._stop.set()
        self._update(stop_requested=True)


AnyJob = Job | ProcessJob


def check_processes(config: TrainConfig, device: str, processes: int) -> None:
    """Raise :class:`ConfigError` when ``processes`` cannot train ``config`` on this machine."""
    most = max_processes(config.device)
    if not isinstance(processes, int) or isinstance(processes, bool) or not 1 <= processes <= most:
        where = (
            "one per GPU" if device == "cuda" else "one per core" if device == "cpu" else "no torchrun here"
        )
        raise ConfigError(
            f"Processes must be a whole number from 1 to {most} on the {device.upper()} ({where}), got "
            f"{processes!r}; choose 1 to train in the app's own process."
        )
    if processes > 1 and config.batch_size < processes:
        raise ConfigError(
            f"Batch size {config.batch_size} is smaller than the {processes} processes: the batch size is the "
            f"global batch, split across processes; use at least {processes}."
        )
    if processes > 1 and config.sync_batchnorm and device != "cuda":
        raise ConfigError("sync_batchnorm needs CUDA GPUs; turn it off for a CPU run.")


class JobRegistry:
    """All jobs of this process. Thread-safe; shared by every browser session of the server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: list[AnyJob] = []

    def start(
        self,
        config: TrainConfig,
        *,
        run_name: str | None = None,
        runs_dir: Path | None = None,
        resume: bool = False,
        processes: int = 1,
    ) -> AnyJob:
        """Start ``config`` in the background as run ``run_name`` (default: a fresh name): in a thread of this
        process, or with ``processes > 1`` as a data-parallel torchrun run of that many processes."""
        config.validate()
        device = resolve_device(config.device).type
        check_processes(config, device, processes)
        if device == "cpu" and config.threads == 0:
            # Leave a core to the web server and the browser so the page stays responsive.
            config = replace(config, threads=max(1, ((os.cpu_count() or 2) - 1) // processes))
        root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        with self._lock:
            busy = next((job for job in self._jobs if job.alive and job.device == device), None)
            if busy is not None:
                raise JobBusyError(
                    f"Run {busy.run_name!r} is already training on the {device.upper()}; wait for it to "
                    "finish or stop it, then start again."
                )
            name = run_name or new_run_name(config.model, config.dataset, root)
            snap = JobSnapshot(
                run_name=name, run_dir=root / name, device=device, epochs=config.epochs, world_size=processes
            )
            job: AnyJob = (
                Job(config=config, _snap=snap)
                if processes == 1
                else ProcessJob(config=config, processes=processes, _snap=snap)
            )
            self._jobs.append(job)
            job.start(resume=resume)
        return job

    def active(self) -> AnyJob | None:
        """The most recently started job that is still running, if any."""
        with self._lock:
            return next((job for job in reversed(self._jobs) if job.alive), None)

    def latest(self) -> AnyJob | None:
        """The most recently started job, running or not."""
        with self._lock:
            return self._jobs[-1] if self._jobs else None

    def get(self, run_name: str) -> AnyJob | None:
        with self._lock:
            return next((job for job in reversed(self._jobs) if job.run_name == run_name), None)

    def jobs(self) -> list[AnyJob]:
        with self._lock:
            return list(self._jobs)

    def adopt_running(self, runs_dir: Path | None = None) -> list[ProcessJob]:
        """Adopt the torchrun runs under ``runs_dir`` that a previous server process started and that are
        still training (they run in sessions of their own and outlive it): the sidebar, the live view and
        Stop work for them again. Returns the adopted jobs."""
        root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        adopted = []
        with self._lock:
            known = {job.run_dir.resolve() for job in self._jobs}
            for run_dir in sorted(root.glob("*/launch.json")):
                if run_dir.parent.resolve() not in known and (job := ProcessJob.adopt(run_dir.parent)):
                    self._jobs.append(job)
                    adopted.append(job)
        return adopted

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
            _REGISTRY.adopt_running()  # torchrun runs that outlived the previous server process
        return _REGISTRY
