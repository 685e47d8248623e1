"""Why a traced layer failed, in plain words, with the fix.

:func:`cnndash.trace.trace_shapes` records one row per layer call; when a layer raises it hands the
failing module, the rows before it and the exception to :func:`diagnose`, which names the layer, what it
expected, what it received and what to change -- the in_features a Linear needs, the in_channels a
convolution needs, or the nearest input size that would work (found by shape arithmetic alone, when the
layers before the failure form a plain chain whose shapes :mod:`cnndash.arith` can compute).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from torch import nn

from cnndash import arith
from cnndash.errors import Phrase
from cnndash.text import N_

# Layers that keep the shape of their input whatever the input size (safe to skip in shape arithmetic).
SHAPE_PRESERVING = (
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
    nn.LocalResponseNorm,
    nn.GroupNorm,
    nn.InstanceNorm2d,
)
WINDOWED = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)

# The search for an input size that works tries sides up to this, or 4x the current side if larger:
# past ImageNet's 224 px, and far enough for a model whose input is merely too small.
SEARCH_MIN_LIMIT = 256
SEARCH_SCALE = 4

GET_PAST = N_(" The smallest model input that gets past this layer is {size}.")


class LayerCall(Protocol):
    """What the diagnosis reads of a traced layer call (:class:`cnndash.trace.TraceRow` has it)."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(v) for v in shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _layer_label(name: str, module: nn.Module) -> Phrase:
    kind = type(module).__name__
    return (
        Phrase("`{name}` ({kind})", name=name, kind=kind)
        if name
        else Phrase("the model's forward() ({kind})", kind=kind)
    )


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


def _window_problem(module: nn.Module, hw: tuple[int, int]) -> Phrase | None:
    """The arithmetic error a conv/pool layer hits on a spatial input ``hw``, or None if it fits."""
    try:
        _spatial_out(module, hw)
    except arith.ShapeError as exc:
        return Phrase.of(exc)
    return None


def _is_chain(rows: Sequence[LayerCall], modules: list[nn.Module], input_shape: tuple[int, ...]) -> bool:
    """True when the traced layers form a plain chain of layers whose shapes we can compute."""
    previous = input_shape
    for row, module in zip(rows, modules, strict=True):
        if row.input_shape != previous:
            return False
        known = isinstance(module, (*WINDOWED, *ADAPTIVE, *SHAPE_PRESERVING, nn.Flatten, nn.Linear))
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
        if len(shape) == 3 and isinstance(module, WINDOWED):
            hw = _spatial_out(module, (shape[1], shape[2]))
            channels = (
                module.out_channels if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) else shape[0]
            )
            shape = (channels, *hw)
        elif len(shape) == 3 and isinstance(module, ADAPTIVE):
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
    limit = max(SEARCH_MIN_LIMIT, SEARCH_SCALE * max(h0, w0))
    candidates = [(v, v) for v in range(1, limit + 1)]
    if h0 != w0:
        candidates += [(v, w0) for v in range(1, limit + 1)] + [(h0, v) for v in range(1, limit + 1)]
    for hw in sorted(candidates, key=lambda c: (abs(c[0] - h0) + abs(c[1] - w0), c[0] != c[1])):
        if hw == (h0, w0):
            continue
        try:
            if works(_propagate(modules, (channels, *hw))):
                return hw
        except arith.ShapeError:
            continue
    return None


@dataclass
class _Failure:
    """One failed layer call and what was traced before it."""

    module: nn.Module
    label: Phrase  # "`name` (Kind)" for messages
    in_shape: tuple[int, ...]  # what the failing layer received, batch included
    exc: BaseException
    rows: Sequence[LayerCall]  # the calls that succeeded, in order
    modules: list[nn.Module]  # their modules
    input_shape: tuple[int, ...]  # the model's input, batch included

    def resize_hint(
        self, works: Callable[[tuple[int, ...]], bool], phrase: str = N_(", or resize the input to {size}")
    ) -> Phrase | str:
        """``phrase`` with the nearest input size whose shapes ``works``, or "" when none is known."""
        if not _is_chain(self.rows, self.modules, self.input_shape):
            return ""
        hw = _suggest_input(self.modules, self.input_shape, works)
        return Phrase(phrase, size="×".join(map(str, hw))) if hw else ""

    def window_hint(self) -> Phrase | str:
        """The smallest input that gets a conv/pool layer past its window check, as a sentence."""
        module = self.module
        return self.resize_hint(
            lambda shape: len(shape) == 3 and _window_problem(module, shape[1:]) is None, GET_PAST
        )


