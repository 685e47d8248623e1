"""Training: ``TrainConfig`` (saved as JSON with every run) and ``train()``, the one trainer behind the page,
the background jobs and the CLI.

Shaped like torchvision's classification reference: :func:`setup` builds everything a run needs (data,
model, optimiser, schedule, run folder, resumed state) into a :class:`Trainer`; :func:`train_one_epoch`
and :func:`evaluate` are flat loops; :func:`train` strings them together, writes checkpoints and metrics
through :class:`cnndash.runs.RunWriter`, and reports progress as :mod:`cnndash.training.events` (it never prints).
Preprocessing is :mod:`cnndash.preprocess`'s, the data path :mod:`cnndash.training.batches`'.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from cnndash.errors import UserError
from cnndash.runs import TrainState
from cnndash.runs.writer import BatchLog
from cnndash.text import Phrase
from cnndash.training.batches import global_batch_sizes
from cnndash.training.config import ConfigError, TrainConfig
from cnndash.training.distributed import Distributed
from cnndash.training.events import BatchEvent, EndEvent, EpochEvent, ErrorEvent, EventCallback, TrainEvent
from cnndash.training.precise_bn import recompute_batchnorm_stats
from cnndash.training.setup import Trainer, setup
from cnndash.training.summary import (
    DIVERGED_AT_BATCH,
    DIVERGED_IN_EPOCH,
    EARLY_STOPPED,
    STOPPED,
    message_fields,
    run_summary,
)
from cnndash.training.tblog import SAMPLE_IMAGES, TensorBoardLog

__all__ = ["ConfigError", "TrainConfig", "Trainer", "TrainingDivergedError", "evaluate", "setup", "train",
           "train_one_epoch"]  # fmt: skip

# Shuffling seed of an epoch: seed * EPOCH_SEED_STRIDE + epoch. A prime larger than any epoch count, so two
# (seed, epoch) pairs never share an order.
EPOCH_SEED_STRIDE = 100_003
EVAL_BATCH_SIZE = 256  # validation batches: no gradients, so larger than training's is fine
CPU_LOG_EVERY, GPU_LOG_EVERY = 1, 10  # batch events: every batch on the CPU; GPU batches are too fast


class TrainingDivergedError(UserError):
    """The loss became NaN or infinite: the run stops (the last good checkpoint stays)."""


# --------------------------------------------------------------------------------------------------
# The loops


@dataclass
class EpochResult:
    loss: float
    acc: float
    images: int
    seconds: float
    stopped: bool  # the stop event was set before the epoch's last batch


def _diverged(loss: float, lr: float, epoch: int, batch: int | None = None) -> TrainingDivergedError:
    """The loss is ``loss`` (not finite) at ``batch`` of ``epoch`` (None: the epoch's mean)."""
    numbers = {"loss": f"{loss}", "epoch": epoch, "lr": f"{lr:g}", "lower": f"{lr / 10:g}"}
    if batch is None:
        return TrainingDivergedError(DIVERGED_IN_EPOCH, **numbers)
    return TrainingDivergedError(DIVERGED_AT_BATCH, batch=batch, **numbers)


def train_one_epoch(
    t: Trainer, epoch: int, on_event: EventCallback | None = None, stop_event: threading.Event | None = None
) -> EpochResult:
    """One epoch (or the rest of it, after a stop) of training; ``t.state`` counts batches and steps."""
    config, state = t.config, t.state
    t.model.train()
    started = time.perf_counter()
    loss_sum = torch.zeros((), device=t.device)
    correct = torch.zeros((), device=t.device, dtype=torch.long)
    seen = 0
    log_every = CPU_LOG_EVERY if t.device.type == "cpu" else GPU_LOG_EVERY
    batches = t.data.train.batches(
        config.batch_size, shuffle=True, seed=config.seed * EPOCH_SEED_STRIDE + epoch, start=state.batch,
        shard=t.shard,
    )  # fmt: skip
    # Distributed: every rank takes its share of the same global batches (sizes known to all ranks).
    sizes = global_batch_sizes(len(t.data.train), config.batch_size, world=t.world_size) if t.dist else []
    for b, (xb, yb) in enumerate(batches, start=state.batch + 1):
        if _stop_requested(t, stop_event):
            return EpochResult(math.nan, math.nan, seen, time.perf_counter() - started, stopped=True)
        xb, yb = t.model_input(xb, augmented=True), yb.to(t.device, non_blocking=True)
        with torch.autocast(device_type=t.device.type, dtype=torch.float16, enabled=t.amp):
            logits = t.model(xb)
            loss = t.criterion(logits.float(), yb)
        t.optimizer.zero_grad(set_to_none=True)
        if t.dist is None:
            t.scaler.scale(loss).backward()
        else:  # DDP averages the ranks' gradients: weighted by each share, that is the global batch's mean
            t.scaler.scale(loss * (yb.shape[0] * t.world_size / sizes[b - 1])).backward()
        if config.grad_clip > 0:
            t.scaler.unscale_(t.optimizer)
            nn.utils.clip_grad_norm_(t.model.parameters(), config.grad_clip)
        t.scaler.step(t.optimizer)
        t.scaler.update()
        t.scheduler.step()
        state.step, state.batch = state.step + 1, b
        seen += sizes[b - 1] if t.dist else yb.shape[0]
        loss_sum += loss.detach() * yb.shape[0]
        correct += (logits.detach().argmax(1) == yb).sum()
        if b % log_every == 0 or b == t.steps_per_epoch:  # reading the loss syncs the GPU: not every batch
            batch_loss, batch_acc = _batch_metrics(t, loss, logits, yb)
            if not math.isfinite(batch_loss):
                raise _diverged(batch_loss, config.lr, epoch, b)
            elapsed = time.perf_counter() - started
            _emit(on_event, BatchEvent(
                epoch=epoch, epochs=config.epochs, batch=b, batches=t.steps_per_epoch, step=state.step,
                loss=batch_loss, acc=batch_acc,
                lr=t.optimizer.param_groups[-1]["lr"], images_per_sec=seen / elapsed if elapsed > 0 else 0.0,
            ))  # fmt: skip
    loss_total, correct_total = float(loss_sum), float(correct)
    if t.dist is not None:  # the whole epoch's figures, not this rank's share
        loss_total, correct_total = t.dist.sum_values(loss_sum, correct)
    train_loss = loss_total / max(seen, 1)
    if not math.isfinite(train_loss):
        raise _diverged(train_loss, config.lr, epoch)
    state.batch = 0
    return EpochResult(train_loss, correct_total / max(seen, 1), seen, time.perf_counter() - started, False)


def _stop_requested(t: Trainer, stop_event: threading.Event | None) -> bool:
    """The stop event is set, or a stop request names the run's lease (``runs stop``, the app's Stop; rank 0
    reads it); distributed: on any rank, so every rank stops after the same batch."""
    requested = (stop_event is not None and stop_event.is_set()) or t.writer.stop_requested()
    return requested if t.dist is None else t.dist.any(requested)


def _batch_metrics(
    t: Trainer, loss: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor
) -> tuple[float, float]:
    """The batch's loss and accuracy (distributed: of the global batch, the same on every rank, so a
    diverging loss stops every rank at the same batch)."""
    if t.dist is None:
        return float(loss.detach()), float((logits.argmax(1) == yb).float().mean())
    n = yb.shape[0]
    loss_sum, correct, total = t.dist.sum_values(loss.detach() * n, (logits.argmax(1) == yb).sum(), n)
    return loss_sum / total, correct / total


def evaluate(t: Trainer) -> tuple[float, float]:
    """Mean loss (no label smoothing) and accuracy of the model on the validation split (distributed: each
    rank its share of every batch, without DDP, which has nothing to synchronise here; summed at the end)."""
    model = t.module
    model.eval()
    loss_sum = torch.zeros((), device=t.device)
    correct = torch.zeros((), device=t.device, dtype=torch.long)
    batch_size = max(t.config.batch_size, EVAL_BATCH_SIZE)
    with torch.no_grad():
        for xb, yb in t.data.val.batches(batch_size, shuffle=False, seed=0, shard=t.shard):
            xb, yb = t.model_input(xb, augmented=False), yb.to(t.device, non_blocking=True)
            with torch.autocast(device_type=t.device.type, dtype=torch.float16, enabled=t.amp):
                logits = model(xb)
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
    n = max(len(t.data.val), 1)
    if t.dist is not None:
        loss_total, correct_total = t.dist.sum_values(loss_sum, correct)
        return loss_total / n, correct_total / n
    return float(loss_sum) / n, float(correct) / n


def _record_validation(state: TrainState, epoch: int, val_loss: float, val_acc: float) -> bool:
    """Update the best result and the early-stopping count; True when this epoch is the best so far."""
    improved = val_acc > state.best_val_acc or (
        val_acc == state.best_val_acc and val_loss < state.best_val_loss
    )
    if improved:
        state.best_val_acc, state.best_val_loss, state.best_epoch = val_acc, val_loss, epoch
        state.stale_epochs = 0
    else:
        state.stale_epochs += 1
    return improved


def _finish_stopped_epoch(t: Trainer, epoch: int) -> Phrase:
    """Save what a stop leaves: ``last.pt`` to resume, and a ``best.pt`` if none exists yet."""
    which = ["last"]
    has_best = partial(t.writer.has_checkpoint, "best")
    # Distributed: rank 0's answer for every rank (evaluate() below is a collective all ranks must enter).
    if not (has_best() if t.dist is None else t.dist.from_rank0(has_best)):  # so it can be evaluated now
        recompute_batchnorm_stats(t)
        t.state.best_val_loss, t.state.best_val_acc = evaluate(t)
        which.append("best")
    t.writer.save_checkpoint(t.checkpoint(), *which)
    return Phrase(STOPPED, epoch=epoch, batch=t.state.batch, steps=t.steps_per_epoch)


def train(
    config: TrainConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    on_event: EventCallback | None = None,
    stop_event: threading.Event | None = None,
    dist: Distributed | None = None,
    owner: str | None = None,
    dataset_ref: dict | None = None,
) -> dict:
    """Train ``config`` into ``run_dir`` and return the summary (also written to ``summary.json``).

    The run trains on what ``config.dataset`` means when it starts, pinned and recorded in
    ``dataset.json`` (:mod:`cnndash.data.pins`), or on ``dataset_ref`` when given (a label check's fold
    view); a resumed run on what it started with.

    ``resume=True`` continues the run in ``run_dir`` from ``last.pt`` with its saved config (only the
    device may differ). ``stop_event`` is checked before every batch: setting it ends the run within one
    batch, saving ``last.pt`` (and ``best.pt`` if none exists yet) so the run can be evaluated or resumed.
    While it trains, the run's lease is held as ``owner`` (a job's token; default a fresh one), and a stop
    request naming it (:func:`cnndash.runs.stop_run`) works like ``stop_event``.
    Raises :class:`ConfigError`, ``DatasetError``, ``ModelError``, ``RunError`` for bad input and
    :class:`TrainingDivergedError` when the loss stops being finite.

    ``dist`` (from :func:`cnndash.training.distributed.session`, in a torchrun worker) trains this rank's share of a
    data-parallel run: metrics are of the whole epoch, only rank 0 writes ``run_dir``, and the summary says
    ``world_size``. Give ``on_event`` on rank 0 only unless every rank should report.
    """
    started = time.perf_counter()
    t = setup(config, run_dir, resume=resume, dist=dist, owner=owner, dataset_ref=dataset_ref)
    with t.writer.training(owner):
        return _train(t, on_event, stop_event, started)


def _train(
    t: Trainer, on_event: EventCallback | None, stop_event: threading.Event | None, started: float
) -> dict:
    """The epoch loop of :func:`train`, while the run folder is registered as training."""
    config, state, writer = t.config, t.state, t.writer
    batch_log = writer.batch_log(keep_until_step=state.step)  # a resume continues the whole run's log
    clock = _RunClock(started, batch_log.seconds_before)
    running = _running_info(t)  # what a reader of status.json needs to follow the run (a torchrun job)
    writer.write_status("running", f"epoch {state.epoch + 1} of {config.epochs}", **running)
    tensorboard = _open_tensorboard(t)
    on_event = _fan_out(on_event, tensorboard.on_event if tensorboard else None, _logger(batch_log, clock))
    _emit(on_event, t.start)
    status, message = "finished", ""
    try:
        with _cpu_threads(config.threads, t.device):
            while state.epoch < config.epochs:
                epoch = state.epoch + 1
                result = train_one_epoch(t, epoch, on_event, stop_event)
                state.train_seconds += result.seconds
                state.images_seen += result.images
                if result.stopped:
                    status, message = "stopped", _finish_stopped_epoch(t, epoch)
                    break
                recompute_batchnorm_stats(t)  # eval-mode BatchNorm at this epoch's weights (precise_bn.py)
                val_loss, val_acc = evaluate(t)
                state.epoch, state.last_val_acc = epoch, val_acc
                improved = _record_validation(state, epoch, val_loss, val_acc)
                writer.save_checkpoint(t.checkpoint(), "last", *(["best"] if improved else []))
                event = EpochEvent(
                    epoch=epoch, epochs=config.epochs, train_loss=result.loss, train_acc=result.acc,
                    val_loss=val_loss, val_acc=val_acc, lr=t.optimizer.param_groups[-1]["lr"],
                    seconds=result.seconds, images_per_sec=result.images / max(result.seconds, 1e-9), best=improved,
                )  # fmt: skip
                writer.append_metrics(event.row())
                writer.write_status("running", f"epoch {epoch} of {config.epochs} done", **running)
                _emit(on_event, event)
                if config.early_stopping and state.stale_epochs >= config.early_stopping:
                    message = Phrase(EARLY_STOPPED, epoch=epoch, patience=config.early_stopping)
                    break
    except BaseException as exc:
        batch_log.flush()
        diverged = isinstance(exc, TrainingDivergedError)
        text = str(exc) if diverged else f"{type(exc).__name__}: {exc}"
        said = message_fields(Phrase.of(exc)) if diverged and t.dist is None else {}  # a page translates it
        if t.dist is not None:  # which rank failed, and why
            text = t.dist.failure_text(exc, text)
        writer.write_status("failed", text, epoch=state.epoch, world_size=t.world_size, **said)
        _emit(on_event, ErrorEvent(text))
        if tensorboard is not None:
            tensorboard.close()
        raise
    batch_log.flush()
    summary = run_summary(t, status, message, seconds=clock.seconds())
    writer.write_summary(summary)
    writer.write_status(
        status, message, epoch=state.epoch, world_size=t.world_size, **message_fields(message)
    )
    _emit(on_event, EndEvent(summary))
    return summary


@contextmanager
def _cpu_threads(threads: int, device: torch.device) -> Iterator[None]:
    """Use ``threads`` CPU threads for the block (0 = leave torch's setting), then restore it."""
    old = torch.get_num_threads()
    change = threads > 0 and device.type == "cpu"
    if change:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def _open_tensorboard(t: Trainer) -> TensorBoardLog | None:
    """The run's TensorBoard log (config, graph, augmented samples written now), or None when off."""
    if not t.config.tensorboard or not (t.dist is None or t.dist.is_main):  # only rank 0 writes the folder
        return None
    tensorboard = TensorBoardLog(t.writer.path, t.config.to_dict(), purge_step=t.state.step or None)
    tensorboard.start(t.module, t.sample_batch(SAMPLE_IMAGES), t.state.step)
    return tensorboard


@dataclass
class _RunClock:
    """Wall seconds of the whole run: this part's (since ``started``) after those before a resume."""

    started: float  # time.perf_counter() when this part began
    before: float = 0.0

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self.started


def _running_info(t: Trainer) -> dict:
    start = t.start
    return {
        "world_size": t.world_size, "device": start.device, "device_description": start.device_description,
        "steps_per_epoch": t.steps_per_epoch, "start_epoch": start.start_epoch, "epochs": t.config.epochs,
        "image_size": start.image_size, "in_channels": start.in_channels,
    }  # fmt: skip


def _logger(log: BatchLog, clock: _RunClock) -> EventCallback:
    """Each batch event appended to the run's per-batch log; flushed at the end of every epoch."""

    def on_event(event: TrainEvent) -> None:
        if isinstance(event, BatchEvent):
            log.add({
                "step": event.step, "epoch": event.epoch, "batch": event.batch, "batches": event.batches,
                "loss": event.loss, "acc": event.acc, "lr": event.lr, "images_per_sec": event.images_per_sec,
                "seconds": clock.seconds(),
            })  # fmt: skip
        elif isinstance(event, EpochEvent):
            log.flush()

    return on_event


def _fan_out(*callbacks: EventCallback | None) -> EventCallback | None:
    """One callback that calls each of ``callbacks`` in turn (None when there are none)."""
    active = [callback for callback in callbacks if callback is not None]
    if not active:
        return None

    def emit(event: TrainEvent) -> None:
        for callback in active:
            callback(event)

    return emit


def _emit(on_event: EventCallback | None, event: TrainEvent) -> None:
    if on_event is not None:
        on_event(event)
