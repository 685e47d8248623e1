"""A search in a background thread of the app, with progress the page polls and Stop — a job under the one
rule (:mod:`cnndash.jobs.claims`, kind ``search``), shaped like the label check (:mod:`cnndash.jobs.label_check`).

A search starts only with a claim: never beside a training run on its device nor beside a label check, in
this process or any other, and a training run refuses to start beside it in the same way. Its trial runs
hold their leases under the claim's id. The page reads an immutable :class:`SearchSnapshot`; the jobs of
this process are kept here by search id (small and self-contained, so it can move into the registry).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from cnndash.device import resolve_device
from cnndash.errors import UserError
from cnndash.jobs import claims
from cnndash.jobs.claims import SEARCH, Claim, JobBusyError
from cnndash.jobs.registry import get_registry
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


def _said(exc: ValueError) -> str:
    """A user error's message, keeping its template for the page (``Phrase.of``) when it is a typed one."""
    return Phrase.of(exc) if isinstance(exc, UserError) else str(exc)


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


class SearchJob:
    """One search in a daemon thread; :meth:`stop` ends it within one batch (the trials so far are kept)."""

    def __init__(self, base: TrainConfig, trials: int, budget_s: float | None, space: SearchSpace | None,
                 runs_dir: Path | None, claim: Claim, search_id: str) -> None:  # fmt: skip
        self.claim = claim
        self.search_id = search_id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snap = SearchSnapshot(search_id=search_id, trials=trials, epochs=base.epochs)
        kwargs = dict(trials=trials, budget_s=budget_s, space=space, runs_dir=runs_dir, search_id=search_id)
        self._thread = threading.Thread(
            target=self._run, args=(base, kwargs), name=f"cnndash-{search_id}", daemon=True
        )

    def _update(self, **changes) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    def _progress(self, number: int, event: TrainEvent) -> None:
        if isinstance(event, BatchEvent):
            self._update(trial=number, epoch=event.epoch, epochs=event.epochs,
                         batch_fraction=event.batch / max(event.batches, 1))  # fmt: skip
        elif isinstance(event, EpochEvent):
            self._update(trial=number, epoch=event.epoch, epochs=event.epochs, batch_fraction=1.0)

    def _trial_done(self, result: TrialResult) -> None:
        with self._lock:
            self._snap = replace(self._snap, done=(*self._snap.done, result), epoch=0, batch_fraction=0.0)

    def _run(self, base: TrainConfig, kwargs: dict) -> None:
        try:
            result = run_search(base, on_trial=self._trial_done, on_progress=self._progress,
                                stop_event=self._stop, owner=self.claim.id, **kwargs)  # fmt: skip
            self._update(status="stopped" if result.stopped else "finished", result=result)
        except ValueError as exc:  # the user's data or settings: the message as is
            self._update(status="failed", error=_said(exc))
        except Exception as exc:  # a bug: traceback in the log, one line for the page
            log.exception("search %s crashed", self.search_id)
            self._update(status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.claim.release()

    def start(self) -> None:
        self._thread.start()

    def snapshot(self) -> SearchSnapshot:
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


_JOBS: dict[str, SearchJob] = {}
_JOBS_LOCK = threading.Lock()


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
    with _JOBS_LOCK:
        _JOBS[search_id] = job
    try:
        job.start()
    except BaseException:
        claim.release()
        raise
    return job


def search_job(search_id: str) -> SearchJob | None:
    """The search ``search_id`` started in this process, running or ended."""
    with _JOBS_LOCK:
        return _JOBS.get(search_id)


def active_search_job() -> SearchJob | None:
    """The search running in this process, if any (the rule allows one per device)."""
    with _JOBS_LOCK:
        return next((job for job in reversed(_JOBS.values()) if job.alive), None)


@dataclass(frozen=True)
class LRFinderSnapshot:
    """The learning-rate finder as the page shows it: progress, then the finding."""

    fraction: float = 0.0
    text: str = Phrase(N_("starting"))
    status: str = "running"  # running | finished | stopped | failed
    error: str = ""
    finding: LRFinding | None = field(default=None, repr=False)


class LRFinderJob:
    """:func:`cnndash.training.lr_finder.find_lr` in a daemon thread (a few seconds to a minute), under a
    ``search`` claim: it trains on the device, so not beside a run there."""

    def __init__(self, config: TrainConfig, claim: Claim) -> None:
        self.claim = claim
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._snap = LRFinderSnapshot()
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="cnndash-lr-finder", daemon=True
        )

    def _update(self, **changes) -> None:
        with self._lock:
            self._snap = replace(self._snap, **changes)

    def _run(self, config: TrainConfig) -> None:
        try:
            finding = find_lr(config, progress=lambda f, text: self._update(fraction=f, text=text),
                              stop_event=self._stop)  # fmt: skip
            self._update(status="stopped" if finding.stopped else "finished", finding=finding, fraction=1.0)
        except ValueError as exc:
            self._update(status="failed", error=_said(exc))
        except Exception as exc:
            log.exception("learning-rate finder crashed")
            self._update(status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.claim.release()

    def start(self) -> None:
        self._thread.start()

    def snapshot(self) -> LRFinderSnapshot:
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


def start_lr_finder(config: TrainConfig) -> LRFinderJob:
    """Run the learning-rate finder for ``config`` in the background unless the jobs rule forbids it
    (:class:`SearchBusyError`: a run trains on the device, or a label check or search is going)."""
    config.validate()
    device = resolve_device(config.device).type
    claim = claims.claim(SEARCH, device, "lr-finder", holder=get_registry().holder, error=SearchBusyError)
    job = LRFinderJob(config, claim)
    try:
        job.start()
    except BaseException:
        claim.release()
        raise
    return job
