"""A budgeted hyperparameter search: Optuna's TPE sampler with a successive-halving pruner, whose trials are runs.

:func:`run_search` trains ``trials`` configurations drawn from a :class:`SearchSpace` around a base config.
Trial 0 is the base config itself, trained in full: it is the reference "one run", and unless a budget is
given the whole search must end within twice its wall time. Every later trial reports its validation accuracy
after each epoch; Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner` stops the ones that trail the
others at the same epoch (most after one epoch), which is how several configurations fit in the time of two
runs. Every later trial gets an equal share of the time left (the pruner may end it sooner), so all of them
start; the best is the trial furthest ahead of the reference at the same epoch (:func:`best_trial`).

Each trial is an ordinary run in the runs folder (``purpose="trial"``, ``group="search:<id>"``), so its
curves and checkpoints can be opened like any other, and pickers that list runs with
``include_hidden=False`` leave it out. :func:`search_trials` reads a search back from its runs (after a
reload, or from another process). :attr:`SearchResult.best_config` is the best trial's settings as a normal
run (``purpose="train"``, the base's epochs): one click trains it.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import optuna

from cnndash.errors import UserError
from cnndash.runs import RunWriter, list_runs, read_summary
from cnndash.runs.layout import runs_root
from cnndash.training.config import MAX_LR, ConfigError, TrainConfig
from cnndash.training.events import EpochEvent, TrainEvent
from cnndash.training.loops import train

log = logging.getLogger("cnndash.search")
MAX_TRIALS = 100
GROUP_PREFIX = "search:"
REFERENCE_FACTOR = 2.0  # without a budget, the search ends within this many times the reference run's time
TrialCallback = Callable[["TrialResult"], None]
ProgressCallback = Callable[[int, TrainEvent], None]  # (trial number, the trial's training event)


class SearchError(UserError):
    """A search that cannot run as asked (the message names the setting and a valid value)."""


@dataclass(frozen=True)
class SearchSpace:
    """What the search may change: models and sizes to choose from, and a learning-rate range (log scale).

    A setting with one choice stays fixed. :meth:`around` gives the default space for a base config."""

    models: tuple[str, ...]
    lr_low: float
    lr_high: float
    image_sizes: tuple[int, ...] = ()  # () keeps the base's size
    batch_sizes: tuple[int, ...] = ()  # () keeps the base's batch size

    @classmethod
    def around(cls, config: TrainConfig, models: Sequence[str] = ()) -> SearchSpace:
        """``config``'s model (or ``models``), a learning rate from a tenth to three times its own, and its
        image and batch sizes."""
        return cls(
            models=tuple(models) or (config.model,),
            lr_low=config.lr / 10,
            lr_high=min(config.lr * 3, MAX_LR),
        )

    def check(self) -> None:
        if not self.models:
            raise SearchError("The search needs at least one model to try.")
        if not (0 < self.lr_low <= self.lr_high <= MAX_LR):
            raise SearchError(
                "The learning-rate range {low}–{high} must be positive, low before high, and at most {most} "
                "(e.g. 1e-4 to 1e-2).",
                low=f"{self.lr_low:g}",
                high=f"{self.lr_high:g}",
                most=f"{MAX_LR:g}",
            )
        for name, values in (("image size", self.image_sizes), ("batch size", self.batch_sizes)):
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise SearchError(
                    "Every {name} to try must be a positive whole number, got {values}.",
                    name=name,
                    values=list(values),
                )

    def suggest(self, trial: optuna.Trial, base: TrainConfig) -> dict:
        """The settings of ``trial`` (only the ones the space varies)."""
        params: dict = {"lr": trial.suggest_float("lr", self.lr_low, self.lr_high, log=True)}
        if len(self.models) > 1:
            params["model"] = trial.suggest_categorical("model", list(self.models))
        if len(self.image_sizes) > 1:
            params["image_size"] = trial.suggest_categorical("image_size", list(self.image_sizes))
        if len(self.batch_sizes) > 1:
            params["batch_size"] = trial.suggest_categorical("batch_size", list(self.batch_sizes))
        return params

    def base_params(self, base: TrainConfig) -> dict:
        """The reference trial's settings (the base config's own, clipped into the space)."""
        params: dict = {"lr": min(max(base.lr, self.lr_low), self.lr_high)}
        if len(self.models) > 1:
            params["model"] = base.model if base.model in self.models else self.models[0]
        if len(self.image_sizes) > 1:
            params["image_size"] = (
                base.image_size if base.image_size in self.image_sizes else self.image_sizes[0]
            )
        if len(self.batch_sizes) > 1:
            params["batch_size"] = (
                base.batch_size if base.batch_size in self.batch_sizes else self.batch_sizes[0]
            )
        return params


@dataclass(frozen=True)
class TrialResult:
    """One trial: its settings, validation accuracy (the best epoch's), state and run."""

    number: int
    params: dict
    value: float | None  # validation accuracy (0–1); None when no epoch finished
    state: str  # complete | pruned | stopped (deadline or Stop) | failed
    run_name: str
    epochs: int = 0  # epochs it trained
    seconds: float = 0.0
    note: str = ""
    curve: tuple[float, ...] = ()  # validation accuracy after each epoch (what best_trial compares)

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "params": dict(self.params),
            "value": self.value,
            "state": self.state,
            "run_name": self.run_name,
            "epochs": self.epochs,
            "seconds": round(self.seconds, 2),
            "note": self.note,
            "curve": list(self.curve),
        }


