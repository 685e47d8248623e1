"""The learning-rate finder (Smith 2015, "Cyclical Learning Rates"; fastai's ``lr_find``), with its suggestion
checked by short trial runs before it is offered.

:func:`find_lr` trains a fresh copy of the run's model for a few dozen batches while the learning rate grows
exponentially, records the loss, and stops once the loss has clearly blown up. Three readings of that curve
are candidates: fastai's *valley* (the middle of the longest stretch where the loss keeps falling), the
steepest descent measured against log(lr) (Lightning once measured it against the step index, #14248), and
the loss minimum's lr / 10. Users of both libraries report suggestions that do not train (Lightning #14248,
#21141 on noisy curves; fastai #3658 and #3476 on stale or NaN recorder state), so here every candidate and the
run's current learning rate train the same fresh model for a short trial from the same start on the same
batches, and the one whose loss fell furthest is offered — or, when none fell, the current one is kept and the
finding says so. The model, the optimiser state and torch's random state are left as they were: the finder
works on its own run set up in a temporary folder.
"""

from __future__ import annotations

import copy
import math
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
from torch import nn

from cnndash.data.pins import release, run_holder
from cnndash.errors import Term
from cnndash.text import N_, Phrase
from cnndash.training.config import TrainConfig
from cnndash.training.setup import Trainer, setup

LR_RANGE = {"adam": (1e-6, 1.0), "adamw": (1e-6, 1.0), "sgd": (1e-5, 10.0)}
RANGE_STEPS = 60  # batches of the range test (fastai: 100; fewer keep it to seconds on a CPU)
TRIAL_STEPS = 20  # batches of each trial run
SMOOTHING = 0.8  # debiased exponential moving average of the loss (fewer steps than fastai's 100: less)
BLOWUP = 4.0  # the range test stops when the smoothed loss exceeds this many times its minimum
MIN_FALL = 0.05  # a trial's loss must fall by at least this share to count as training
ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True)
class TrialCheck:
    lr: float
    source: str  # "valley", "steepest", "minimum / 10" or "current"
    start_loss: float  # the first batch's loss, before any update (the same in every trial)
    end_loss: float  # mean of its last batches

    @property
    def fell(self) -> bool:
        return math.isfinite(self.end_loss) and self.end_loss < (1 - MIN_FALL) * self.start_loss


@dataclass(frozen=True)
class LRFinding:
    """The range test's curve, the candidates' trials, and the learning rate offered."""

    lrs: list[float]
    losses: list[float]  # raw, per batch
    smoothed: list[float]
    suggestion: float  # the learning rate offered: the best checked candidate, else the current one
    reliable: bool  # a trial run confirmed it (its loss fell); False: the current learning rate is kept
    reason: str
    candidates: dict[str, float] = field(default_factory=dict)
    trials: list[TrialCheck] = field(default_factory=list)
    stopped: bool = False

    def to_dict(self) -> dict:
        return {
            "suggestion": self.suggestion,
            "reliable": self.reliable,
            "reason": self.reason,
            "candidates": dict(self.candidates),
            "trials": [
                {
                    "lr": t.lr,
                    "source": t.source,
                    "start_loss": t.start_loss,
                    "end_loss": t.end_loss,
                    "fell": t.fell,
                }
                for t in self.trials
            ],
        }


def smooth_losses(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    out, avg = [], 0.0
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta**i))
    return out


def valley_index(losses: list[float]) -> int:
    """fastai's *valley*: within the longest run of (not necessarily adjacent) falling losses, a point a little
    past the middle of its first two thirds — low enough to be safe, well before the minimum."""
    n = len(losses)
    length = [1] * n  # longest falling sequence ending at i
    best_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and length[i] < length[j] + 1:
                length[i] = length[j] + 1
        if length[i] > length[best_end]:
            best_end = i
    start = best_end - length[best_end] + 1
    third = (best_end - start) / 3
    return min(start + int(third) + int(third / 2), n - 1)


