"""One job model: every background job of the app — a training run in a thread, a torchrun run, a label
check, and runs other processes train — in one process-wide registry, each read through a snapshot.

The page never trains inside a Streamlit script run (Stop could not interrupt it, and a reload would lose
it). :meth:`JobRegistry.start` runs :func:`cnndash.training.loops.train` in a daemon thread (or, with
``processes > 1``, a torchrun subprocess, :mod:`cnndash.jobs.torchrun`); the trainer's events update the
job's :class:`JobSnapshot` under a lock, and any script run — a rerun, a reload, a second tab — reads a
consistent copy of it through :func:`get_registry`.

What may run together is one rule for every process (:mod:`cnndash.jobs.claims`, in the SQLite core): a
job starts only with a claim, so a second training on a busy device, a training beside a label check, or a
terminal's ``python -m cnndash train`` beside the app's run is refused with :class:`JobBusyError`. Runs
that other processes train (a torchrun run that outlived a restarted server, a run from a terminal) are
adopted as followers: the sidebar and the live view show them, and Stop asks them to stop by request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from cnndash.device import max_processes, resolve_device
from cnndash.jobs import claims
from cnndash.jobs.claims import LABEL_CHECK, SEARCH, TRAINING, Claim, JobBusyError
from cnndash.jobs.snapshot import MAX_BATCH_POINTS, BackgroundJob, JobSnapshot, apply_event, format_eta
from cnndash.jobs.thread_job import said
from cnndash.jobs.torchrun import ProcessJob
from cnndash.paths import data_dir
from cnndash.runs import RunError, RunWriter, check_run_name, new_run_name, sweep_runs
from cnndash.runs.layout import runs_root
from cnndash.runs.lease import holding, new_owner
from cnndash.training.events import TrainEvent
from cnndash.training.loops import ConfigError, TrainConfig, train

__all__ = ["MAX_BATCH_POINTS", "AnyJob", "Job", "JobBusyError", "JobRegistry", "JobSnapshot", "ProcessJob",
           "apply_event", "format_eta", "get_registry"]  # fmt: skip

log = logging.getLogger("cnndash.jobs.registry")
ADOPT_EVERY_SECONDS = 2.0  # how often the registry looks for runs other processes started


@dataclass
class Job(BackgroundJob):
    """One training run in a background thread of this process."""

    config: TrainConfig
    claim: Claim | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _held: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def processes(self) -> int:
        return 1

    def start(self, *, resume: bool) -> None:
        # The run's lease from now on (not only once its data is loaded): it reads "running" and cannot be
        # deleted or resumed twice while it starts.
        self._held.enter_context(holding(self.run_dir, self.claim.id if self.claim else None))
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
                self.config, self.run_dir, resume=resume, on_event=self._on_event, stop_event=self._stop,
                owner=self.claim.id if self.claim else None,
            )  # fmt: skip
            status = summary.get("status", "finished")
            self._update(
                summary=summary,
                status=status,
                error=summary.get("message", "") if status == "stopped" else "",
            )
        except ValueError as exc:  # the user's settings or data: show the message as is
            self._update(status="failed", error=said(exc))  # a typed error keeps its template
        except Exception as exc:  # a bug: keep the traceback in the log, a short line for the page
            log.exception("training run %s crashed", self.run_name)
            self._update(status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._held.close()
            if self.claim is not None:
                self.claim.release()
            self._update(finished=time.time())

    def stop(self) -> None:
        """Ask the run to end; it stops before its next batch and keeps its checkpoint."""
        self._stop.set()
        self._update(stop_requested=True)


AnyJob = Job | ProcessJob


class InThreadJob(Protocol):
    """What the registry needs of a job run in a thread of this process — a label check or a search
    (:class:`cnndash.jobs.thread_job.ThreadJob`)."""

    @property
    def alive(self) -> bool: ...

    def stop(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def check_processes(config: TrainConfig, device: str, processes: int) -> None:
    """Raise :class:`ConfigError` when ``processes`` cannot train ``config`` on this machine."""
    most = max_processes(config.device)
    if not isinstance(processes, int) or isinstance(processes, bool) or not 1 <= processes <= most:
        where = (
            "one per GPU" if device == "cuda" else "one per core" if device == "cpu" else "no torchrun here"
        )
        raise ConfigError(
            "Processes must be a whole number from 1 to {most} on the {device} ({where}), got {processes}; "
            "choose 1 to train in the app's own process.",
            most=most,
            device=device.upper(),
            where=where,
            processes=repr(processes),
        )
    if processes > 1 and config.batch_size < processes:
        raise ConfigError(
            "Batch size {config_batch_size} is smaller than the {processes} processes: the batch size is "
            "the global batch, split across processes; use at least {processes}.",
            config_batch_size=config.batch_size,
            processes=processes,
        )
    if processes > 1 and config.sync_batchnorm and device != "cuda":
        raise ConfigError("sync_batchnorm needs CUDA GPUs; turn it off for a CPU run.")


class JobRegistry:
    """All jobs of this process, and the runs it follows for others. Thread-safe; shared by every browser
    session of the server."""

    def __init__(self) -> None:
        self.holder = new_owner()  # this registry in the jobs table
        self._lock = threading.Lock()
        self._jobs: list[AnyJob] = []
        self._thread_jobs: dict[tuple[str, str], InThreadJob] = {}  # (kind, key): label checks, searches
        self._adopted_at = 0.0

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
        process, or with ``processes > 1`` as a data-parallel torchrun run of that many processes. Refused
        (:class:`JobBusyError`) when the jobs rule forbids it."""
        config.validate()
        device = resolve_device(config.device).type
        check_processes(config, device, processes)
        if device == "cpu" and config.threads == 0:
            # Leave a core to the web server and the browser so the page stays responsive.
            config = replace(config, threads=max(1, ((os.cpu_count() or 2) - 1) // processes))
        root = runs_root(runs_dir)
        with self._lock:
            name = check_run_name(run_name) if run_name else new_run_name(config.model, config.dataset, root)
            run_dir = root / name
            if resume and not run_dir.is_dir():
                raise RunError(
                    "Nothing to resume: there is no run {name} under {root}.", name=repr(name), root=root
                )
            created = run_name is None or not run_dir.exists()
            try:
                RunWriter(run_dir).create()
                claim = claims.claim(TRAINING, device, name, holder=self.holder, run_dir=run_dir,
                                     processes=processes, config=config.to_dict())  # fmt: skip
            except BaseException:
                if created:  # the empty folder this call made
                    with suppress(OSError):
                        run_dir.rmdir()
                raise
            snap = JobSnapshot(run_name=name, run_dir=run_dir, device=device, epochs=config.epochs,
                               world_size=processes)  # fmt: skip
            job: AnyJob = (
                Job(config=config, claim=claim, _snap=snap)
                if processes == 1
                else ProcessJob(config=config, processes=processes, claim=claim, _snap=snap)
            )
            try:
                job.start(resume=resume)
            except BaseException:
                claim.release()
                raise
            self._jobs.append(job)
        return job

    def active(self) -> AnyJob | None:
        """The most recently started training job that is still running, if any (adopted runs included)."""
        self._adopt_now_and_then()
        with self._lock:
            return next((job for job in reversed(self._jobs) if job.alive), None)

    def latest(self) -> AnyJob | None:
        """The most recently started training job, running or not."""
        with self._lock:
            return self._jobs[-1] if self._jobs else None

    def get(self, run_name: str) -> AnyJob | None:
        with self._lock:
            return next((job for job in reversed(self._jobs) if job.run_name == run_name), None)

    def jobs(self) -> list[AnyJob]:
        with self._lock:
            return list(self._jobs)

    # ---- jobs run in a thread: label checks (cnndash.jobs.label_check) and searches (cnndash.search.job),
    # claimed under this registry's holder by the module that starts them
    def add_thread_job(self, kind: str, key: str, job: InThreadJob) -> None:
        with self._lock:
            self._thread_jobs[(kind, key)] = job

    def thread_job(self, kind: str, key: str) -> InThreadJob | None:
        with self._lock:
            return self._thread_jobs.get((kind, key))

    def active_thread_job(self, kind: str) -> tuple[str, InThreadJob] | None:
        """(key, job) of the ``kind`` job running in this process, if any (the rule allows one per kind)."""
        with self._lock:
            alive = [(k, j) for (job_kind, k), j in self._thread_jobs.items() if job_kind == kind and j.alive]
        return alive[-1] if alive else None

    def add_label_job(self, key: str, job: InThreadJob) -> None:
        self.add_thread_job(LABEL_CHECK, key, job)

    def label_job(self, key: str) -> InThreadJob | None:
        return self.thread_job(LABEL_CHECK, key)

    def active_label_job(self) -> tuple[str, InThreadJob] | None:
        """(key, job) of the label check running in this process, if any (there is at most one)."""
        return self.active_thread_job(LABEL_CHECK)

    def running(self) -> list[tuple[str, str, AnyJob | InThreadJob]]:
        """Every job running now as (kind, name, job): ``("training", run name, job)``,
        ``("label_check", the run it checks, job)`` and ``("search", search id, job)`` — what the sidebar
        shows."""
        out: list[tuple[str, str, AnyJob | InThreadJob]] = []
        if (training := self.active()) is not None:
            out.append((TRAINING, training.run_name, training))
        for kind in (LABEL_CHECK, SEARCH):
            if (found := self.active_thread_job(kind)) is not None:
                out.append((kind, *found))
        return out

    # ---- runs other processes train
    def adopt_running(self, runs_dir: Path | None = None) -> list[ProcessJob]:
        """Follow the runs that other processes train (a torchrun run that outlived the server that launched
        it, another server's run, a terminal's ``cnndash train``), optionally only those under ``runs_dir``:
        the sidebar, the live view and Stop (a request) work for them. Returns the jobs adopted now."""
        under = str(Path(runs_dir).resolve()) if runs_dir is not None else None
        folder = data_dir().resolve()
        adopted = []
        with self._lock:
            self._adopted_at = time.monotonic()
            known = {job.job_id for job in self._jobs if isinstance(job, ProcessJob)}
            known |= {job.claim.id for job in self._jobs if isinstance(job, Job) and job.claim}
            for row in claims.live_jobs(folder):
                if row.kind != TRAINING or row.holder == self.holder or row.id in known:
                    continue
                if under is not None and str(Path(row.run_dir).parent) != under:
                    continue
                if (job := ProcessJob.follow(row, folder)) is not None:
                    self._jobs.append(job)
                    adopted.append(job)
        return adopted

    def _adopt_now_and_then(self) -> None:
        if time.monotonic() - self._adopted_at >= ADOPT_EVERY_SECONDS:
            try:
                self.adopt_running()
            except Exception:  # a damaged database must not take the pages down: the rule still refuses
                log.exception("adopting runs of other processes failed")

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every running job and wait for them (used at shutdown and by tests)."""
        with self._lock:
            everything = [*self._jobs, *self._thread_jobs.values()]
        for job in everything:
            job.stop()
        for job in everything:
            job.wait(timeout)


_REGISTRY: JobRegistry | None = None
_REGISTRY_LOCK = threading.Lock()


def get_registry() -> JobRegistry:
    """The process-wide registry (created on first use: leftovers of killed processes are swept and the
    runs other processes train are adopted; neither can make this fail)."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            _REGISTRY = JobRegistry()
            try:
                sweep_runs()
                _REGISTRY.adopt_running()
            except Exception:
                log.exception("sweeping or adopting at start failed")
        return _REGISTRY
