"""Layer stacks as editable tables: parse, build an ``nn.Sequential``, trace it, export it as PyTorch code.

A stack is a list of rows (dicts) with the columns in :data:`COLUMNS` — the same shape as the page's
``st.data_editor`` table. Values are what a person types: numbers, ``"3x5"`` for an (h, w) pair,
``"same"``/``"valid"`` for a convolution's padding, blank for the default. A blank ``in`` (in_channels,
in_features or num_features) is inferred from the shape that reaches the layer, so a stack can be typed
top to bottom without bookkeeping; an explicit value is kept even when it is wrong, so the trace can
show what goes wrong.

Stacks are built on the ``meta`` device for tracing (shapes only: VGG-16 traces in milliseconds) and on
a real device for code export tests. ``residual=True`` wraps the stack as ``relu(stack(x) + x)`` — a
ResNet basic block with an identity shortcut.

The parts live in their own modules and are re-exported here: parsing the rows
(:mod:`cnndash.stack.parse`), exporting code (:mod:`cnndash.stack.code`) and the tutorial presets
(:mod:`cnndash.stack.presets`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from cnndash import arith
from cnndash.stack.code import stack_code
from cnndash.stack.parse import (
    COLUMNS,
    LAYER_TYPES,
    USES,
    IgnoredCells,
    LayerSpecError,
    ignored_cells,
    make_layer,
    resolve_stack,
)
from cnndash.stack.presets import PRESETS, Preset
from cnndash.trace import ShapeTrace, trace_shapes

__all__ = [
    "COLUMNS",
    "LAYER_TYPES",
    "PRESETS",
    "USES",
    "IgnoredCells",
    "LayerSpecError",
    "Preset",
    "ResidualBlock",
    "build_stack",
    "ignored_cells",
    "resolve_stack",
    "stack_code",
    "trace_stack",
]


class ResidualBlock(nn.Module):
    """``relu(body(x) + x)``: a residual block with an identity shortcut."""

    def __init__(self, body: nn.Sequential) -> None:
        super().__init__()
        self.body = body
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if out.shape != x.shape:
            raise arith.ShapeError(
                "the identity shortcut adds the block input {block} to the stack output {stack}, and they must "
                "have the same shape; keep stride 1, padding that preserves the size, and the last "
                "out_channels equal to the input channels (or turn the shortcut off)",
                block="×".join(map(str, x.shape[1:])),
                stack="×".join(map(str, out.shape[1:])),
            )
        return self.relu(out + x)


def build_stack(
    layers: Sequence[Mapping[str, Any]],
    input_shape: Sequence[int],
    *,
    residual: bool = False,
    device: torch.device | str | None = None,
) -> nn.Module:
    """The stack as an ``nn.Sequential`` (or a :class:`ResidualBlock` around one) on ``device``."""
    body = nn.Sequential(
        *(make_layer(kind, kwargs, device) for kind, kwargs in resolve_stack(layers, input_shape))
    )
    return ResidualBlock(body) if residual else body


def trace_stack(
    layers: Sequence[Mapping[str, Any]], input_shape: Sequence[int], *, residual: bool = False
) -> ShapeTrace:
    """Shape trace of the stack on ``input_shape`` (C, H, W), computed on the meta device (no memory)."""
    model = build_stack(layers, input_shape, residual=residual, device="meta")
    return trace_shapes(model, tuple(int(v) for v in input_shape))
