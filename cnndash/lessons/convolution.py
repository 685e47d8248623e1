"""Lessons 1, 3, 4 and 5: cross-correlation by hand, padding and stride, channels, and im2col.

Every function computes the lesson's numbers the way the tutorial does by hand (loops, sums, a matrix
product) and also the same thing through ``torch.nn`` / ``torch.nn.functional``, so the page can show that
the two agree and the tests can hold the hand-made version to PyTorch's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnndash import arith
from cnndash.errors import Term
from cnndash.lessons.errors import LessonError, as_grid, shape_problem
from cnndash.text import N_

__all__ = [
    "ChannelsLesson",
    "CorrelationLesson",
    "CorrelationStep",
    "PaddingLesson",
    "PointwiseLesson",
    "UnfoldLesson",
    "channels_lesson",
    "corr2d",
    "correlation_lesson",
    "padding_examples",
    "padding_lesson",
    "pointwise_lesson",
    "random_ints",
    "unfold_lesson",
]

MAX_GRID = 12  # cells per side of an editable grid: more would not fit on screen as numbers
MAX_LESSON_CHANNELS = 4  # input and output channels of the multi-channel lesson (a grid per pair)


def random_ints(shape: tuple[int, ...], seed: int, low: int = -2, high: int = 3) -> np.ndarray:
    """Small integers (readable in a cell) as float64, the same for the same seed."""
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(np.float64)


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The tutorial's ``corr2d``: slide ``k`` over ``x`` and sum the products (no padding, stride 1)."""
    h, w = k.shape
    out = np.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i : i + h, j : j + w] * k).sum()
    return out


def _torch_conv(x: np.ndarray, k: np.ndarray, **options) -> np.ndarray:
    """``F.conv2d`` on (C, H, W) / (O, C, kh, kw) arrays in float64, without a batch axis."""
    out = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(k), **options)
    return out[0].numpy()


# -- lesson 1 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorrelationStep:
    row: int
    col: int
    window: np.ndarray  # the part of the input under the kernel
    products: np.ndarray  # window * kernel, elementwise
    total: float


@dataclass(frozen=True)
class CorrelationLesson:
    x: np.ndarray
    kernel: np.ndarray
    output: np.ndarray  # corr2d by hand
    torch_output: np.ndarray  # nn.Conv2d with this kernel as its weight and no bias
    flipped: np.ndarray  # the kernel turned by 180°
    convolution: np.ndarray  # a true convolution = corr2d with the flipped kernel
    steps: tuple[CorrelationStep, ...]


INPUT, KERNEL = Term(N_("input")), Term(N_("kernel"))  # the grids' names in messages


def _check_kernel_fits(x: np.ndarray, k: np.ndarray, what: Term = INPUT) -> None:
    for axis, name in enumerate((Term(N_("rows")), Term(N_("columns")))):
        if k.shape[axis] > x.shape[axis]:
            raise LessonError(
                "The kernel has {k} {name} but the {what} only {n}; make the kernel smaller or the {what} larger.",
                k=k.shape[axis],
                name=name,
                what=what,
                n=x.shape[axis],
            )


def correlation_lesson(x, kernel) -> CorrelationLesson:
    """Lesson 1 for an input grid and a kernel grid (lists of lists or arrays)."""
    x, k = as_grid(x, INPUT), as_grid(kernel, KERNEL)
    for grid, name in ((x, INPUT), (k, KERNEL)):
        if max(grid.shape) > MAX_GRID:
            raise LessonError(
                "The {name} may have at most {most} rows and columns, got {shape}.",
                name=name,
                most=MAX_GRID,
                shape=grid.shape,
            )
    _check_kernel_fits(x, k)
    output = corr2d(x, k)
    conv = nn.Conv2d(1, 1, kernel_size=k.shape, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(k)[None, None])
        torch_output = conv(torch.from_numpy(x)[None, None])[0, 0].numpy()
    h, w = k.shape
    steps = []
    for i in range(output.shape[0]):
        for j in range(output.shape[1]):
            window = x[i : i + h, j : j + w].copy()
            steps.append(CorrelationStep(i, j, window, window * k, float(output[i, j])))
    flipped = k[::-1, ::-1].copy()
    return CorrelationLesson(x, k, output, torch_output, flipped, corr2d(x, flipped), tuple(steps))


# -- lesson 3 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaddingLesson:
    size: tuple[int, int]
    kernel: tuple[int, int]
    padding: tuple[int, int]
    stride: tuple[int, int]
    output: tuple[int, int]  # cnndash.arith.conv_output_size
    torch_output: tuple[int, int]  # the shape nn.Conv2d really returns
    starts: tuple[tuple[int, ...], tuple[int, ...]]  # window start (in the padded grid) per axis


def padding_lesson(size, kernel, padding=0, stride=1) -> PaddingLesson:
    """Output size of one convolution by the formula and by ``nn.Conv2d``, and where each window starts."""
    try:
        hw = arith.as_pair(size, "size")
        k = arith.as_pair(kernel, "kernel_size")
        p = arith.as_pair(padding, "padding")
        s = arith.as_pair(stride, "stride")
        out = arith.conv_output_size(hw, k, s, p)
    except arith.ShapeError as exc:
        raise shape_problem(exc) from None
    conv = nn.Conv2d(1, 1, kernel_size=k, stride=s, padding=p, device="meta")
    torch_out = tuple(conv(torch.empty((1, 1, *hw), device="meta")).shape[2:])
    starts = tuple(tuple(range(0, hw[a] + 2 * p[a] - k[a] + 1, s[a])) for a in range(2))
    return PaddingLesson(hw, k, p, s, out, torch_out, starts)  # type: ignore[arg-type]


