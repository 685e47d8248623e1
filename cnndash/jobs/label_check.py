"""K-fold label-issue finding in a background thread, with progress the page polls — a job of the one
registry (:mod:`cnndash.jobs.registry`), under the one rule (:mod:`cnndash.jobs.claims`).

The work runs in a thread that checks a stop flag between batches (through
:func:`cnndash.training.loops.train`), and the page reads an immutable :class:`LabelJobSnapshot`. A check
starts only with a claim: never beside a training run nor another check, in this process or any other; a
training run refuses to start beside it in the same way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cnndash.device import resolve_device
from cnndash.evaluate.label_issues import LabelIssuesStopped, find_dataset_label_issues
from cnndash.jobs import claims
from cnndash.jobs.claims import LABEL_CHECK, TRAINING, Claim, JobBusyError
from cnndash.jobs.registry import get_registry
from cnndash.jobs.thread_job import ThreadJob
from cnndash.text import N_, Phrase
from cnndash.training.config import TrainConfig
from cnndash.training.events import EpochEvent, TrainEvent

log = logging.getLogger("cnndash.evaluate.label_issues")


class LabelJobBusyError(JobBusyError):
    """A K-fold job and a training run (or another K-fold job) would train at the same time."""


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

    def text(self) -> str:  # a Phrase while running: the page says it in the reader's language
        if self.status == "running":
            return Phrase(N_("fold {fold} of {folds}, epoch {epoch} of {epochs}"), fold=max(self.fold, 1),
                          folds=self.folds, epoch=self.epoch, epochs=self.epochs)  # fmt: skip
        return self.error or self.status  # a status is an engine message id (evaluate.compare.RUN_STATUSES)


class LabelIssuesJob(ThreadJob[LabelJobSnapshot]):
    """K-fold label-issue finding for one run's dataset, in a daemon thread (:class:`ThreadJob`)."""

    def __init__(self, dataset: str, template: TrainConfig, out_dir: Path, folds: int, claim: Claim) -> None:
        snapshot = LabelJobSnapshot(out_dir=Path(out_dir), folds=folds, epochs=template.epochs)
        super().__init__(snapshot, claim, name=f"label-issues-{dataset}", log=log)
        self._dataset, self._template = dataset, template

    def _progress(self, fold: int, folds: int, event: TrainEvent) -> None:
        if isinstance(event, EpochEvent):
            self.update(fold=fold, epoch=event.epoch, epochs=event.epochs)
        elif fold != self.snapshot().fold:
            self.update(fold=fold, epoch=0)

    def work(self) -> dict:
        snap = self.snapshot()
        try:
            find_dataset_label_issues(self._dataset, self._template, snap.out_dir, folds=snap.folds,
                                      on_progress=self._progress, stop_event=self.stop_event)  # fmt: skip
        except LabelIssuesStopped as exc:
            return {"status": "stopped", "error": str(exc)}
        return {"status": "finished"}


def start_label_issues(
    key: str, dataset: str, template: TrainConfig, out_dir: Path, folds: int
) -> LabelIssuesJob:
    """Start K-fold label-issue finding for ``key`` (the run it checks) unless the jobs rule forbids it: a
    training run or another check is in progress (:class:`LabelJobBusyError`)."""
    template.validate()
    registry = get_registry()
    device = resolve_device(template.device).type
    claim = claims.claim(LABEL_CHECK, device, key, holder=registry.holder, error=LabelJobBusyError)
    job = LabelIssuesJob(dataset, template, out_dir, folds, claim)
    registry.add_label_job(key, job)
    job.start()  # releases the claim if the thread cannot start
    return job


def label_issues_job(key: str) -> LabelIssuesJob | None:
    return get_registry().label_job(key)  # type: ignore[return-value]


def active_label_job() -> tuple[str, LabelIssuesJob] | None:
    """(key, job) of the K-fold job running in this process, if any (there is at most one)."""
    return get_registry().active_label_job()  # type: ignore[return-value]


def check_no_label_job() -> None:
    """Raise :class:`LabelJobBusyError` while a K-fold job trains in any process (the same rule
    :meth:`cnndash.jobs.registry.JobRegistry.start` applies; kept for callers that check first)."""
    for row in claims.live_jobs():
        if row.kind == LABEL_CHECK and (why := claims.conflict(TRAINING, row.device, "", row)):
            raise LabelJobBusyError(why)