def steepest_index(lrs: list[float], smoothed: list[float]) -> int:
    """Where the smoothed loss falls fastest per unit of log(lr) (the step spacing counts: Lightning #14248)."""
    logs = [math.log(lr) for lr in lrs]
    slopes = [
        (smoothed[i + 1] - smoothed[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, len(lrs) - 1)
    ]
    return 1 + min(range(len(slopes)), key=slopes.__getitem__)


# The readings of the curve (and the current value) by name, marked so that a page shows them translated.
READINGS = {"valley": N_("valley"), "steepest": N_("steepest"), "minimum / 10": N_("minimum / 10"),
            "current": N_("current")}  # fmt: skip


def candidates_from_curve(lrs: list[float], losses: list[float]) -> dict[str, float]:
    """The three readings of a range test's curve (non-finite losses dropped first, fastai #3476)."""
    points = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    if len(points) < 5:
        return {}
    lrs, losses = [p[0] for p in points], [p[1] for p in points]
    smoothed = smooth_losses(losses)
    lowest = min(range(len(smoothed)), key=smoothed.__getitem__)
    return {  # the readings' names are READINGS' keys
        "valley": lrs[valley_index(smoothed)],
        "steepest": lrs[steepest_index(lrs, smoothed)],
        "minimum / 10": lrs[lowest] / 10,
    }


def _train_step(t: Trainer, xb: torch.Tensor, yb: torch.Tensor) -> float:
    xb, yb = t.model_input(xb, augmented=True), yb.to(t.device)
    with torch.autocast(device_type=t.device.type, dtype=torch.float16, enabled=t.amp):
        loss = t.criterion(t.model(xb).float(), yb)
    t.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if t.config.grad_clip > 0:
        nn.utils.clip_grad_norm_(t.model.parameters(), t.config.grad_clip)
    t.optimizer.step()
    return float(loss.detach())


def _batches(t: Trainer, count: int):
    """``count`` training batches, epoch after epoch (each epoch its own order)."""
    seen, epoch = 0, 0
    while seen < count:
        for batch in t.data.train.batches(t.config.batch_size, shuffle=True, seed=t.config.seed + epoch):
            if seen == count:
                return
            seen += 1
            yield batch
        epoch += 1


def _set_lr(t: Trainer, lr: float, ratios: list[float]) -> None:
    for group, ratio in zip(t.optimizer.param_groups, ratios, strict=True):
        group["lr"] = lr * ratio


def _range_test(t, steps, low, high, ratios, report, stop_event) -> tuple[list[float], list[float], bool]:
    lrs, losses = [], []
    best = math.inf
    for i, (xb, yb) in enumerate(_batches(t, steps)):
        if stop_event is not None and stop_event.is_set():
            return lrs, losses, True
        lr = low * (high / low) ** (i / max(steps - 1, 1))
        _set_lr(t, lr, ratios)
        loss = _train_step(t, xb, yb)
        lrs.append(lr)
        losses.append(loss)
        smoothed = smooth_losses(losses)[-1]
        report(
            0.5 * (i + 1) / steps,
            Phrase(N_("range test: lr {lr}, loss {loss}"), lr=f"{lr:.2g}", loss=f"{loss:.3g}"),
        )
        if not math.isfinite(smoothed) or (i >= 10 and smoothed > BLOWUP * best):
            break
        best = min(best, smoothed)
    return lrs, losses, False


def _trial(
    t: Trainer, lr: float, source: str, steps: int, start_state: tuple, ratios: list[float]
) -> TrialCheck:
    """``steps`` batches at a constant ``lr`` from the finder's starting weights, on the same batches each time."""
    t.module.load_state_dict(start_state[0])
    t.optimizer.load_state_dict(start_state[1])
    _set_lr(t, lr, ratios)
    torch.manual_seed(t.config.seed)
    losses = [_train_step(t, xb, yb) for xb, yb in _batches(t, steps)]
    # The first batch's loss is measured before any update, from the same weights in every trial: a shared
    # start (a mean over the first batches would let a blow-up there pass for a fall afterwards).
    k = max(1, steps // 5)
    start, end = losses[0], sum(losses[-k:]) / k
    return TrialCheck(
        lr=lr, source=source, start_loss=start, end_loss=end if math.isfinite(end) else math.inf
    )


@contextmanager
def _pin_released(run_dir: Path) -> Iterator[None]:
    """The finder's throwaway run pins a stored dataset like any run; the pin goes with the folder."""
    try:
        yield
    finally:
        release(run_holder(run_dir))


def find_lr(
    config: TrainConfig,
    *,
    steps: int = RANGE_STEPS,
    trial_steps: int = TRIAL_STEPS,
    progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
) -> LRFinding:
    """Run the range test for ``config`` (its data, model, size, batch, optimiser) and check its candidates.

    ``progress(fraction, text)`` is called after every batch (0 → 1); setting ``stop_event`` ends the finder
    within one batch with ``stopped=True`` and the current learning rate as the suggestion. Nothing is
    written outside a temporary folder, and the caller's torch random state is left as it was."""
    report = progress or (lambda fraction, text: None)
    low, high = LR_RANGE.get(config.optimizer, (1e-6, 1.0))
    probe = replace(config, epochs=1, schedule="constant", tensorboard=False, purpose="train", group="")
    with (
        tempfile.TemporaryDirectory(prefix="cnndash-lr-finder-") as folder,
        torch.random.fork_rng(),
        _pin_released(Path(folder) / "run"),
    ):
        t = setup(probe, Path(folder) / "run")
        report(0.0, "range test")
        ratios = [group["lr"] / probe.lr for group in t.optimizer.param_groups]
        start_state = (copy.deepcopy(t.module.state_dict()), copy.deepcopy(t.optimizer.state_dict()))
        t.model.train()
        lrs, losses, stopped = _range_test(t, steps, low, high, ratios, report, stop_event)
        candidates = candidates_from_curve(lrs, losses)
        # The current learning rate stays: the curve as measured, no pick (stopped, or unreadable).
        no_suggestion = partial(LRFinding, lrs, losses, smooth_losses(losses), config.lr, False)
        if stopped or not candidates:
            why = (
                N_("No suggestion: stopped.")
                if stopped
                else N_("No suggestion: the range test ended before the loss curve could be read.")
            )
            return no_suggestion(Phrase(why), stopped=stopped)
        todo = {**{name: lr for name, lr in candidates.items()}, "current": config.lr}
        trials = []
        for i, (source, lr) in enumerate(todo.items()):
            if stop_event is not None and stop_event.is_set():
                return no_suggestion(Phrase(N_("Stopped.")), candidates, trials, stopped=True)
            said = N_("trial {i} of {n}: lr {lr} ({source})")
            report(
                0.5 + 0.5 * i / len(todo),
                Phrase(said, i=i + 1, n=len(todo), lr=f"{lr:.2g}", source=Term(source)),
            )
            trials.append(_trial(t, lr, source, trial_steps, start_state, ratios))
        report(1.0, Phrase(N_("done")))
    return offer_suggestion(lrs, losses, candidates, trials, config.lr)


def offer_suggestion(
    lrs: list[float],
    losses: list[float],
    candidates: dict[str, float],
    trials: list[TrialCheck],
    current: float,
) -> LRFinding:
    """The finding for these trials: the checked candidate whose loss fell furthest, else ``current``."""
    smoothed = smooth_losses([x if math.isfinite(x) else math.inf for x in losses])
    fell = [trial for trial in trials if trial.fell]
    if not fell:
        reason = Phrase(
            N_(
                "No candidate lowered the loss in a {n}-run trial, so the current learning rate {current} "
                "stays; the data may need more epochs, or the labels a look."
            ),
            n=len(trials),
            current=f"{current:g}",
        )
        return LRFinding(lrs, losses, smoothed, current, False, reason, candidates, trials)
    best = min(fell, key=lambda trial: trial.end_loss)
    said = (
        N_(
            "{lr} ({source}): its trial run lowered the loss from {start} to {end}, the most of the {n} checked."
        )
        if best.source != "current"
        else N_(
            "{lr} ({source}): its trial run lowered the loss from {start} to {end}, the most of the {n} checked "
            "— the current learning rate was already the best."
        )
    )
    reason = Phrase(
        said,
        lr=f"{best.lr:.2g}",
        source=Term(best.source),
        start=f"{best.start_loss:.3g}",
        end=f"{best.end_loss:.3g}",
        n=len(trials),
    )
    return LRFinding(lrs, losses, smoothed, best.lr, True, reason, candidates, trials)
