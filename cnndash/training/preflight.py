"""What a training run will see, before it starts: the checks the Training page shows as the user edits.

:func:`preflight` takes a :class:`TrainConfig` and its dataset and returns a :class:`Preflight`: the
resolution and channels the model will see (and why that size), a model that suits the data, the reason
the run cannot start (the engine's own :meth:`TrainConfig.validate` and model checks), and warnings about
settings that can train but badly (a batch as large as the dataset, a tiny validation set, an extreme
learning rate). :func:`preview_batch` is a few training images after augmentation, at the model's size —
what fastai calls ``show_batch``. :func:`process_share` is how a run of several processes splits each batch
and which learning rate it steps with; :func:`suggested_lr` the learning rate to offer for an optimiser;
:func:`default_mean_std` the statistics to offer for a Normalize step on the Data page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from cnndash.data import ImageSet, compute_mean_std
from cnndash.models import MIN_IMAGE_SIZE, auto_image_size, default_image_size, suggest_model
from cnndash.preprocess import images_to_uint8
from cnndash.text import N_, Phrase
from cnndash.training.batches import BatchAugmenter
from cnndash.training.config import ConfigError, TrainConfig, scaled_lr

# Below this many validation images one image moves the accuracy by more than 2.5 points.
SMALL_VAL_SET = 40
# Learning rates outside these ranges rarely train (Adam family, SGD with momentum).
LR_RANGES = {"adam": (1e-5, 1e-2), "adamw": (1e-5, 1e-2), "sgd": (1e-4, 0.5)}
PREVIEW_IMAGES = 16
# The learning rate offered when the optimiser changes: TrainConfig's for the Adam family, a larger one
# for plain SGD with momentum.
SUGGESTED_LR = {"adam": TrainConfig.lr, "adamw": TrainConfig.lr, "sgd": 0.05}


@dataclass(frozen=True)
class Preflight:
    image_size: int  # the square side the model sees
    channels: int  # 1 (grayscale) or 3 (RGB)
    size_reason: str  # why that size ("the augmentation pipeline outputs 64×64 px", …)
    size_is_auto: bool
    suggested_model: str
    suggestion_reason: str
    n_train: int
    n_val: int
    num_classes: int
    error: str = ""  # why the run cannot start ("" = it can)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error


def accuracy_error_bar(n_val: int, accuracy: float = 0.5) -> float:
    """Half-width of a 95 % interval of an accuracy measured on ``n_val`` images (normal approximation;
    the worst case is at 50 %)."""
    return 1.96 * math.sqrt(accuracy * (1 - accuracy) / max(n_val, 1))


def _warnings(config: TrainConfig, n_train: int, n_val: int, crop_overridden: str) -> list[str]:
    out = []
    if crop_overridden:
        out.append(crop_overridden)
    if config.batch_size >= n_train:
        out.append(
            Phrase(
                N_(
                    "Batch size {batch} ≥ the {n_train} training images: one step per epoch, so the model gets {epochs} updates in all and will barely learn. Use a batch of {suggested} or so."
                ),
                batch=config.batch_size,
                n_train=n_train,
                epochs=config.epochs,
                suggested=max(8, min(64, n_train // 8)),
            )
        )
    if n_val < SMALL_VAL_SET:
        out.append(
            Phrase(
                N_(
                    "Only {n_val} validation images: each one is {share:.1%} of the accuracy, and a measured accuracy is only good to about ±{margin:.0%} (95 %). Raise the validation fraction or add images."
                ),
                n_val=n_val,
                share=1 / max(n_val, 1),
                margin=accuracy_error_bar(n_val),
            )
        )
    low, high = LR_RANGES.get(config.optimizer, (1e-5, 1.0))
    if not low <= config.lr <= high:
        template = (
            N_(
                "Learning rate {lr:g} is very high: the loss will likely diverge for {optimizer} (usual range {low:g}–{high:g})."
            )
            if config.lr > high
            else N_(
                "Learning rate {lr:g} is very low: training will crawl for {optimizer} (usual range {low:g}–{high:g})."
            )
        )
        out.append(Phrase(template, lr=config.lr, optimizer=config.optimizer, low=low, high=high))
    return out


def preflight(config: TrainConfig, imageset: ImageSet) -> Preflight:
    """The checks for ``config`` on ``imageset`` (split as the run will split it)."""
    auto_side, reason = auto_image_size(config.model, imageset.image_size, config.augment)
    side = int(config.image_size or auto_side)
    overridden = ""
    if config.image_size and "pipeline" in reason and config.image_size != auto_side:
        overridden = Phrase(
            N_(
                "The image size {size} px overrides the pipeline's output ({auto_side} px): its crops are resized to {size} px."
            ),
            size=config.image_size,
            auto_side=auto_side,
        )
        reason = Phrase(N_("set by hand ({reason} otherwise)"), reason=reason)
    elif config.image_size:
        reason = N_("set by hand")
    n_train, n_val = len(imageset.train), len(imageset.val)
    suggested, why = suggest_model(imageset.image_size, imageset.channels, n_train + n_val)
    error = ""
    try:
        config.validate()
    except ConfigError as exc:
        error = Phrase(exc.template, **exc.params)  # translated on the page like the error itself
    minimum = MIN_IMAGE_SIZE.get(config.model, 1)
    if not error and side < minimum:
        error = Phrase(
            N_("{model} needs inputs of at least {minimum}×{minimum} px; raise the image size."),
            model=config.model,
            minimum=minimum,
        )
    if not error and (n_train == 0 or n_val == 0):
        error = Phrase(
            N_("The split has {n_train} training and {n_val} validation images; both need at least one."),
            n_train=n_train,
            n_val=n_val,
        )
    return Preflight(
        image_size=side,
        channels=imageset.channels,
        size_reason=reason,
        size_is_auto=not config.image_size,
        suggested_model=suggested,
        suggestion_reason=why,
        n_train=n_train,
        n_val=n_val,
        num_classes=imageset.num_classes,
        error=error,
        warnings=_warnings(config, n_train, n_val, overridden) if not error else [],
    )


def preview_batch(
    imageset: ImageSet, spec: list[dict], size: int, *, count: int = PREVIEW_IMAGES, seed: int = 0
) -> list[np.ndarray]:
    """``count`` training images as the model gets them: decoded at ``size`` with the run's channels and
    augmented by ``spec`` (seeded), as ``(size, size, C)`` uint8 arrays. Raises ``ValueError`` subclasses
    (e.g. an augmentation step that cannot apply) as the run would."""
    n = min(count, len(imageset.train))
    if n == 0:
        return []
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(imageset.train), generator=generator)[:n].tolist()
    batch = images_to_uint8([imageset.train[i][0] for i in picks], channels=imageset.channels, size=size)
    spec = [step for step in spec if step.get("op") != "Normalize"]  # keep pixels viewable
    if spec:
        torch.manual_seed(seed)
        try:
            batch = BatchAugmenter(spec, size)(batch)
        except RuntimeError as exc:  # torchvision's complaint about a step, e.g. a crop too large
            raise ConfigError(
                "The augmentation pipeline cannot run on {size} px images: {exc}", size=size, exc=exc
            ) from exc
        if batch.dtype != torch.uint8:
            batch = (batch.clamp(0, 1) * 255).round().to(torch.uint8)
    return [image.permute(1, 2, 0).numpy() for image in batch]


def suggested_lr(optimizer: str) -> float:
    """The learning rate to offer for ``optimizer`` (one of :data:`SUGGESTED_LR`'s keys)."""
    try:
        return SUGGESTED_LR[optimizer]
    except KeyError:
        raise ConfigError(
            "Optimizer must be one of {suggested_lr}, got {optimizer}.",
            suggested_lr=", ".join(SUGGESTED_LR),
            optimizer=repr(optimizer),
        ) from None


@dataclass(frozen=True)
class ProcessShare:
    """How a run of ``processes`` processes (torchrun) shares each global batch, and its learning rate."""

    processes: int
    batch_size: int  # the global batch
    per_process: int  # images of every global batch each process takes …
    extra: int  # … plus one for the first ``extra`` processes (as ``shard_batches`` splits)
    lr: float  # what every process steps with (:func:`cnndash.training.config.scaled_lr`)
    lr_scaled: bool  # the linear scaling rule applied (``TrainConfig.scale_lr``)


def process_share(config: TrainConfig, processes: int) -> ProcessShare:
    """How ``config`` trains with ``processes`` processes: each batch's share per process and the LR."""
    if processes < 1:
        raise ConfigError("Processes must be at least 1, got {processes}.", processes=processes)
    per_process, extra = divmod(config.batch_size, processes)
    return ProcessShare(
        processes=processes,
        batch_size=config.batch_size,
        per_process=per_process,
        extra=extra,
        lr=scaled_lr(config, processes),
        lr_scaled=config.scale_lr,
    )


def default_mean_std(imageset: ImageSet) -> tuple[list[float], list[float]]:
    """The per-channel mean/std a run with :class:`TrainConfig`'s default model normalises ``imageset``'s
    training split with: measured by :func:`cnndash.data.compute_mean_std` at the size that model trains
    at by default. Split ``imageset`` as the run will (its validation fraction and seed)."""
    size = default_image_size(TrainConfig.model, imageset.image_size)
    return compute_mean_std(imageset.train, channels=imageset.channels, size=size)
