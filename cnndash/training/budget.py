"""What a run costs: the time estimate behind the one click's choice (:mod:`cnndash.training.auto`).

A run's wall time is estimated from the model's multiply-accumulates at its input size
(:func:`cnndash.trace.trace_shapes` on the real model) and a fixed speed per device type, plus per-step and
decoding costs — so the same data and budget always give the same estimate, on any machine of that type,
and tests can pin it. The constants were measured on the 2-core CPU this project is built on.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from cnndash.models import build_model
from cnndash.trace import trace_shapes
from cnndash.training.config import ConfigError

ONE_CLICK_BUDGET_S = 60.0  # what one click on the Training page may take (and `train`'s --budget-s default)
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 3, 15
# Training speed in multiply-accumulates per second (a training step is ~3 forward passes) and a fixed cost
# per step, measured on the 2-core AVX2 CPU this project is built on, one torch thread
# (benchmarks/time_estimate.py; docs/training.md, "The time estimate"): the small VGG and ResNet-18 run their convolutions at 23-29 GMAC/s,
# LeNet-sized nets are bound by the per-step cost (7.4 ms a step of 32 at 28 px). 2e10 keeps the estimate
# 15-25 % above what an idle machine takes (a loaded one is slower); the first rule, 6e9, was 4x too slow
# for the VGG and gave photos a third of the epochs their budget allowed. A GPU is taken as 15x that.
MACS_PER_SECOND = {"cpu": 2e10, "cuda": 3e11, "mps": 5e10}
SECONDS_PER_STEP = {"cpu": 6e-3, "cuda": 2e-3, "mps": 3e-3}  # optimiser step, Python, per-batch overhead
DECODE_SECONDS_PER_FILE = 1.5e-3  # decoding one photo once, before the first epoch
FROZEN_PASSES = 1.2  # a frozen backbone: its forward pass, the head's forward and backward


@dataclass(frozen=True)
class DataProfile:
    """What the choice looks at: the images' typical side, channels, classes and counts."""

    side: int  # median of the larger side of (a sample of) the images
    mixed_sizes: bool
    channels: int
    classes: int
    train_images: int
    val_images: int


@functools.lru_cache(maxsize=64)
def forward_macs(model: str, size: int, channels: int, classes: int) -> int:
    """Multiply-accumulates of one image's forward pass (from the shape trace of the real model)."""
    net = build_model(model, num_classes=classes, in_channels=channels, image_size=size)
    return int(sum(row.macs for row in trace_shapes(net, (channels, size, size)).rows))


def estimate_seconds(
    model: str,
    size: int,
    profile: DataProfile,
    *,
    epochs: int,
    batch_size: int,
    device: str = "cpu",
    transfer: str = "all",
) -> float:
    """Wall seconds a run of these settings takes on ``device`` (see the module doc for how); ``transfer``
    "freeze" trains the head only (about one forward pass per image instead of three)."""
    kind = device if device in MACS_PER_SECOND else "cpu"
    macs = forward_macs(model, size, profile.channels, max(profile.classes, 2))
    per_image = macs / MACS_PER_SECOND[kind]
    steps = math.ceil(profile.train_images / batch_size)
    passes = FROZEN_PASSES if transfer == "freeze" else 3
    per_epoch = profile.train_images * passes * per_image + steps * SECONDS_PER_STEP[kind]
    per_epoch += (profile.val_images + min(profile.train_images, 512)) * per_image  # evaluation, precise BN
    decode = (
        (profile.train_images + profile.val_images) * DECODE_SECONDS_PER_FILE if profile.mixed_sizes else 0
    )
    return decode + epochs * per_epoch


def check_budget(budget_s: object) -> float:
    """``budget_s`` as seconds, or a :class:`ConfigError` saying what a budget must be."""
    number = isinstance(budget_s, int | float) and not isinstance(budget_s, bool)
    if not number or not math.isfinite(budget_s) or budget_s <= 0:
        raise ConfigError(
            "The time budget must be a positive number of seconds, got {budget}.", budget=repr(budget_s)
        )
    return float(budget_s)
