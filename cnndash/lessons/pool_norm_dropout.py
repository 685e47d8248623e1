"""Lessons 6, 7 and 8: pooling by hand, the four normalisation layers, dropout in train and eval.

Each function does the lesson's arithmetic by hand in NumPy (float64) and runs the matching ``torch.nn``
layer on the same numbers, returning both so the page shows that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnndash import arith
from cnndash.errors import Term
from cnndash.lessons.convolution import corr2d
from cnndash.lessons.errors import LessonError, as_grid, check_range, shape_problem
from cnndash.lessons.learn_kernel import TARGET, edge_image
from cnndash.text import N_

__all__ = [
    "NORMS",
    "DropoutLesson",
    "NormLesson",
    "PoolLesson",
    "RunningStatsLesson",
    "ShiftLesson",
    "batchnorm_running",
    "dropout_lesson",
    "norm_lesson",
    "pool2d",
    "pool_lesson",
    "shift_lesson",
]

EPS = 1e-5  # every nn normalisation layer's default

# -- lesson 6 -----------------------------------------------------------------------------------------------


def _pool_shape(shape: tuple[int, int], k: int, stride: int, padding: int) -> tuple[int, int]:
    try:
        return arith.pool_output_size(shape, k, stride, padding)
    except arith.ShapeError as exc:
        raise shape_problem(exc) from None


def pool2d(x: np.ndarray, k: int, stride: int = 1, padding: int = 0, mode: str = "max") -> np.ndarray:
    """The tutorial's ``pool2d`` with padding and stride: max pads with −∞, average with 0 and divides by
    k² (PyTorch's ``count_include_pad=True``)."""
    if mode not in ("max", "avg"):
        raise LessonError('Pooling mode must be "max" or "avg", got {mode}.', mode=repr(mode))
    oh, ow = _pool_shape(x.shape, k, stride, padding)
    padded = np.pad(x, padding, constant_values=-np.inf if mode == "max" else 0.0)
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = padded[i * stride : i * stride + k, j * stride : j * stride + k]
            out[i, j] = window.max() if mode == "max" else window.sum() / (k * k)
    return out


def _torch_pool(x: np.ndarray, k: int, stride: int, padding: int, mode: str) -> np.ndarray:
    layer = nn.MaxPool2d(k, stride, padding) if mode == "max" else nn.AvgPool2d(k, stride, padding)
    return layer(torch.from_numpy(x)[None, None])[0, 0].numpy()


@dataclass(frozen=True)
class PoolLesson:
    x: np.ndarray
    mode: str
    kernel: int
    stride: int
    padding: int
    output: np.ndarray  # pool2d by hand
    torch_output: np.ndarray  # nn.MaxPool2d / nn.AvgPool2d

    @property
    def padded(self) -> np.ndarray:
        """The input with its padding: −∞ for max pooling (never the maximum), 0 for average pooling."""
        return np.pad(self.x, self.padding, constant_values=-np.inf if self.mode == "max" else 0.0)

    @property
    def inside(self) -> np.ndarray:
        """A bool mask over :attr:`padded`: True on the input's own cells, False on the padding."""
        return np.pad(np.ones_like(self.x, dtype=bool), self.padding, constant_values=False)


def pool_lesson(x, k: int = 2, stride: int = 1, padding: int = 0, mode: str = "max") -> PoolLesson:
    grid = as_grid(x, Term(N_("input")))
    if k < 1:
        raise LessonError("The kernel size must be at least 1, got {value}.", value=k)
    if stride < 1:
        raise LessonError("The stride must be at least 1, got {value}.", value=stride)
    out = pool2d(grid, k, stride, padding, mode)
    return PoolLesson(grid, mode, k, stride, padding, out, _torch_pool(grid, k, stride, padding, mode))


@dataclass(frozen=True)
class ShiftLesson:
    x: np.ndarray  # the tutorial's edge map (6×7): +1 / −1 where the image changes
    shifted: np.ndarray  # x moved one column right, zeros coming in on the left
    pooled: np.ndarray
    pooled_shifted: np.ndarray
    same_before: float  # fraction of cells equal in x and shifted
    same_after: float  # fraction of cells equal after pooling both


def shift_lesson(k: int = 2, stride: int = 1, mode: str = "max") -> ShiftLesson:
    """Small shift invariance: the edge map moved by one pixel changes less after pooling."""
    x = corr2d(edge_image(), TARGET)
    shifted = np.zeros_like(x)
    shifted[:, 1:] = x[:, :-1]
    pooled = _torch_pool(x, k, stride, 0, mode) if k <= min(x.shape) else None
    if pooled is None:
        raise LessonError("The kernel ({k}) must fit in the 6×7 edge map; pick a kernel of at most 6.", k=k)
    pooled_shifted = _torch_pool(shifted, k, stride, 0, mode)
    return ShiftLesson(
        x,
        shifted,
        pooled,
        pooled_shifted,
        float(np.isclose(x, shifted).mean()),
        float(np.isclose(pooled, pooled_shifted).mean()),
    )


# -- lesson 7 -----------------------------------------------------------------------------------------------

NORMS = {
    "BatchNorm": N_("each channel over the batch and all pixels: axes (N, H, W)"),
    "LayerNorm": N_("each sample over all its channels and pixels: axes (C, H, W)"),
    "InstanceNorm": N_("each sample's each channel over its pixels: axes (H, W)"),
    "GroupNorm": N_("each sample's each group of channels over their pixels: axes (C/G, H, W)"),
}


@dataclass(frozen=True)
class NormLesson:
    kind: str
    x: np.ndarray  # (N, C, H, W)
    groups: int
    stat_ids: np.ndarray  # (N, C): which statistic the (n, c) slice is normalised with
    means: np.ndarray  # one per statistic
    variances: np.ndarray  # biased, as the layers use them for normalising
    output: np.ndarray  # (x − mean) / √(var + ε) by hand
    torch_output: np.ndarray  # the nn layer (default affine: weight 1, bias 0)

    @property
    def stat_count(self) -> int:
        """How many means (and variances) the layer computes for this tensor."""
        return int(self.stat_ids.max()) + 1

    def values_per_stat(self, stat: int) -> int:
        """How many values of ``x`` statistic ``stat`` (an id in :attr:`stat_ids`) is computed over."""
        return int((self.stat_ids == stat).sum()) * self.x.shape[2] * self.x.shape[3]


def _stat_ids(kind: str, n: int, c: int, groups: int) -> np.ndarray:
    nn_, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    if kind == "BatchNorm":
        return cc
    if kind == "LayerNorm":
        return nn_
    if kind == "InstanceNorm":
        return nn_ * c + cc
    return nn_ * groups + cc // (c // groups)


def _norm_layer(kind: str, c: int, h: int, w: int, groups: int) -> nn.Module:
    if kind == "BatchNorm":
        return nn.BatchNorm2d(c)
    if kind == "LayerNorm":
        return nn.LayerNorm([c, h, w])
    if kind == "InstanceNorm":
        return nn.InstanceNorm2d(c)
    return nn.GroupNorm(groups, c)


def norm_lesson(
    kind: str, n: int = 2, c: int = 4, size: int = 3, groups: int = 2, seed: int = 0
) -> NormLesson:
    """Normalise a random (N, C, size, size) tensor by hand and with the ``nn`` layer (train mode)."""
    if kind not in NORMS:
        raise LessonError(
            "Unknown normalisation {kind}; pick one of {norms}.", kind=repr(kind), norms=", ".join(NORMS)
        )
    if not (1 <= n <= 8 and 1 <= c <= 8 and 1 <= size <= 8):
        raise LessonError(
            "Batch, channels and size must each be between 1 and 8, got {n}, {c}, {size}.",
            n=n,
            c=c,
            size=size,
        )
    if kind == "GroupNorm" and (groups < 1 or c % groups):
        raise LessonError(
            "GroupNorm needs the channels ({c}) to split evenly into groups; {groups} does not.",
            c=c,
            groups=groups,
        )
    if kind == "InstanceNorm" and size == 1:
        raise LessonError("InstanceNorm needs more than one pixel per channel; make H = W at least 2.")
    if kind == "BatchNorm" and n * size * size == 1:
        raise LessonError(
            "BatchNorm needs more than one value per channel; use a batch of 2 or a larger size."
        )
    x = np.random.default_rng(seed).normal(2.0, 1.5, size=(n, c, size, size)).round(1)
    ids = _stat_ids(kind, n, c, groups)
    count = int(ids.max()) + 1
    means, variances, output = np.zeros(count), np.zeros(count), np.zeros_like(x)
    for stat in range(count):
        values = x[ids == stat]  # (slices, H, W)
        means[stat], variances[stat] = values.mean(), values.var()
        output[ids == stat] = (values - means[stat]) / np.sqrt(variances[stat] + EPS)
    layer = _norm_layer(kind, c, size, size, groups).double().train()
    with torch.no_grad():
        torch_output = layer(torch.from_numpy(x)).numpy()
    return NormLesson(kind, x, groups, ids, means, variances, output, torch_output)


@dataclass(frozen=True)
class RunningStatsLesson:
    momentum: float
    batch_means: np.ndarray  # (steps, C): each training batch's channel means
    running_means: np.ndarray  # (steps + 1, C): by hand, starting at 0
    running_vars: np.ndarray  # (steps + 1, C): by hand (unbiased batch variance), starting at 1
    torch_running_mean: np.ndarray  # nn.BatchNorm2d's buffers after the same batches
    torch_running_var: np.ndarray
    train_output: np.ndarray  # the last batch normalised with its own statistics (train mode)
    eval_output: np.ndarray  # the same batch normalised with the running statistics (eval mode)

    @property
    def train_eval_gap(self) -> float:
        """The largest difference between the last batch's train-mode and eval-mode outputs."""
        return float(np.abs(self.train_output - self.eval_output).max())


def batchnorm_running(
    steps: int = 10, momentum: float = 0.1, channels: int = 3, seed: int = 0
) -> RunningStatsLesson:
    """Feed ``steps`` batches (mean 5, std 2) to ``nn.BatchNorm2d`` in train mode and track its running
    statistics by hand: ``running ← (1 − momentum)·running + momentum·batch``."""
    check_range(momentum, Term(N_("The momentum")), 0.0, 1.0)
    if not 1 <= steps <= 100:
        raise LessonError("The number of batches must be between 1 and 100, got {steps}.", steps=steps)
    batches = np.random.default_rng(seed).normal(5.0, 2.0, size=(steps, 4, channels, 3, 3))
    bn = nn.BatchNorm2d(channels, momentum=momentum).double()
    mean, var = np.zeros(channels), np.ones(channels)
    means, variances, batch_means = [mean], [var], []
    with torch.no_grad():
        for batch in batches:
            bn.train()
            train_output = bn(torch.from_numpy(batch)).numpy()
            batch_mean = batch.mean(axis=(0, 2, 3))
            batch_var = batch.var(axis=(0, 2, 3), ddof=1)
            mean = (1 - momentum) * mean + momentum * batch_mean
            var = (1 - momentum) * var + momentum * batch_var
            means.append(mean)
            variances.append(var)
            batch_means.append(batch_mean)
        bn.eval()
        eval_output = bn(torch.from_numpy(batches[-1])).numpy()
    return RunningStatsLesson(
        momentum,
        np.array(batch_means),
        np.array(means),
        np.array(variances),
        bn.running_mean.numpy().copy(),
        bn.running_var.numpy().copy(),
        train_output,
        eval_output,
    )


# -- lesson 8 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropoutLesson:
    p: float
    x: np.ndarray  # (4, 8): 1 … 32
    train_outputs: np.ndarray  # (2, 4, 8): two passes in train mode (two different masks)
    eval_output: np.ndarray  # eval mode: x unchanged
    kept: np.ndarray  # (2, 4, 8) bool: which entries survived each pass
    scale: float  # 1 / (1 − p)
    average: np.ndarray  # mean of many train passes: close to x (the expectation is unchanged)
    samples: int


def dropout_lesson(p: float, seed: int = 0, samples: int = 2000) -> DropoutLesson:
    """The same tensor through ``nn.Dropout(p)`` in train mode (twice) and eval mode."""
    check_range(p, Term(N_("The drop probability p")), 0.0, 0.99)
    x = torch.arange(1, 33, dtype=torch.float64).reshape(4, 8)
    layer = nn.Dropout(p)
    with torch.random.fork_rng(devices=[]):  # the lesson must not move anyone else's random stream
        torch.manual_seed(seed)
        layer.train()
        outputs = torch.stack([layer(x) for _ in range(2)])
        average = layer(x.expand(samples, 4, 8)).mean(dim=0)
    layer.eval()
    eval_output = layer(x)
    return DropoutLesson(
        p,
        x.numpy(),
        outputs.numpy(),
        eval_output.numpy(),
        (outputs != 0).numpy(),
        1 / (1 - p),
        average.numpy(),
        samples,
    )
