"""A search in a background thread of the app, with progress the page polls and Stop — a job under the one
rule (:mod:`cnndash.jobs.claims`, kind ``search``), shaped like the label check (:mod:`cnndash.jobs.label_check`).

A search starts only with a claim: never beside a training run on its device nor beside a label check, in
this process or any other, and a training run refuses to start beside it in the same way. Its trial runs
hold their leases under the claim's id. The page reads an immutable :class:`SearchSnapshot`; the jobs of
this process are kept by the job registry (:mod:`cnndash.jobs.registry`), by search id, beside the label checks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cnndash.device import resolve_device
from cnndash.jobs import claims
from cnndash.jobs.claims import SEARCH, Claim, JobBusyError
from cnndash.jobs.registry import get_registry
from cnndash.jobs.thread_job import ThreadJob
from cnndash.search.study import (
    SearchResult,
    SearchSpace,
    TrialResult,
    check_search,
    new_search_id,
    run_search,
)
from cnndash.text import N_, Phrase
from cnndash.training.config import TrainConfig
from cnndash.training.events import BatchEvent, EpochEvent, TrainEvent
from cnndash.training.lr_finder import LRFinding, find_lr

log = logging.getLogger("cnndash.search")


# A job's status as the page words it (marked for the catalogue).
STATUS_WORDS = {"running": N_("running"), "finished": N_("finished"), "stopped": N_("stopped"),
                "failed": N_("failed"), "starting": N_("starting")}  # fmt: skip


class SearchBusyError(JobBusyError):
    """A search would train beside a training run on its device, a label check, or another search."""


@dataclass(frozen=True)
class SearchSnapshot:
    """What the page shows of a search: trials done, the one in flight, and the result once it ended."""

    search_id: str
    trials: int  # asked for
    done: tuple[TrialResult, ...] = ()
    trial: int = 0  # the trial training now (from 0)
    epoch: int = 0
    epochs: int = 0
    batch_fraction: float = 0.0  # of the current epoch
    status: str = "running"  # running | finished | stopped | failed
    error: str = ""
    result: SearchResult | None = field(default=None, repr=False)

    @property
    def fraction(self) -> float:
        if self.status != "running":
            return 1.0
        within = (self.epoch - 1 + self.batch_fraction) / self.epochs if self.epochs and self.epoch else 0.0
        return max(0.0, min(1.0, (len(self.done) + max(within, 0.0)) / max(self.trials, 1)))

    def text(self) -> str:
        if self.status == "running":
            numbers = dict(trial=self.trial + 1, trials=self.trials, done=len(self.done))
            if self.epoch:
                return Phrase(
                    N_("trial {trial} of {trials}, epoch {epoch} of {epochs} ({done} done)"),
                    epoch=self.epoch,
                    epochs=self.epochs,
                    **numbers,
                )
            return Phrase(N_("trial {trial} of {trials} ({done} done)"), **numbers)
        return self.error or Phrase(STATUS_WORDS.get(self.status, self.status))


class SearchJob(ThreadJob[SearchSnapshot]):
    """One search in a daemon thread (:class:`ThreadJob`); :meth:`stop` ends it within one batch (the trials
    so far are kept)."""

    def __init__(self, base: TrainConfig, trials: int, budget_s: float | None, space: SearchSpace | None,
                 runs_dir: Path | None, claim: Claim, search_id: str) -> None:  # fmt: skip
        snapshot = SearchSnapshot(search_id=search_id, trials=trials, epochs=base.epochs)
        super().__init__(snapshot, claim, name=f"cnndash-{search_id}", log=log)
        self.search_id = search_id
        self._base = base
        self._kwargs = dict(
            trials=trials, budget_s=budget_s, space=space, runs_dir=runs_dir, search_id=search_id
        )

    def _progress(self, number: int, event: TrainEvent) -> None:
        if isinstance(event, BatchEvent):
            self.update(trial=number, epoch=event.epoch, epochs=event.epochs,
                        batch_fraction=event.batch / max(event.batches, 1))  # fmt: skip
        elif isinstance(event, EpochEvent):
            self.update(trial=number, epoch=event.epoch, epochs=event.epochs, batch_fraction=1.0)

    def _trial_done(self, result: TrialResult) -> None:
        snap = self.snapshot()  # only this job's thread updates done, so read-then-update is safe
        self.update(done=(*snap.done, result), epoch=0, batch_fraction=0.0)

    def work(self) -> dict:
        result = run_search(self._base, on_trial=self._trial_done, on_progress=self._progress,
                            stop_event=self.stop_event, owner=self.claim.id, **self._kwargs)  # fmt: skip
        return {"status": "stopped" if result.stopped else "finished", "result": result}


def start_search(
    base_config: TrainConfig,
    *,
    trials: int,
    budget_s: float | None = None,
    space: SearchSpace | None = None,
    runs_dir: Path | None = None,
) -> SearchJob:
    """Start a search of ``base_config`` in the background unless the jobs rule forbids it
    (:class:`SearchBusyError`); settings are checked first (:class:`SearchError`, ``ConfigError``)."""
    check_search(trials, budget_s)
    (space or SearchSpace.around(base_config)).check()
    base_config.validate()
    search_id = new_search_id()
    device = resolve_device(base_config.device).type
    claim = claims.claim(SEARCH, device, search_id, holder=get_registry().holder, error=SearchBusyError)
    job = SearchJob(base_config, trials, budget_s, space, runs_dir, claim, search_id)
    get_registry().add_thread_job(SEARCH, search_id, job)  # the page finds it there, the sidebar lists it
    job.start()  # releases the claim if the thread cannot start
    return job


def search_job(search_id: str) -> SearchJob | None:
    """The search ``search_id`` started in this process, running or ended."""
    return get_registry().thread_job(SEARCH, search_id)  # type: ignore[return-value]


def active_search_job() -> SearchJob | None:
    """The search running in this process, if any (the rule allows one per device)."""
    found = get_registry().active_thread_job(SEARCH)
    return found[1] if found is not None else None  # type: ignore[return-value]


@dataclass(frozen=True)
class LRFinderSnapshot:
    """The learning-rate finder as the page shows it: progress, then the finding."""

    fraction: float = 0.0
    text: str = Phrase(N_("starting"))
    status: str = "running"  # running | finished | stopped | failed
    error: str = ""
    finding: LRFinding | None = field(default=None, repr=False)


class LRFinderJob(ThreadJob[LRFinderSnapshot]):
    """:func:`cnndash.training.lr_finder.find_lr` in a daemon thread (a few seconds to a minute), under a
    ``search`` claim: it trains on the device, so not beside a run there."""

    def __init__(self, config: TrainConfig, claim: Claim) -> None:
        super().__init__(LRFinderSnapshot(), claim, name="cnndash-lr-finder", log=log)
        self._config = config

    def work(self) -> dict:
        finding = find_lr(self._config, progress=lambda f, text: self.update(fraction=f, text=text),
                          stop_event=self.stop_event)  # fmt: skip
        return {"status": "stopped" if finding.stopped else "finished", "finding": finding, "fraction": 1.0}


def start_lr_finder(config: TrainConfig) -> LRFinderJob:
    """Run the learning-rate finder for ``config`` in the background unless the jobs rule forbids it
    (:class:`SearchBusyError`: a run trains on the device, or a label check or search is going)."""
    config.validate()
    device = resolve_device(config.device).type
    claim = claims.claim(SEARCH, device, "lr-finder", holder=get_registry().holder, error=SearchBusyError)
    job = LRFinderJob(config, claim)
    job.start()  # releases the claim if the thread cannot start
    return job
