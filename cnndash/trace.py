"""Shape trace of a model: one forward pass on zeros, a row per layer, and a diagnosis when a layer fails.

``trace_shapes(model, input_shape)`` runs the model once under ``torch.no_grad()`` in eval mode (each
module's mode is restored afterwards) with forward hooks on every module (all removed afterwards). Each
leaf module call becomes a :class:`TraceRow` with its output shape, own parameters, MACs (torchinfo's
convention, so totals compare with it) and receptive field. If a layer raises, the trace keeps the rows
before it and explains the failure in plain words with the fix (:mod:`cnndash.trace_diagnosis`: the
in_features a Linear needs, the in_channels a convolution needs, or an input size that would work). It
never raises for a failing model.

Models on the ``meta`` device work too: shapes without memory or compute, which is how the layer-stack
editor traces VGG-16 in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from cnndash import arith
from cnndash.errors import Phrase
from cnndash.modes import eval_mode
from cnndash.trace_diagnosis import ADAPTIVE, diagnose

__all__ = ["ShapeTrace", "TraceRow", "trace_shapes"]


@dataclass(frozen=True)
class TraceRow:
    """One call of one leaf module. ``receptive_field`` is ``None`` once every input pixel is seen
    (after a Flatten, a Linear or a global pool)."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: tuple[int, int] | None
    jump: tuple[float, float] | None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass
class ShapeTrace:
    """Result of :func:`trace_shapes`; ``rows`` stop at the failing layer when ``ok`` is False."""

    input_shape: tuple[int, ...]
    rows: list[TraceRow]
    ok: bool
    failed_layer: str | None = None
    diagnosis: str | None = None  # why the failing layer fails, in English (``why`` for the UI to translate)
    total_params: int = 0  # sum(p.numel()) over the whole model, each parameter once
    failed_kind: str | None = None  # class name of the failing module
    why: Phrase | None = None  # the diagnosis as a template and parameters (ui.phrase_text translates it)

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.rows)

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """Shape of the last leaf's output when the trace succeeded."""
        return self.rows[-1].output_shape if self.ok and self.rows else None

    def records(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (for tables)."""
        return [asdict(row) for row in self.rows]


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(value, dict):
        for item in value.values():
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _module_macs(module: nn.Module, output_shape: tuple[int, ...]) -> int:
    """torchinfo's rule: conv weights × output positions × batch; other parameters × batch."""
    if not output_shape:
        return 0
    macs = 0
    for name, param in module.named_parameters(recurse=False):
        count = param.numel()
        if name in ("weight", "bias"):
            if "Conv" in type(module).__name__:
                macs += count * math.prod(output_shape[:1] + output_shape[2:])
            else:
                macs += count * output_shape[0]
        elif "weight" in name or "bias" in name:
            macs += count * math.prod(output_shape[:2])
    return macs


# A receptive field and its jump: ((height, width) in input pixels, (jump_h, jump_w) in input pixels per
# step of this layer's output grid); None once every input pixel is seen.
Field = tuple[tuple[int, int], tuple[float, float]] | None
_PIXEL: Field = ((1, 1), (1.0, 1.0))  # the input itself: each value sees one pixel


def _field_after(
    module: nn.Module, state: Field, in_shape: tuple[int, ...], out_shape: tuple[int, ...]
) -> Field:
    if state is None or len(out_shape) != 4:
        return None
    (fh, fw), (jh, jw) = state
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        k = arith.as_pair(module.kernel_size, "kernel_size")
        stride = module.stride if module.stride is not None else module.kernel_size
        s = arith.as_pair(stride, "stride")
        d = arith.as_pair(getattr(module, "dilation", 1), "dilation")
        return (
            (math.ceil(fh + d[0] * (k[0] - 1) * jh), math.ceil(fw + d[1] * (k[1] - 1) * jw)),
            (jh * s[0], jw * s[1]),
        )
    if isinstance(module, nn.ConvTranspose2d):
        # An output unit sees ceil(effective kernel / stride) input units; the grid gets finer by stride.
        k, s, d = module.kernel_size, module.stride, module.dilation
        taps = [math.ceil((d[a] * (k[a] - 1) + 1) / s[a]) for a in range(2)]
        return (
            (math.ceil(fh + (taps[0] - 1) * jh), math.ceil(fw + (taps[1] - 1) * jw)),
            (jh / s[0], jw / s[1]),
        )
    if isinstance(module, ADAPTIVE) and len(in_shape) == 4:
        out_hw = out_shape[2:]
        if out_hw == (1, 1):
            return None
        in_hw = in_shape[2:]
        k = [math.ceil(in_hw[a] / out_hw[a]) for a in range(2)]
        s = [max(1, in_hw[a] // out_hw[a]) for a in range(2)]
        return ((fh + (k[0] - 1) * math.ceil(jh), fw + (k[1] - 1) * math.ceil(jw)), (jh * s[0], jw * s[1]))
    return state


def _area(state: Field) -> float:
    return math.inf if state is None else state[0][0] * state[0][1]


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) not in (3, 4) or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape):
        raise arith.ShapeError(
            f"input_shape must be (C, H, W) or (N, C, H, W) integers, got {input_shape!r}", "input_shape"
        )
    if min(shape) < 1:
        raise arith.ShapeError(f"every input dimension must be at least 1, got {shape}", "input_shape")
    return shape if len(shape) == 4 else (1, *shape)


class _Recorder:
    """The forward hooks of one trace: a pre-hook on every module notes what it receives, a post-hook
    turns each leaf module call into a :class:`TraceRow` (with its receptive field)."""

    def __init__(self, model: nn.Module, x: torch.Tensor) -> None:
        self.names = {id(module): name for name, module in model.named_modules()}
        self.rows: list[TraceRow] = []
        self.row_modules: list[nn.Module] = []
        # Modules entered and not yet finished, with their input shapes: the last one is the one that
        # raised when the forward pass fails.
        self.stack: list[tuple[nn.Module, tuple[int, ...]]] = []
        self._fields: dict[int, tuple[torch.Tensor, Field]] = {id(x): (x, _PIXEL)}
        self._widest: list[Field] = [_PIXEL]

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        tensor = _first_tensor(args)
        self.stack.append((module, tuple(tensor.shape) if tensor is not None else ()))

    def post_hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        while self.stack and self.stack[-1][0] is not module:
            self.stack.pop()
        in_shape = self.stack.pop()[1] if self.stack else ()
        if next(module.children(), None) is not None:
            return
        out = _first_tensor(output)
        out_shape = tuple(out.shape) if out is not None else ()
        inp = _first_tensor(args)
        # Where the input came from: a traced layer's output, or (after functional code such as a
        # residual addition) the widest field seen so far — the union of both branches.
        known = self._fields.get(id(inp)) if inp is not None else None
        state_in = known[1] if known is not None and known[0] is inp else max(self._widest, key=_area)
        state = _field_after(module, state_in, in_shape, out_shape)
        if out is not None:
            self._fields[id(out)] = (out, state)
        self._widest.append(state)
        self.rows.append(
            TraceRow(
                name=self.names.get(id(module), type(module).__name__),
                kind=type(module).__name__,
                input_shape=in_shape,
                output_shape=out_shape,
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                macs=_module_macs(module, out_shape),
                receptive_field=None if state is None else state[0],
                jump=None if state is None else state[1],
            )
        )
        self.row_modules.append(module)


def _zeros_like_model(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros of ``shape`` on the model's device, in its floating dtype (float32 if it has none)."""
    reference = next(model.parameters(), None)
    if reference is None:
        reference = next(model.buffers(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32
    return torch.zeros(shape, device=device, dtype=dtype)


def trace_shapes(model: nn.Module, input_shape: Sequence[int]) -> ShapeTrace:
    """Trace ``model`` on a zero tensor of ``input_shape`` ((C, H, W) or (N, C, H, W)); see the module doc.

    Raises :class:`cnndash.arith.ShapeError` only for a malformed ``input_shape``.
    """
    shape = _check_input_shape(input_shape)
    x = _zeros_like_model(model, shape)
    recorder = _Recorder(model, x)
    handles = []
    error: BaseException | None = None
    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(recorder.pre_hook))
            handles.append(module.register_forward_hook(recorder.post_hook))
        with eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:  # the failure is the result
        error = exc
    finally:
        for handle in handles:
            handle.remove()

    total_params = sum(p.numel() for p in model.parameters())
    rows = recorder.rows
    if error is None:
        return ShapeTrace(input_shape=shape, rows=rows, ok=True, total_params=total_params)
    failed, failed_input = recorder.stack[-1] if recorder.stack else (model, shape)
    name = recorder.names.get(id(failed), "")
    why = diagnose(failed, name, failed_input, error, rows, recorder.row_modules, shape)
    return ShapeTrace(
        input_shape=shape,
        rows=rows,
        ok=False,
        failed_layer=name,
        diagnosis=str(why),
        total_params=total_params,
        failed_kind=type(failed).__name__,
        why=why,
    )
