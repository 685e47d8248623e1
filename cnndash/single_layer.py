"""One layer named by its kind — the conv calculator's Single layer tab: its output size and the receptive
field of one output pixel, for ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d`` and ``AvgPool2d``.

The rules themselves are :mod:`cnndash.arith`'s (checked against ``torch.nn``); this module picks the rule
for a kind, so a caller holding a layer's settings need not know which function applies. A setting PyTorch
would refuse raises :class:`cnndash.arith.ShapeError` naming the argument to change.
"""

from __future__ import annotations

import math

from cnndash import arith
from cnndash.arith import IntOrPair, Padding, Size

__all__ = ["LAYER_KINDS", "layer_output_size", "layer_receptive_field"]

LAYER_KINDS = ("Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d")


def layer_output_size(
    kind: str,
    size: Size,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    output_padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> Size:
    """Output size of one layer of ``kind`` (one of :data:`LAYER_KINDS`); arguments it lacks are ignored.

    ``ConvTranspose2d`` and the pools take a number for ``padding``; ``"same"``/``"valid"`` raise for them.
    """
    if kind == "Conv2d":
        return arith.conv_output_size(size, kernel_size, stride, padding, dilation)
    if kind == "ConvTranspose2d":
        return arith.conv_transpose_output_size(size, kernel_size, stride, padding, output_padding, dilation)
    if kind == "MaxPool2d":
        return arith.pool_output_size(size, kernel_size, stride, padding, dilation, ceil_mode)
    if kind == "AvgPool2d":
        return arith.avg_pool_output_size(size, kernel_size, stride, padding, ceil_mode)
    raise arith.ShapeError(f"unknown layer {kind!r}; choose one of {', '.join(LAYER_KINDS)}", "kind")


def layer_receptive_field(
    kind: str, kernel_size: IntOrPair, stride: IntOrPair = 1, dilation: IntOrPair = 1
) -> Size:
    """Input pixels one output pixel of a single layer of ``kind`` depends on, per axis.

    The effective kernel ``dilation·(kernel − 1) + 1``; for ``ConvTranspose2d`` divided by the stride and
    rounded up, since only every stride-th row and column of its upsampled input holds an input pixel.
    An int ``kernel_size`` (with int ``stride`` and ``dilation``) gives an int, otherwise an ``(h, w)`` pair.
    """
    field = arith.effective_kernel_size(kernel_size, dilation)
    if kind != "ConvTranspose2d":
        return field
    f, s = arith.as_pair(field, "kernel_size"), arith.as_pair(stride, "stride")
    if min(s) < 1:
        raise arith.ShapeError(f"stride must be at least 1, got {stride!r}", "stride")
    out = (math.ceil(f[0] / s[0]), math.ceil(f[1] / s[1]))
    return out[0] if isinstance(field, int) and isinstance(stride, int) else out