@dataclass(frozen=True)
class SearchResult:
    """What a search found: every trial, the best one, and the config that trains it as a normal run."""

    search_id: str
    trials: list[TrialResult]
    base_config: TrainConfig
    seconds: float
    deadline_s: float  # the time the search allowed itself (the budget, or 2x the reference run)
    stopped: bool = False  # Stop was pressed
    not_started: int = 0  # trials the deadline left out
    best: TrialResult | None = field(default=None)

    @property
    def group(self) -> str:
        return GROUP_PREFIX + self.search_id

    @property
    def best_config(self) -> TrainConfig | None:
        """The best trial's settings as a run a person trains (``purpose="train"``, the base's epochs)."""
        if self.best is None:
            return None
        return replace(self.base_config, **self.best.params, purpose="train", group="")

    def table(self) -> list[dict]:
        """One row per trial: ``number``, each varied setting, ``value``, ``state`` (for a table or a
        parallel-coordinates chart)."""
        return [{"number": t.number, **t.params, "value": t.value, "state": t.state} for t in self.trials]

    def to_dict(self) -> dict:
        return {
            "search_id": self.search_id,
            "seconds": round(self.seconds, 2),
            "deadline_s": round(self.deadline_s, 2),
            "stopped": self.stopped,
            "not_started": self.not_started,
            "best": self.best.to_dict() if self.best else None,
            "best_config": self.best_config.to_dict() if self.best_config else None,
            "trials": [t.to_dict() for t in self.trials],
        }


def new_search_id() -> str:
    """A fresh id, readable and sortable: ``search-YYYYmmdd-HHMMSS-<4 hex>``."""
    return f"search-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def best_trial(
    trials: Sequence[TrialResult], curves: dict[int, list[float]] | None = None
) -> TrialResult | None:
    """The trial furthest ahead of the reference (trial 0) at the same epoch — best validation accuracy so
    far against the reference's after as many epochs — so a trial cut short by its share of the time counts
    by how it compared, not by its short run's accuracy; ties go to the earlier trial (the reference first).
    ``curves`` (each trial's validation accuracy per epoch) default to the trials' own ``curve``; without
    any: the complete trial with the highest value, else the best trial with any value."""
    curves = curves or {t.number: list(t.curve) for t in trials if t.curve}
    reference = curves.get(0)
    if reference:
        leads = {}
        for t in trials:
            curve = curves.get(t.number) or []
            if curve and t.state != "failed":
                k = min(len(curve), len(reference))
                leads[t.number] = max(curve[:k]) - max(reference[:k])
        if leads:
            number = max(leads, key=lambda n: (leads[n], -n))
            return next(t for t in trials if t.number == number)
    for pool in ([t for t in trials if t.state == "complete"], list(trials)):
        scored = [t for t in pool if t.value is not None]
        if scored:
            return max(scored, key=lambda t: (t.value, -t.number))
    return None


