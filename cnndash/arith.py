"""Shape arithmetic for 2-D convolutions and pools — pure functions that agree with PyTorch exactly.

Every size argument is an ``int`` or an ``(h, w)`` pair; a result has the same form as ``size`` (an int
in, an int out; a pair in, a tuple out). Hyper-parameters (kernel, stride, ...) may be an int or a pair,
as in ``torch.nn``. A configuration PyTorch would refuse raises :class:`ShapeError`, whose ``argument``
attribute names the offending argument so a UI can point at the control to change.

Also here: parameter and multiply–accumulate (MAC) counts, the effective (dilated) kernel size, and the
receptive field and jump ("effective stride") through a stack of layers. MACs follow torchinfo's
convention so totals can be compared with it: a convolution costs ``(weights + biases) × output
positions``, any other layer with parameters ``parameters × batch``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal, TypeAlias, overload

from cnndash.errors import Term, UserError
from cnndash.text import N_

Size: TypeAlias = int | tuple[int, int]
IntOrPair: TypeAlias = int | Sequence[int]
Padding: TypeAlias = IntOrPair | Literal["same", "valid"]

AXES = (Term(N_("height")), Term(N_("width")))  # translated where an error is shown (cnndash.errors.Term)

__all__ = [
    "AXES",
    "ShapeError",
    "as_pair",
    "avg_pool_output_size",
    "conv_macs",
    "conv_output_size",
    "conv_params",
    "conv_transpose_output_size",
    "effective_kernel_size",
    "linear_macs",
    "linear_params",
    "pool_output_size",
    "receptive_field",
    "receptive_field_step",
]


class ShapeError(UserError):
    """A layer configuration or input size that PyTorch would refuse.

    ``argument`` is the name of the argument to change (``"padding"``, ``"kernel_size"``, ``"size"``...),
    or ``None`` when no single argument is to blame; ``axis`` is 0 (height) or 1 (width) when the problem
    is on one axis only.
    """

    domain = "calculator"  # the conv calculator's messages: ui.user_errors translates them there

    def __init__(
        self, message: str, argument: str | None = None, axis: int | None = None, /, **params: object
    ) -> None:
        super().__init__(message, **params)
        self.argument = argument
        self.axis = axis


def _pair(value: object, name: str) -> tuple[int, int]:
    if isinstance(value, bool):
        raise ShapeError(
            "{name} must be an int or an (h, w) pair, not {value}", name, name=name, value=repr(value)
        )
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        a, b = value
        if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
            return (a, b)
    raise ShapeError(
        "{name} must be an int or an (h, w) pair of ints, not {value}", name, name=name, value=repr(value)
    )


def as_pair(value: IntOrPair, name: str = "value") -> tuple[int, int]:
    """``3`` → ``(3, 3)``, ``(3, 5)`` → ``(3, 5)``; raises ShapeError naming ``name`` for anything else."""
    return _pair(value, name)


def _fmt(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"


def _result(size: object, out: tuple[int, int]) -> Size:
    return out[0] if isinstance(size, int) else out


def _check_positive(value: tuple[int, int], name: str, what: str) -> None:
    if min(value) < 1:
        raise ShapeError(
            "{what} must be at least 1, got {name}={value}", name, what=what, name=name, value=_fmt(value)
        )


def _check_window(k: tuple[int, int], s: tuple[int, int], d: tuple[int, int]) -> None:
    """Kernel, stride and dilation of a sliding window must all be at least 1 (as PyTorch requires)."""
    _check_positive(k, "kernel_size", Term(N_("kernel size")))
    _check_positive(s, "stride", Term(N_("stride")))
    _check_positive(d, "dilation", Term(N_("dilation")))


def _check_padding(p: tuple[int, int]) -> None:
    if min(p) < 0:
        raise ShapeError("padding must not be negative, got padding={padding}", "padding", padding=_fmt(p))


def _check_size(size: object) -> tuple[int, int]:
    hw = _pair(size, "size")
    if min(hw) < 1:
        raise ShapeError(
            "the input must be at least 1×1, got {size}; use a larger input", "size", size=_fmt(hw)
        )
    return hw


def effective_kernel_size(kernel_size: IntOrPair, dilation: IntOrPair = 1) -> Size:
    """Footprint of a dilated kernel: ``dilation × (kernel_size − 1) + 1`` per axis."""
    k = _pair(kernel_size, "kernel_size")
    d = _pair(dilation, "dilation")
    _check_positive(k, "kernel_size", "kernel size")
    _check_positive(d, "dilation", "dilation")
    out = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    return out[0] if isinstance(kernel_size, int) and isinstance(dilation, int) else out


@overload
def conv_output_size(
    size: int, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: Padding = 0, dilation: IntOrPair = 1
) -> int: ...
@overload
def conv_output_size(
    size: tuple[int, int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
) -> tuple[int, int]: ...
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output size of ``nn.Conv2d``: ``floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``.

    ``padding`` may be ``"valid"`` (no padding) or ``"same"`` (output = input; stride must be 1).
    """
    hw = _check_size(size)
    k = _pair(kernel_size, "kernel_size")
    s = _pair(stride, "stride")
    d = _pair(dilation, "dilation")
    _check_window(k, s, d)
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0)
        elif padding == "same":
            if s != (1, 1):
                raise ShapeError(
                    'padding="same" needs stride 1, got stride={stride}; set stride to 1 or use a number for padding',
                    "stride",
                    stride=_fmt(s),
                )
            return _result(size, hw)
        else:
            raise ShapeError(
                'padding must be a number, "same" or "valid", not {padding}', "padding", padding=repr(padding)
            )
    else:
        p = _pair(padding, "padding")
    _check_padding(p)
    out = []
    for axis in range(2):
        eff = d[axis] * (k[axis] - 1) + 1
        padded = hw[axis] + 2 * p[axis]
        if padded < eff:
            name = AXES[axis]
            raise ShapeError(
                "the kernel ({eff} px along the {axis} with kernel {k} and dilation {d}) is larger than the "
                "padded input ({n} + 2·{p} = {padded}); use a smaller kernel or dilation, more padding, or an "
                "input {axis} of at least {least}",
                "kernel_size",
                axis,
                eff=eff, axis=name, k=k[axis], d=d[axis], n=hw[axis], p=p[axis], padded=padded,
                least=eff - 2 * p[axis],
            )  # fmt: skip
        out.append((padded - eff) // s[axis] + 1)
    return _result(size, (out[0], out[1]))


def _pool(size, kernel_size, stride, padding, dilation, ceil_mode, layer: str) -> Size:
    hw = _check_size(size)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None else _pair(stride, "stride")
    p = _pair(padding, "padding")
    d = _pair(dilation, "dilation")
    _check_window(k, s, d)
    _check_padding(p)
    for axis in range(2):
        if p[axis] > k[axis] // 2:
            raise ShapeError(
                "{layer} padding can be at most half the kernel size: kernel {k} allows padding ≤ {most} along "
                "the {axis}, got {p}; lower the padding or enlarge the kernel",
                "padding",
                axis,
                layer=layer, k=k[axis], most=k[axis] // 2, axis=AXES[axis], p=p[axis],
            )  # fmt: skip
    out = []
    for axis in range(2):
        eff = d[axis] * (k[axis] - 1) + 1
        numerator = hw[axis] + 2 * p[axis] - eff + (s[axis] - 1 if ceil_mode else 0)
        n = numerator // s[axis] + 1
        # PyTorch's ceil_mode rule: the last window must start inside the input or the left padding.
        if ceil_mode and (n - 1) * s[axis] >= hw[axis] + p[axis]:
            n -= 1
        if n < 1:
            name = AXES[axis]
            raise ShapeError(
                "the {layer} window ({eff} px along the {axis}) does not fit in the padded input "
                "({n} + 2·{p} = {padded}), so the output would be empty; use a smaller kernel or an input "
                "{axis} of at least {least}",
                "kernel_size",
                axis,
                layer=layer, eff=eff, axis=name, n=hw[axis], p=p[axis], padded=hw[axis] + 2 * p[axis],
                least=eff - 2 * p[axis],
            )  # fmt: skip
        out.append(n)
    return _result(size, (out[0], out[1]))


def pool_output_size(
    size: Size,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Size:
    """Output size of ``nn.MaxPool2d`` (``stride`` defaults to ``kernel_size``).

    Same formula as a convolution, rounded up with ``ceil_mode`` — but a window that would start in the
    right padding is dropped, and padding may be at most half the kernel size.
    """
    return _pool(size, kernel_size, stride, padding, dilation, ceil_mode, "pool")


def avg_pool_output_size(
    size: Size,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
) -> Size:
    """Output size of ``nn.AvgPool2d``: the max-pool rule without dilation."""
    return _pool(size, kernel_size, stride, padding, 1, ceil_mode, "pool")


def conv_transpose_output_size(
    size: Size,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Size:
    """Output size of ``nn.ConvTranspose2d``:
    ``(size − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1``.

    An output size of 0 raises: PyTorch refuses it too, except that some CPU backends return an empty
    tensor for a few such configurations (which no following layer can use).
    """
    hw = _check_size(size)
    k = _pair(kernel_size, "kernel_size")
    s = _pair(stride, "stride")
    if isinstance(padding, str):
        raise ShapeError(
            "ConvTranspose2d takes a number for padding, not {padding}", "padding", padding=repr(padding)
        )
    p = _pair(padding, "padding")
    op = _pair(output_padding, "output_padding")
    d = _pair(dilation, "dilation")
    _check_window(k, s, d)
    _check_padding(p)
    if min(op) < 0:
        raise ShapeError(
            "output_padding must not be negative, got {output_padding}",
            "output_padding",
            output_padding=_fmt(op),
        )
    for axis in range(2):
        if op[axis] >= max(s[axis], d[axis]):
            raise ShapeError(
                "output_padding must be smaller than the stride or the dilation: along the {axis} it is {op} "
                "with stride {s} and dilation {d}; set output_padding to at most {most}",
                "output_padding",
                axis,
                axis=AXES[axis], op=op[axis], s=s[axis], d=d[axis], most=max(s[axis], d[axis]) - 1,
            )  # fmt: skip
    out = []
    for axis in range(2):
        n = (hw[axis] - 1) * s[axis] - 2 * p[axis] + d[axis] * (k[axis] - 1) + op[axis] + 1
        if n < 1:
            raise ShapeError(
                "the output {axis} would be {n}: padding {p} removes more than the transposed convolution "
                "adds; lower the padding to at most {most}",
                "padding",
                axis,
                axis=AXES[axis], n=n, p=p[axis],
                most=((hw[axis] - 1) * s[axis] + d[axis] * (k[axis] - 1) + op[axis]) // 2,
            )  # fmt: skip
        out.append(n)
    return _result(size, (out[0], out[1]))


def conv_params(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    groups: int = 1,
    bias: bool = True,
) -> int:
    """Parameters of ``nn.Conv2d`` or ``nn.ConvTranspose2d`` (same count for both)."""
    k = _pair(kernel_size, "kernel_size")
    _check_positive(k, "kernel_size", Term(N_("kernel size")))
    if in_channels < 1 or out_channels < 1:
        raise ShapeError(
            "channels must be at least 1, got in_channels={c_in}, out_channels={c_out}",
            "in_channels" if in_channels < 1 else "out_channels",
            c_in=in_channels,
            c_out=out_channels,
        )
    if groups < 1:
        raise ShapeError("groups must be at least 1, got {groups}", "groups", groups=groups)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            divisors = [g for g in range(1, math.gcd(in_channels, out_channels) + 1) if not in_channels % g]
            divisors = [g for g in divisors if not out_channels % g]
            raise ShapeError(
                "groups={groups} does not divide {name}={value}; groups must divide both in_channels "
                "({c_in}) and out_channels ({c_out}): try one of {divisors}",
                "groups",
                groups=groups, name=name, value=value, c_in=in_channels, c_out=out_channels, divisors=divisors,
            )  # fmt: skip
    weights = out_channels * (in_channels // groups) * k[0] * k[1]
    return weights + (out_channels if bias else 0)


def conv_macs(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    output_size: Size,
    groups: int = 1,
    bias: bool = True,
    batch: int = 1,
) -> int:
    """MACs of one convolution call: ``(weights + biases) × output positions × batch`` (torchinfo's rule).

    For ``nn.Conv2d`` every weight is used once per output position; for ``nn.ConvTranspose2d`` this is
    torchinfo's convention too (pass the transposed layer's own output size).
    """
    out_hw = _pair(output_size, "output_size")
    return conv_params(in_channels, out_channels, kernel_size, groups, bias) * out_hw[0] * out_hw[1] * batch


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of ``nn.Linear``."""
    return in_features * out_features + (out_features if bias else 0)


def linear_macs(in_features: int, out_features: int, bias: bool = True, batch: int = 1) -> int:
    """MACs of ``nn.Linear`` on a ``(batch, in_features)`` input (bias counted, as torchinfo does)."""
    return linear_params(in_features, out_features, bias) * batch


def receptive_field_step(
    field: tuple[int, int],
    jump: tuple[int, int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    dilation: IntOrPair = 1,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Receptive field and jump after one more conv/pool layer.

    ``field`` is how many input pixels one unit of the current feature map sees, ``jump`` how many input
    pixels lie between neighbouring units. A layer adds ``(effective kernel − 1) × jump`` to the field and
    multiplies the jump by its stride.
    """
    k = _pair(kernel_size, "kernel_size")
    s = _pair(stride, "stride")
    d = _pair(dilation, "dilation")
    new_field = tuple(field[a] + d[a] * (k[a] - 1) * jump[a] for a in range(2))
    new_jump = tuple(jump[a] * s[a] for a in range(2))
    return (new_field[0], new_field[1]), (new_jump[0], new_jump[1])


def receptive_field(
    layers: Iterable[tuple[IntOrPair, IntOrPair, IntOrPair]],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Receptive field ``(h, w)`` and jump ``(h, w)`` after a stack of ``(kernel, stride, dilation)`` layers.

    Padding does not change the field (it only shifts where it sits); an empty stack sees one pixel.
    """
    field, jump = (1, 1), (1, 1)
    for kernel_size, stride, dilation in layers:
        field, jump = receptive_field_step(field, jump, kernel_size, stride, dilation)
    return field, jump
