"""K-fold label-issue finding in a background thread, with progress the page polls.

Like :mod:`cnndash.jobs.registry` for one run: the work runs in a thread that checks a stop flag between batches
(through :func:`cnndash.training.loops.train`), and the page reads an immutable :class:`LabelJobSnapshot`.
Jobs are keyed (by the page: one per run), process-wide, one at a time per key.

The job trains with :func:`cnndash.training.loops.train` directly, outside :mod:`cnndash.jobs.registry`' registry, so the
two refuse each other here: :func:`start_label_issues` refuses while a training run of the registry is
alive, and :func:`check_no_label_job` is what the pages call before starting a training run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from cnndash.evaluate.label_issues import LabelIssuesStopped, find_dataset_label_issues
from cnndash.jobs.registry import get_registry
from cnndash.training.config import TrainConfig
from cnndash.training.events import EpochEvent, TrainEvent

log = logging.getLogger("cnndash.evaluate.label_issues")


class LabelJobBusyError(ValueError):
    """A K-fold job and a training run would train at the same time."""


@dataclass(frozen=True)
class LabelJobSnapshot:
    out_dir: Path
    folds: int
    fold: int = 0  # the fold training now (from 1), 0 before the first
    epoch: int = 0
    epochs: int = 0
    status: str = "running"  # running | finished | stopped | failed
    error: str = ""

    @property
    def fraction(self) -> float:
        if self.status == "finished":
            return 1.0
        per_fold = self.epoch / self.epochs if self.epochs else 0.0
        return max(0.0, min(1.0, (max(self.fold - 1, 0) + per_fold) / max(self.folds, 1)))

    def text(self) -> str:
        if self.status == "running":
            return f"fold {max(self.fold, 1)} of {self.folds}, epoch {self.epoch} of {self.epochs}"
        return self.error or self.status


class LabelIssuesJob:
    def __init__(self, dataset: str, template: TrainConfig, out_dir: Path, folds: int) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snap = LabelJobSnapshot(out_dir=Path(out_dir), folds=folds, epochs=template.epochs)
        self._thread = threading.Thread(
            target=self._run, args=(dataset, template), name=f"label-issues-{dataset}", daemon=True
        )

    def _update(self, **changes) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    def _progress(self, fold: int, folds: int, event: TrainEvent) -> None:
        if isinstance(event, EpochEvent):
            self._update(fold=fold, epoch=event.epoch, epochs=event.epochs)
        elif fold != self._snap.fold:
            self._update(fold=fold, epoch=0)

    def _run(self, dataset: str, template: TrainConfig) -> None:
        snap = self._snap
        try:
            find_dataset_label_issues(dataset, template, snap.out_dir, folds=snap.folds,
                                      on_progress=self._progress, stop_event=self._stop)  # fmt: skip
            self._update(status="finished")
        except LabelIssuesStopped as exc:
            self._update(status="stopped", error=str(exc))
        except ValueError as exc:  # the user's data or settings: the message as is
            self._update(status="failed", error=str(exc))
        except Exception as exc:  # a bug: traceback in the log, one line for the page
            log.exception("label-issue job on %s crashed", dataset)
            self._update(status="failed", error=f"{type(exc).__name__}: {exc}")

    def snapshot(self) -> LabelJobSnapshot:
        with self._lock:
            return self._snap

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


_JOBS: dict[str, LabelIssuesJob] = {}
_JOBS_LOCK = threading.Lock()


def start_label_issues(
    key: str, dataset: str, template: TrainConfig, out_dir: Path, folds: int
) -> LabelIssuesJob:
    """Start K-fold label-issue finding for ``key`` unless one is already running (for any run: one
    at a time, as training runs) or a training run is in progress."""
    template.validate()
    training = get_registry().active()
    if training is not None:
        raise LabelJobBusyError(
            f"Run {training.run_name!r} is training; checking every image trains {folds} more runs. Wait "
            "for it to finish or stop it on the Training page, then start the check again."
        )
    with _JOBS_LOCK:
        running = _running()
        if running is not None:
            raise LabelJobBusyError(
                f"Label issues are already being computed (for run {running[0]!r}); wait for them or stop "
                "them first."
            )
        job = _JOBS[key] = LabelIssuesJob(dataset, template, out_dir, folds)
        job._thread.start()
    return job


def label_issues_job(key: str) -> LabelIssuesJob | None:
    with _JOBS_LOCK:
        return _JOBS.get(key)


def _running() -> tuple[str, LabelIssuesJob] | None:
    return next(((key, job) for key, job in reversed(_JOBS.items()) if job.alive), None)


def active_label_job() -> tuple[str, LabelIssuesJob] | None:
    """(key, job) of the K-fold job running now, if any (there is at most one)."""
    with _JOBS_LOCK:
        return _running()


def check_no_label_job() -> None:
    """Raise :class:`LabelJobBusyError` while a K-fold job trains: call before starting a training run."""
    running = active_label_job()
    if running is not None:
        snap = running[1].snapshot()
        raise LabelJobBusyError(
            f"The label check of run {running[0]!r} is training its folds ({snap.text()}); wait for it to "
            "finish or stop it on Evaluation → Data, then start this run."
        )