def check_search(trials: object, budget_s: object) -> None:
    """A :class:`SearchError` unless ``trials`` is 1..MAX_TRIALS and ``budget_s`` None or positive seconds."""
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= MAX_TRIALS:
        raise SearchError(
            "The number of trials must be a whole number from 1 to {most}, got {trials}.",
            most=MAX_TRIALS,
            trials=repr(trials),
        )
    if budget_s is not None and (
        isinstance(budget_s, bool) or not isinstance(budget_s, int | float) or not (0 < budget_s < math.inf)
    ):
        raise SearchError(
            "The search's time budget must be a positive number of seconds, got {budget}.",
            budget=repr(budget_s),
        )


class _TrialWatch:
    """One trial's stop flag and epoch reports: set by the pruner, the search's Stop, or the deadline."""

    def __init__(self, trial: optuna.Trial, number: int, outer: threading.Event | None, deadline: float,
                 progress: ProgressCallback | None) -> None:  # fmt: skip
        self.trial, self.number, self.outer, self.deadline = trial, number, outer, deadline
        self.progress = progress
        self.stop = threading.Event()
        self.why = ""  # "pruned" | "deadline" | "stopped"
        self.last_value: float | None = None
        self.curve: list[float] = []  # validation accuracy after each epoch
        self.epochs = 0

    def _halt(self, why: str) -> None:
        if not self.stop.is_set():
            self.why = why
            self.stop.set()

    def __call__(self, event: TrainEvent) -> None:
        if self.progress is not None:
            self.progress(self.number, event)
        if self.outer is not None and self.outer.is_set():
            self._halt("stopped")
        elif time.monotonic() >= self.deadline:
            self._halt("deadline")
        if isinstance(event, EpochEvent):
            self.epochs = event.epoch
            self.curve.append(event.val_acc)
            self.last_value = max(self.last_value or 0.0, event.val_acc)
            self.trial.report(event.val_acc, event.epoch)
            if event.epoch < event.epochs and self.trial.should_prune():
                self._halt("pruned")


def _train_trial(  # long: one trial from start to its result, its summary and the note on why it ended
    config: TrainConfig, run_dir: Path, watch: _TrialWatch, owner: str | None, share_ends: bool
) -> TrialResult:
    started = time.monotonic()
    params = {k: v for k, v in watch.trial.params.items()}
    note, summary = "", {}
    try:
        summary = train(config, run_dir, on_event=watch, stop_event=watch.stop, owner=owner)
        state = "complete" if summary.get("status", "finished") == "finished" else watch.why or "stopped"
    except ValueError as exc:
        # The trial's settings or data (a diverged trial too): the trial failed, not the search.
        state, note = "failed", str(exc)
    value = watch.last_value if state != "complete" else float(summary.get("val_accuracy", 0.0))
    state = "stopped" if state == "deadline" else state
    if state == "stopped" and watch.why == "deadline":
        note = (
            "stopped at the end of its share of the time"
            if share_ends
            else "stopped at the search's deadline"
        )
    result = TrialResult(watch.number, params, value, state, run_dir.name, watch.epochs,
                         time.monotonic() - started, note, tuple(watch.curve))  # fmt: skip
    if summary:  # the trial's own summary says what the search made of it (read back by search_trials)
        RunWriter(run_dir).write_summary({**summary, "search": result.to_dict()})
    return result


