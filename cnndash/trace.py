"""Shape trace of a model: one forward pass on zeros, a row per layer, and a diagnosis when a layer fails.

``trace_shapes(model, input_shape)`` runs the model once under ``torch.no_grad()`` in eval mode (each
module's mode is restored afterwards) with forward hooks on every module (all removed afterwards). Each
leaf module call becomes a :class:`TraceRow` with its output shape, own parameters, MACs (torchinfo's
convention, so totals compare with it) and receptive field. If a layer raises, the trace keeps the rows
before it and explains the failure in plain words with the fix — the in_features a Linear needs, the
in_channels a convolution needs, or an input size that would work. It never raises for a failing model.

Models on the ``meta`` device work too: shapes without memory or compute, which is how the layer-stack
editor traces VGG-16 in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from cnndash import arith
from cnndash.modes import eval_mode

__all__ = ["ShapeTrace", "TraceRow", "trace_shapes"]

# Layers that keep the shape of their input whatever the input size (safe to skip in shape arithmetic).
_SHAPE_PRESERVING = (
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
    nn.LocalResponseNorm,
    nn.GroupNorm,
    nn.InstanceNorm2d,
)
_WINDOWED = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)
_ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


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
    diagnosis: str | None = None
    total_params: int = 0  # sum(p.numel()) over the whole model, each parameter once
    failed_kind: str | None = None  # class name of the failing module

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


Field = tuple[tuple[int, int], tuple[float, float]] | None


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
    if isinstance(module, _ADAPTIVE) and len(in_shape) == 4:
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


def trace_shapes(model: nn.Module, input_shape: Sequence[int]) -> ShapeTrace:
    """Trace ``model`` on a zero tensor of ``input_shape`` ((C, H, W) or (N, C, H, W)); see the module doc.

    Raises :class:`cnndash.arith.ShapeError` only for a malformed ``input_shape``.
    """
    shape = _check_input_shape(input_shape)
    names = {id(module): name for name, module in model.named_modules()}
    reference = next(model.parameters(), None)
    if reference is None:
        reference = next(model.buffers(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = reference.dtype if reference is not None and reference.is_floating_point() else torch.float32
    x = torch.zeros(shape, device=device, dtype=dtype)

    rows: list[TraceRow] = []
    row_modules: list[nn.Module] = []
    stack: list[tuple[nn.Module, tuple[int, ...]]] = []
    fields: dict[int, tuple[torch.Tensor, Field]] = {id(x): (x, ((1, 1), (1.0, 1.0)))}
    widest: list[Field] = [((1, 1), (1.0, 1.0))]

    def pre_hook(module: nn.Module, args: tuple) -> None:
        tensor = _first_tensor(args)
        stack.append((module, tuple(tensor.shape) if tensor is not None else ()))

    def post_hook(module: nn.Module, args: tuple, output: Any) -> None:
        while stack and stack[-1][0] is not module:
            stack.pop()
        in_shape = stack.pop()[1] if stack else ()
        if next(module.children(), None) is not None:
            return
        out = _first_tensor(output)
        out_shape = tuple(out.shape) if out is not None else ()
        inp = _first_tensor(args)
        # Where the input came from: a traced layer's output, or (after functional code such as a
        # residual addition) the widest field seen so far — the union of both branches.
        known = fields.get(id(inp)) if inp is not None else None
        state_in = known[1] if known is not None and known[0] is inp else max(widest, key=_area)
        state = _field_after(module, state_in, in_shape, out_shape)
        if out is not None:
            fields[id(out)] = (out, state)
        widest.append(state)
        rows.append(
            TraceRow(
                name=names.get(id(module), type(module).__name__),
                kind=type(module).__name__,
                input_shape=in_shape,
                output_shape=out_shape,
                params=sum(p.numel() for p in module.parameters(recurse=False)),
                macs=_module_macs(module, out_shape),
                receptive_field=None if state is None else state[0],
                jump=None if state is None else state[1],
            )
        )
        row_modules.append(module)

    handles = []
    error: BaseException | None = None
    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(post_hook))
        with eval_mode(model), torch.no_grad():
            model(x)
    except Exception as exc:  # the failure is the result
        error = exc
    finally:
        for handle in handles:
            handle.remove()

    total_params = sum(p.numel() for p in model.parameters())
    if error is None:
        return ShapeTrace(input_shape=shape, rows=rows, ok=True, total_params=total_params)
    failed, failed_input = stack[-1] if stack else (model, shape)
    name = names.get(id(failed), "")
    diagnosis = _diagnose(failed, name, failed_input, error, rows, row_modules, shape)
    return ShapeTrace(
        input_shape=shape,
        rows=rows,
        ok=False,
        failed_layer=name,
        diagnosis=diagnosis,
        total_params=total_params,
        failed_kind=type(failed).__name__,
    )


# ---------------------------------------------------------------------------------------------- diagnosis


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(v) for v in shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _layer_label(name: str, module: nn.Module) -> str:
    return (
        f"`{name}` ({type(module).__name__})" if name else f"the model's forward() ({type(module).__name__})"
    )


def _window_problem(module: nn.Module, hw: tuple[int, int]) -> str | None:
    """The arithmetic error a conv/pool layer hits on a spatial input ``hw``, or None if it fits."""
    try:
        _spatial_out(module, hw)
    except arith.ShapeError as exc:
        return str(exc)
    return None


def _spatial_out(module: nn.Module, hw: tuple[int, int]) -> tuple[int, int]:
    if isinstance(module, nn.ConvTranspose2d):
        out_pad = module.output_padding
        return arith.conv_transpose_output_size(
            hw, module.kernel_size, module.stride, module.padding, out_pad, module.dilation
        )
    if isinstance(module, nn.Conv2d):
        return arith.conv_output_size(hw, module.kernel_size, module.stride, module.padding, module.dilation)
    if isinstance(module, nn.MaxPool2d):
        return arith.pool_output_size(
            hw, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode
        )
    if isinstance(module, nn.AvgPool2d):
        return arith.avg_pool_output_size(
            hw, module.kernel_size, module.stride, module.padding, module.ceil_mode
        )
    raise TypeError(type(module).__name__)


def _is_chain(rows: list[TraceRow], modules: list[nn.Module], input_shape: tuple[int, ...]) -> bool:
    """True when the traced layers form a plain chain of layers whose shapes we can compute."""
    previous = input_shape
    for row, module in zip(rows, modules, strict=True):
        if row.input_shape != previous:
            return False
        known = isinstance(module, (*_WINDOWED, *_ADAPTIVE, *_SHAPE_PRESERVING, nn.Flatten, nn.Linear))
        activation = type(module).__module__ == "torch.nn.modules.activation"
        if not (known or activation):
            return False
        if isinstance(module, nn.Flatten) and (module.start_dim, module.end_dim) != (1, -1):
            return False
        previous = row.output_shape
    return True


def _propagate(modules: list[nn.Module], chw: tuple[int, int, int]) -> tuple[int, ...]:
    """Shape (without batch) after ``modules`` for an input of ``chw``; raises ShapeError if one refuses."""
    shape: tuple[int, ...] = chw
    for module in modules:
        if len(shape) == 3 and isinstance(module, _WINDOWED):
            hw = _spatial_out(module, (shape[1], shape[2]))
            channels = (
                module.out_channels if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) else shape[0]
            )
            shape = (channels, *hw)
        elif len(shape) == 3 and isinstance(module, _ADAPTIVE):
            out = module.output_size
            pair = (out, out) if isinstance(out, int) else tuple(out)
            size = tuple(shape[1 + a] if v is None else v for a, v in enumerate(pair))
            shape = (shape[0], *size)
        elif isinstance(module, nn.Flatten):
            shape = (math.prod(shape),)
        elif isinstance(module, nn.Linear):
            shape = (*shape[:-1], module.out_features)
    return shape


def _suggest_input(
    modules: list[nn.Module], input_shape: tuple[int, ...], works: Callable[[tuple[int, ...]], bool]
) -> tuple[int, int] | None:
    """The input (h, w) nearest to the current one for which the layers before the failure give a shape
    that ``works``; squares are preferred for square inputs."""
    channels, h0, w0 = input_shape[1], input_shape[2], input_shape[3]
    limit = max(256, 4 * max(h0, w0))
    candidates = [(v, v) for v in range(1, limit + 1)]
    if h0 != w0:
        candidates += [(v, w0) for v in range(1, limit + 1)] + [(h0, v) for v in range(1, limit + 1)]
    best: tuple[int, int] | None = None
    for hw in sorted(candidates, key=lambda c: (abs(c[0] - h0) + abs(c[1] - w0), c[0] != c[1])):
        if hw == (h0, w0):
            continue
        try:
            if works(_propagate(modules, (channels, *hw))):
                best = hw
                break
        except arith.ShapeError:
            continue
    return best


GET_PAST = " The smallest model input that gets past this layer is {}."


def _diagnose(
    module: nn.Module,
    name: str,
    in_shape: tuple[int, ...],
    exc: BaseException,
    rows: list[TraceRow],
    modules: list[nn.Module],
    input_shape: tuple[int, ...],
) -> str:
    label = _layer_label(name, module)
    chain = _is_chain(rows, modules, input_shape)
    is_leaf = next(module.children(), None) is None

    def resize_hint(
        works: Callable[[tuple[int, ...]], bool], phrase: str = ", or resize the input to {}"
    ) -> str:
        if not chain:
            return ""
        hw = _suggest_input(modules, input_shape, works)
        return phrase.format(f"{hw[0]}×{hw[1]}") if hw else ""

    if not is_leaf:
        after = f" after layer `{rows[-1].name}` (output {_dims(rows[-1].output_shape)})" if rows else ""
        return f"The forward code of {label} failed{after}: {_first_line(exc)}"

    if isinstance(module, nn.Linear):
        expected = module.in_features
        if len(in_shape) >= 3:
            return (
                f"{label} expects {expected} input features but receives a {_dims(in_shape[1:])} feature "
                f"map (a Linear only acts on the last dimension, {in_shape[-1]}); add a Flatten before it "
                f"(it then receives {math.prod(in_shape[1:])} features)."
            )
        received = in_shape[-1] if in_shape else 0
        source = str(received)
        if rows and rows[-1].kind == "Flatten" and len(rows[-1].input_shape) >= 3:
            source = f"{_dims(rows[-1].input_shape[1:])} = {received}"
        hint = resize_hint(lambda shape: len(shape) == 1 and shape[0] == expected)
        return (
            f"{label} expects {expected} input features but receives {source}; "
            f"set in_features={received}{hint}."
        )

    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        if len(in_shape) not in (3, 4):
            return (
                f"{label} needs a (N, C, H, W) feature map but receives a flat {_dims(in_shape)} tensor; "
                f"move it before the Flatten, or use a Linear layer here."
            )
        channels = in_shape[1]
        if channels != module.in_channels:
            groups = module.groups
            fix = f"set in_channels={channels}"
            if groups > 1 and channels % groups:
                fix += f" and choose groups that divide {channels}"
            return (
                f"{label} expects {module.in_channels} input channels but receives {channels}; {fix} "
                f"(or make the previous layer output {module.in_channels} channels)."
            )
        problem = _window_problem(module, (in_shape[2], in_shape[3]))
        if problem:
            hint = resize_hint(
                lambda shape, m=module: len(shape) == 3 and _window_problem(m, shape[1:]) is None, GET_PAST
            )
            return f"{label} cannot work on its {in_shape[2]}×{in_shape[3]} input: {problem}.{hint}"
        return f"{label} failed on an input of shape {_dims(in_shape)}: {_first_line(exc)}"

    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)) and len(in_shape) == 4:
        problem = _window_problem(module, (in_shape[2], in_shape[3]))
        if problem:
            hint = resize_hint(
                lambda shape, m=module: len(shape) == 3 and _window_problem(m, shape[1:]) is None, GET_PAST
            )
            return (
                f"{label} cannot work on its {in_shape[2]}×{in_shape[3]} input: {problem}; or remove a "
                f"downsampling layer before it.{hint}"
            )

    if isinstance(module, nn.BatchNorm2d) and len(in_shape) >= 2 and in_shape[1] != module.num_features:
        return (
            f"{label} expects {module.num_features} channels but receives {in_shape[1]}; "
            f"set num_features={in_shape[1]}."
        )

    return f"{label} failed on an input of shape {_dims(in_shape)}: {_first_line(exc)}"