def _linear_problem(f: _Failure) -> Phrase | None:
    expected = f.module.in_features
    if len(f.in_shape) >= 3:
        return Phrase(
            "{layer} expects {expected} input features but receives a {shape} feature map (a Linear only acts "
            "on the last dimension, {last}); add a Flatten before it (it then receives {flat} features).",
            layer=f.label, expected=expected, shape=_dims(f.in_shape[1:]), last=f.in_shape[-1],
            flat=math.prod(f.in_shape[1:]),
        )  # fmt: skip
    received = f.in_shape[-1] if f.in_shape else 0
    source = str(received)
    if f.rows and f.rows[-1].kind == "Flatten" and len(f.rows[-1].input_shape) >= 3:
        source = f"{_dims(f.rows[-1].input_shape[1:])} = {received}"
    hint = f.resize_hint(lambda shape: len(shape) == 1 and shape[0] == expected)
    return Phrase(
        "{layer} expects {expected} input features but receives {source}; set in_features={received}{hint}.",
        layer=f.label, expected=expected, source=source, received=received, hint=hint,
    )  # fmt: skip


def _conv_problem(f: _Failure) -> Phrase | None:
    module, in_shape = f.module, f.in_shape
    if len(in_shape) not in (3, 4):
        return Phrase(
            "{layer} needs a (N, C, H, W) feature map but receives a flat {shape} tensor; move it before the "
            "Flatten, or use a Linear layer here.",
            layer=f.label,
            shape=_dims(in_shape),
        )
    channels = in_shape[1]
    if channels != module.in_channels:
        fix = Phrase("set in_channels={channels}", channels=channels)
        if module.groups > 1 and channels % module.groups:
            fix = Phrase(
                "set in_channels={channels} and choose groups that divide {channels}", channels=channels
            )
        return Phrase(
            "{layer} expects {expected} input channels but receives {channels}; {fix} (or make the previous "
            "layer output {expected} channels).",
            layer=f.label, expected=module.in_channels, channels=channels, fix=fix,
        )  # fmt: skip
    problem = _window_problem(module, (in_shape[2], in_shape[3]))
    if problem:
        return Phrase(
            "{layer} cannot work on its {h}×{w} input: {problem}.{hint}",
            layer=f.label, h=in_shape[2], w=in_shape[3], problem=problem, hint=f.window_hint(),
        )  # fmt: skip
    return _failed(f.label, in_shape, f.exc)


def _failed(label: Phrase, in_shape: tuple[int, ...], exc: BaseException) -> Phrase:
    return Phrase(
        "{layer} failed on an input of shape {shape}: {error}",
        layer=label,
        shape=_dims(in_shape),
        error=_first_line(exc),
    )


def _pool_problem(f: _Failure) -> Phrase | None:
    if len(f.in_shape) != 4:
        return None
    problem = _window_problem(f.module, (f.in_shape[2], f.in_shape[3]))
    if not problem:
        return None
    return Phrase(
        "{layer} cannot work on its {h}×{w} input: {problem}; or remove a downsampling layer before it.{hint}",
        layer=f.label, h=f.in_shape[2], w=f.in_shape[3], problem=problem, hint=f.window_hint(),
    )  # fmt: skip


def _batchnorm_problem(f: _Failure) -> Phrase | None:
    expected = f.module.num_features
    if len(f.in_shape) < 2 or f.in_shape[1] == expected:
        return None
    return Phrase(
        "{layer} expects {expected} channels but receives {channels}; set num_features={channels}.",
        layer=f.label, expected=expected, channels=f.in_shape[1],
    )  # fmt: skip


# The layer kinds with a specific diagnosis; any other failure is reported with PyTorch's own message.
_PROBLEMS: tuple[tuple[tuple[type[nn.Module], ...], Callable[[_Failure], Phrase | None]], ...] = (
    ((nn.Linear,), _linear_problem),
    ((nn.Conv2d, nn.ConvTranspose2d), _conv_problem),
    ((nn.MaxPool2d, nn.AvgPool2d), _pool_problem),
    ((nn.BatchNorm2d,), _batchnorm_problem),
)


def diagnose(
    module: nn.Module,
    name: str,
    in_shape: tuple[int, ...],
    exc: BaseException,
    rows: Sequence[LayerCall],
    modules: list[nn.Module],
    input_shape: tuple[int, ...],
) -> Phrase:
    """Plain-language message for ``module`` (dotted ``name``) raising ``exc`` on an input of
    ``in_shape``, after the layer calls ``rows`` (made by ``modules``) on a model input of
    ``input_shape``."""
    label = _layer_label(name, module)
    if next(module.children(), None) is not None:  # a container's own forward code failed
        if rows:
            return Phrase(
                "The forward code of {layer} failed after layer `{after}` (output {shape}): {error}",
                layer=label, after=rows[-1].name, shape=_dims(rows[-1].output_shape), error=_first_line(exc),
            )  # fmt: skip
        return Phrase("The forward code of {layer} failed: {error}", layer=label, error=_first_line(exc))
    failure = _Failure(module, label, in_shape, exc, rows, modules, input_shape)
    for kinds, problem in _PROBLEMS:
        if isinstance(module, kinds):
            message = problem(failure)
            if message:
                return message
            break
    return _failed(label, in_shape, exc)
