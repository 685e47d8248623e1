"""Optimiser and learning-rate schedule for a :class:`cnndash.training.loops.TrainConfig`."""

from __future__ import annotations

import math

import torch

from cnndash.training.choices import OPTIMIZERS, SCHEDULES  # noqa: F401 (re-exported)

ONECYCLE_WARMUP = 0.25  # share of the run one-cycle spends warming up when no warm-up is set


def make_optimizer(
    name: str, groups: list[dict], *, lr: float, weight_decay: float, momentum: float, device: torch.device
) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (Nesterov momentum) over the parameter ``groups``."""
    if name == "sgd":
        cls, kwargs = torch.optim.SGD, {"momentum": momentum, "nesterov": momentum > 0}
    else:
        cls, kwargs = (torch.optim.AdamW if name == "adamw" else torch.optim.Adam), {}
    kwargs.update(lr=lr, weight_decay=weight_decay)
    if device.type in ("cpu", "cuda"):
        # One fused kernel per step instead of ~10 small ops per parameter tensor: for small CNNs the
        # optimizer step is otherwise a noticeable share of the time.
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):  # an older torch without fused support here
            pass
    return cls(groups, **kwargs)


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    schedule: str,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0.0,
    step_size: int = 0,
    step_gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-batch schedule: one-cycle, cosine, step or constant, with an optional linear warm-up."""
    total = max(1, epochs * steps_per_epoch)
    if schedule == "onecycle":
        pct = min(max(warmup_epochs / epochs if warmup_epochs else ONECYCLE_WARMUP, 0.01), 0.9)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=total,
            pct_start=onecycle_pct_start(min(max(pct, 0.01), 0.9), total),
        )
    warmup = round(warmup_epochs * steps_per_epoch)
    step_size = step_size or max(1, epochs // 3)

    def factor(step: int) -> float:
        value = 1.0
        if schedule == "cosine":
            progress = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
            value = 0.5 * (1.0 + math.cos(math.pi * progress))
        elif schedule == "step":
            value = step_gamma ** ((step // steps_per_epoch) // step_size)
        if warmup and step < warmup:
            value *= (step + 1) / warmup
        return value

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def onecycle_pct_start(pct: float, total_steps: int) -> float:
    """``pct`` moved off the one value ``OneCycleLR`` cannot step with: a warm-up that ends exactly at step 0
    (``pct * total_steps == 1``, e.g. 25 % of 4 steps) divides by zero on the first step. Half a step less
    starts the run at the peak a hair later, which no run can tell apart."""
    if float(pct * total_steps) - 1 == 0:
        return 0.5 / total_steps
    return pct