def padding_examples() -> list[PaddingLesson]:
    """The tutorial's four examples on an 8×8 input (its printed shapes: 8×8, 8×8, 4×4, 2×2)."""
    return [
        padding_lesson(8, 3, 1, 1),
        padding_lesson(8, (5, 3), (2, 1), 1),
        padding_lesson(8, 3, 1, 2),
        padding_lesson(8, (3, 5), (0, 1), (3, 4)),
    ]


# -- lesson 4 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelsLesson:
    x: np.ndarray  # (C_in, H, W)
    kernels: np.ndarray  # (C_out, C_in, kh, kw)
    pairs: np.ndarray  # (C_out, C_in, oh, ow): corr2d of each input channel with its kernel slice
    output: np.ndarray  # (C_out, oh, ow): pairs summed over input channels
    torch_output: np.ndarray  # nn.Conv2d(C_in, C_out, k, bias=False) with these weights


def _check_channels(c_in: int, c_out: int, size: int, k: int) -> None:
    if not 1 <= c_in <= MAX_LESSON_CHANNELS:
        raise LessonError("Input channels must be between 1 and {high}, got {value}.", high=MAX_LESSON_CHANNELS,
                          value=c_in)  # fmt: skip
    if not 1 <= c_out <= MAX_LESSON_CHANNELS:
        raise LessonError("Output channels must be between 1 and {high}, got {value}.", high=MAX_LESSON_CHANNELS,
                          value=c_out)  # fmt: skip
    if not 1 <= k <= size:
        raise LessonError(
            "The kernel size ({k}) must be between 1 and the input size ({size}).", k=k, size=size
        )


def channels_lesson(c_in: int, c_out: int, size: int = 3, k: int = 2, seed: int = 0) -> ChannelsLesson:
    """Multi-input channels summed, multi-output channels stacked, on small random integers."""
    _check_channels(c_in, c_out, size, k)
    x = random_ints((c_in, size, size), seed)
    kernels = random_ints((c_out, c_in, k, k), seed + 1)
    pairs = np.stack([np.stack([corr2d(x[i], kernels[o, i]) for i in range(c_in)]) for o in range(c_out)])
    conv = nn.Conv2d(c_in, c_out, k, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernels))
        torch_output = conv(torch.from_numpy(x)[None])[0].numpy()
    return ChannelsLesson(x, kernels, pairs, pairs.sum(axis=1), torch_output)


@dataclass(frozen=True)
class PointwiseLesson:
    x: np.ndarray  # (C_in, H, W)
    weights: np.ndarray  # (C_out, C_in): the 1×1 kernels as a fully connected layer's matrix
    pixels: np.ndarray  # (C_in, H·W): each column one pixel's channel vector
    product: np.ndarray  # (C_out, H·W) = weights @ pixels
    output: np.ndarray  # product reshaped to (C_out, H, W)
    torch_output: np.ndarray  # nn.Conv2d(C_in, C_out, 1, bias=False)


def pointwise_lesson(c_in: int, c_out: int, size: int = 3, seed: int = 0) -> PointwiseLesson:
    """The 1×1 convolution as one matrix product over the pixels."""
    _check_channels(c_in, c_out, size, 1)
    x = random_ints((c_in, size, size), seed)
    weights = random_ints((c_out, c_in), seed + 1)
    pixels = x.reshape(c_in, -1)
    product = weights @ pixels
    conv = nn.Conv2d(c_in, c_out, 1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weights)[:, :, None, None])
        torch_output = conv(torch.from_numpy(x)[None])[0].numpy()
    return PointwiseLesson(x, weights, pixels, product, product.reshape(c_out, size, size), torch_output)


# -- lesson 5 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnfoldLesson:
    x: np.ndarray  # (C, H, W)
    kernels: np.ndarray  # (O, C, k, k)
    columns: np.ndarray  # F.unfold: (C·k·k, L), one column per window position
    rows: np.ndarray  # kernels flattened: (O, C·k·k)
    product: np.ndarray  # rows @ columns: (O, L)
    output: np.ndarray  # product reshaped to (O, oh, ow)
    torch_output: np.ndarray  # F.conv2d
    column_labels: tuple[str, ...]  # which input cell each row of ``columns`` takes: "c0 (0,1)"


def unfold_lesson(
    size: int, k: int, stride: int = 1, padding: int = 0, channels: int = 1, c_out: int = 1, seed: int = 0
) -> UnfoldLesson:
    """Convolution as matrix multiplication: ``F.unfold`` the input, multiply by the kernel rows."""
    _check_channels(channels, c_out, size + 2 * padding, k)
    try:
        oh, ow = arith.conv_output_size((size, size), k, stride, padding)
    except arith.ShapeError as exc:
        raise shape_problem(exc) from None
    x = random_ints((channels, size, size), seed)
    kernels = random_ints((c_out, channels, k, k), seed + 1)
    columns = F.unfold(torch.from_numpy(x)[None], k, padding=padding, stride=stride)[0].numpy()
    rows = kernels.reshape(c_out, -1)
    product = rows @ columns
    torch_output = _torch_conv(x, kernels, stride=stride, padding=padding)
    labels = tuple(f"c{c} ({i},{j})" for c in range(channels) for i in range(k) for j in range(k))
    return UnfoldLesson(
        x, kernels, columns, rows, product, product.reshape(c_out, oh, ow), torch_output, labels
    )