def _tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
    if result.state == "complete":
        study.tell(trial, result.value)
    elif result.state == "failed":
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:  # pruned or cut short: Optuna learns from its intermediate values
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def run_search(
    base_config: TrainConfig,
    *,
    trials: int,
    budget_s: float | None = None,
    runs_dir: Path | None = None,
    space: SearchSpace | None = None,
    search_id: str | None = None,
    on_trial: TrialCallback | None = None,
    on_progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
    owner: str | None = None,
) -> SearchResult:
    """Search ``space`` (default :meth:`SearchSpace.around` ``base_config``) with ``trials`` trials of
    ``base_config.epochs`` epochs each, in ``budget_s`` seconds (default: twice the first trial's time).

    ``on_trial`` gets each trial's result as it ends, ``on_progress`` every training event with its trial's
    number; ``stop_event`` ends the search within one batch. ``owner`` is the job id whose lease the trial
    runs hold (a job's claim). Raises :class:`SearchError` or :class:`ConfigError` for bad settings."""
    check_search(trials, budget_s)
    space = space or SearchSpace.around(base_config)
    space.check()
    base_config.validate()
    search_id = search_id or new_search_id()
    root = runs_root(runs_dir)
    root.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base_config.seed, n_startup_trials=min(4, trials)),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
        study_name=search_id,
    )
    study.enqueue_trial(space.base_params(base_config))
    started = time.monotonic()
    deadline = started + budget_s if budget_s is not None else math.inf
    results: list[TrialResult] = []
    for number in range(trials):
        if (stop_event is not None and stop_event.is_set()) or time.monotonic() >= deadline:
            break
        trial = study.ask()
        params = space.suggest(trial, base_config)
        config = replace(base_config, **params, purpose="trial", group=GROUP_PREFIX + search_id)
        try:
            config.validate()
        except ConfigError as exc:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            results.append(TrialResult(number, dict(trial.params), None, "failed", "", note=str(exc)))
            continue
        # Every trial after the reference gets an equal share of the time left, so all of them start (the
        # pruner may end one sooner); best_trial compares them with the reference at the same epoch.
        now = time.monotonic()
        ends = (
            deadline
            if number == 0 or not math.isfinite(deadline)
            else now + (deadline - now) / (trials - number)
        )
        watch = _TrialWatch(trial, number, stop_event, ends, on_progress)
        result = _train_trial(config, root / f"{search_id}-trial-{number:02d}", watch, owner, ends < deadline)
        _tell(study, trial, result)
        results.append(result)
        if on_trial is not None:
            on_trial(result)
        if number == 0 and budget_s is None:  # the reference run sets the deadline
            deadline = started + REFERENCE_FACTOR * result.seconds
    seconds = time.monotonic() - started
    allowed = (deadline - started) if math.isfinite(deadline) else seconds
    return SearchResult(search_id, results, base_config, seconds, allowed,
                        stopped=bool(stop_event is not None and stop_event.is_set()),
                        not_started=trials - len(results), best=best_trial(results))  # fmt: skip


def search_trials(search_id: str, runs_dir: Path | None = None) -> list[TrialResult]:
    """The trials of search ``search_id`` read back from their runs (those that ended), in trial order."""
    group = GROUP_PREFIX + search_id
    out = []
    for run in list_runs(runs_dir):
        if run.purpose != "trial" or run.config.get("group") != group:
            continue
        found = (read_summary(run.path) or {}).get("search")
        if isinstance(found, dict) and isinstance(found.get("params"), dict):
            out.append(
                TrialResult(int(found.get("number", 0)), found["params"], found.get("value"),
                            str(found.get("state", "")), run.name, int(found.get("epochs", 0)),
                            float(found.get("seconds", 0.0)), str(found.get("note", "")),
                            tuple(float(v) for v in found.get("curve") or ()))
            )  # fmt: skip
    return sorted(out, key=lambda t: t.number)
