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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnndash import arith
from cnndash.trace import ShapeTrace, trace_shapes

__all__ = [
    "COLUMNS",
    "LAYER_TYPES",
    "PRESETS",
    "LayerSpecError",
    "Preset",
    "ResidualBlock",
    "build_stack",
    "resolve_stack",
    "stack_code",
    "trace_stack",
]

LAYER_TYPES = (
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "BatchNorm2d",
    "ReLU",
    "Dropout",
    "Flatten",
    "Linear",
)
COLUMNS = (
    "layer",
    "in",
    "out",
    "kernel",
    "stride",
    "padding",
    "dilation",
    "groups",
    "output_padding",
    "ceil_mode",
    "bias",
    "p",
)
# Which columns each layer type reads (the others are ignored for it).
USES: dict[str, tuple[str, ...]] = {
    "Conv2d": ("in", "out", "kernel", "stride", "padding", "dilation", "groups", "bias"),
    "ConvTranspose2d": (
        "in",
        "out",
        "kernel",
        "stride",
        "padding",
        "dilation",
        "groups",
        "output_padding",
        "bias",
    ),
    "MaxPool2d": ("kernel", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool2d": ("kernel", "stride", "padding", "ceil_mode"),
    "AdaptiveAvgPool2d": ("out",),
    "BatchNorm2d": ("in",),
    "ReLU": (),
    "Dropout": ("p",),
    "Flatten": (),
    "Linear": ("in", "out", "bias"),
}


class LayerSpecError(ValueError):
    """A row of a layer stack that cannot be turned into a layer; the message names the row and column."""


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
                f"the identity shortcut adds the block input {'×'.join(map(str, x.shape[1:]))} to the stack "
                f"output {'×'.join(map(str, out.shape[1:]))}, and they must have the same shape; keep "
                "stride 1, padding that preserves the size, and the last out_channels equal to the input "
                "channels (or turn the shortcut off)"
            )
        return self.relu(out + x)


@dataclass(frozen=True)
class Preset:
    """A ready-made stack from the tutorials, with the input it was designed for."""

    name: str
    input_shape: tuple[int, int, int]
    layers: tuple[Mapping[str, Any], ...]
    residual: bool = False
    note: str = ""


# ------------------------------------------------------------------------------------------------ parsing

_PAIR = re.compile(r"^\s*(\d+)\s*[x×,*]\s*(\d+)\s*$")
_INT = re.compile(r"^\s*-?\d+\s*$")


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _where(index: int, kind: str, column: str) -> str:
    return f"row {index + 1} ({kind}), column '{column}'"


def _int(value: Any, index: int, kind: str, column: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise LayerSpecError(f"{_where(index, kind, column)}: expected a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.match(value):
        return int(value)
    raise LayerSpecError(f"{_where(index, kind, column)}: expected a whole number, got {value!r}")


def _size(value: Any, index: int, kind: str, column: str, words: tuple[str, ...] = ()) -> Any:
    """An int, an (h, w) pair written ``3x5``, one of ``words``, or None when blank."""
    if _blank(value):
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in words:
            return text
        match = _PAIR.match(text)
        if match:
            return (int(match.group(1)), int(match.group(2)))
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (_int(value[0], index, kind, column), _int(value[1], index, kind, column))
    try:
        return _int(value, index, kind, column)
    except LayerSpecError:
        allowed = "a number or an h×w pair such as 3x5" + "".join(f' or "{w}"' for w in words)
        raise LayerSpecError(f"{_where(index, kind, column)}: expected {allowed}, got {value!r}") from None


def _bool(value: Any, default: bool) -> bool:
    if _blank(value):
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y")
    return bool(value)


def _required(value: Any, index: int, kind: str, column: str, what: str) -> Any:
    if value is None:
        raise LayerSpecError(f"{_where(index, kind, column)} is empty: enter the {what}")
    return value


def _positive(value: Any, index: int, kind: str, column: str) -> None:
    values = value if isinstance(value, tuple) else (value,)
    if any(v < 1 for v in values):
        raise LayerSpecError(f"{_where(index, kind, column)} must be at least 1, got {value}")


# ------------------------------------------------------------------------------------------ resolve/build


def _make(kind: str, kwargs: Mapping[str, Any], device: torch.device | str | None) -> nn.Module:
    cls = getattr(nn, kind)
    if kind in ("Conv2d", "ConvTranspose2d", "BatchNorm2d", "Linear"):
        return cls(**kwargs, device=device)
    return cls(**kwargs)


def resolve_stack(
    layers: Sequence[Mapping[str, Any]], input_shape: Sequence[int]
) -> list[tuple[str, dict[str, Any]]]:
    """Turn table rows into ``(layer type, constructor kwargs)`` pairs, inferring blank ``in`` values.

    Blank rows are skipped. Raises :class:`LayerSpecError` for a row that no layer can be built from
    (unknown type, missing or non-positive sizes, groups that do not divide the channels, ...); a layer
    that can be built but does not fit its input is left for :func:`trace_stack` to diagnose.
    """
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise LayerSpecError(
            f"the input shape must be three positive numbers C×H×W, got {tuple(input_shape)}"
        )
    x: torch.Tensor | None = torch.zeros((1, *shape), device="meta")
    channels, features = shape[0], math.prod(shape)
    resolved: list[tuple[str, dict[str, Any]]] = []
    for index, row in enumerate(layers):
        kind = row.get("layer")
        if _blank(kind):
            continue
        kind = str(kind).strip()
        if kind not in USES:
            raise LayerSpecError(
                f"row {index + 1}: unknown layer type {kind!r}; choose one of {', '.join(LAYER_TYPES)}"
            )
        kwargs = _row_kwargs(index, kind, row, x, channels, features)
        try:
            module = _make(kind, kwargs, "meta")
        except (ValueError, TypeError, RuntimeError) as exc:
            raise LayerSpecError(f"row {index + 1} ({kind}): {exc}") from None
        resolved.append((kind, kwargs))
        if kind in ("Conv2d", "ConvTranspose2d"):
            channels = kwargs["out_channels"]
        elif kind == "Linear":
            features = kwargs["out_features"]
        if x is not None:
            try:
                x = module(x)
            except Exception:  # the trace diagnoses it; later blanks fall back to the last known sizes
                x = None
        if x is not None:
            channels = x.shape[1] if x.dim() == 4 else channels
            features = x.shape[-1]
    return resolved


def _row_kwargs(
    index: int, kind: str, row: Mapping[str, Any], x: torch.Tensor | None, channels: int, features: int
) -> dict[str, Any]:
    def get(column: str) -> Any:
        return row.get(column)

    if kind in ("Conv2d", "ConvTranspose2d"):
        in_channels = _int(get("in"), index, kind, "in")
        if in_channels is None:
            in_channels = int(x.shape[1]) if x is not None and x.dim() == 4 else channels
        out_channels = _required(_int(get("out"), index, kind, "out"), index, kind, "out", "out_channels")
        kernel = _required(_size(get("kernel"), index, kind, "kernel"), index, kind, "kernel", "kernel size")
        words = ("same", "valid") if kind == "Conv2d" else ()
        stride = _size(get("stride"), index, kind, "stride")
        padding = _size(get("padding"), index, kind, "padding", words)
        dilation = _size(get("dilation"), index, kind, "dilation")
        groups = _int(get("groups"), index, kind, "groups") or 1
        for column, value in (("in", in_channels), ("out", out_channels), ("groups", groups)):
            _positive(value, index, kind, column)
        if in_channels % groups or out_channels % groups:
            try:
                arith.conv_params(in_channels, out_channels, kernel if kernel else 1, groups)
            except arith.ShapeError as exc:
                raise LayerSpecError(f"{_where(index, kind, 'groups')}: {exc}") from None
        kwargs: dict[str, Any] = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "kernel_size": kernel,
        }
        kwargs.update(
            {
                k: v
                for k, v in (("stride", stride), ("padding", padding), ("dilation", dilation))
                if v is not None
            }
        )
        if kind == "ConvTranspose2d":
            output_padding = _size(get("output_padding"), index, kind, "output_padding")
            if output_padding is not None:
                kwargs["output_padding"] = output_padding
        if groups != 1:
            kwargs["groups"] = groups
        if not _bool(get("bias"), True):
            kwargs["bias"] = False
        if padding == "same" and stride not in (None, 1, (1, 1)):
            raise LayerSpecError(f'{_where(index, kind, "padding")}: "same" padding needs stride 1')
        return kwargs
    if kind in ("MaxPool2d", "AvgPool2d"):
        kernel = _required(_size(get("kernel"), index, kind, "kernel"), index, kind, "kernel", "kernel size")
        kwargs = {"kernel_size": kernel}
        columns = ("stride", "padding", "dilation") if kind == "MaxPool2d" else ("stride", "padding")
        for column in columns:
            value = _size(get(column), index, kind, column)
            if value is not None:
                kwargs[column] = value
        if _bool(get("ceil_mode"), False):
            kwargs["ceil_mode"] = True
        return kwargs
    if kind == "AdaptiveAvgPool2d":
        out = _required(_size(get("out"), index, kind, "out"), index, kind, "out", "output size")
        _positive(out, index, kind, "out")
        return {"output_size": out}
    if kind == "BatchNorm2d":
        num = _int(get("in"), index, kind, "in")
        if num is None:
            num = int(x.shape[1]) if x is not None and x.dim() == 4 else channels
        _positive(num, index, kind, "in")
        return {"num_features": num}
    if kind == "Dropout":
        p = get("p")
        if _blank(p):
            return {}
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise LayerSpecError(f"{_where(index, kind, 'p')}: expected a probability, got {p!r}") from None
        if not 0 <= p <= 1:
            raise LayerSpecError(
                f"{_where(index, kind, 'p')}: a dropout probability is between 0 and 1, got {p}"
            )
        return {"p": p}
    if kind == "Linear":
        in_features = _int(get("in"), index, kind, "in")
        if in_features is None:
            in_features = int(x.shape[-1]) if x is not None else features
        out_features = _required(_int(get("out"), index, kind, "out"), index, kind, "out", "out_features")
        _positive(in_features, index, kind, "in")
        _positive(out_features, index, kind, "out")
        kwargs = {"in_features": in_features, "out_features": out_features}
        if not _bool(get("bias"), True):
            kwargs["bias"] = False
        return kwargs
    return {}  # ReLU, Flatten


def build_stack(
    layers: Sequence[Mapping[str, Any]],
    input_shape: Sequence[int],
    *,
    residual: bool = False,
    device: torch.device | str | None = None,
) -> nn.Module:
    """The stack as an ``nn.Sequential`` (or a :class:`ResidualBlock` around one) on ``device``."""
    body = nn.Sequential(
        *(_make(kind, kwargs, device) for kind, kwargs in resolve_stack(layers, input_shape))
    )
    return ResidualBlock(body) if residual else body


def trace_stack(
    layers: Sequence[Mapping[str, Any]], input_shape: Sequence[int], *, residual: bool = False
) -> ShapeTrace:
    """Shape trace of the stack on ``input_shape`` (C, H, W), computed on the meta device (no memory)."""
    model = build_stack(layers, input_shape, residual=residual, device="meta")
    return trace_shapes(model, tuple(int(v) for v in input_shape))


# ------------------------------------------------------------------------------------------------ export

_POSITIONAL = {
    "Conv2d": ("in_channels", "out_channels"),
    "ConvTranspose2d": ("in_channels", "out_channels"),
    "BatchNorm2d": ("num_features",),
    "Linear": ("in_features", "out_features"),
    "AdaptiveAvgPool2d": ("output_size",),
}


def _layer_code(kind: str, kwargs: Mapping[str, Any]) -> str:
    positional = _POSITIONAL.get(kind, ())
    args = [repr(kwargs[name]) for name in positional]
    args += [f"{name}={value!r}" for name, value in kwargs.items() if name not in positional]
    return f"nn.{kind}({', '.join(args)})"


def stack_code(
    layers: Sequence[Mapping[str, Any]],
    input_shape: Sequence[int],
    *,
    residual: bool = False,
    title: str = "Layer stack",
) -> str:
    """Standalone Python source defining ``model`` (and ``input_shape``) for the stack; running it as a
    script prints the output shape. Inferred ``in`` values are written out explicitly."""
    resolved = resolve_stack(layers, input_shape)
    shape = tuple(int(v) for v in input_shape)
    body = "".join(f"    {_layer_code(kind, kwargs)},\n" for kind, kwargs in resolved)
    lines = [
        f'"""{title} — exported from cnndash."""',
        "",
        "import torch",
        "from torch import nn",
        "",
    ]
    if residual:
        lines += [
            "",
            "class ResidualBlock(nn.Module):",
            '    """relu(body(x) + x): a residual block with an identity shortcut."""',
            "",
            "    def __init__(self, body: nn.Sequential) -> None:",
            "        super().__init__()",
            "        self.body = body",
            "        self.relu = nn.ReLU()",
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            "        return self.relu(self.body(x) + x)",
            "",
            "",
            f"model = ResidualBlock(nn.Sequential(\n{body}))",
        ]
    else:
        lines.append(f"model = nn.Sequential(\n{body})")
    lines += [
        f"input_shape = (1, {shape[0]}, {shape[1]}, {shape[2]})  # (N, C, H, W)",
        "",
        'if __name__ == "__main__":',
        "    with torch.no_grad():",
        "        print(model.eval()(torch.zeros(input_shape)).shape)",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- presets


def _conv(
    cin: int, cout: int, k: Any, s: Any = None, p: Any = None, groups: int | None = None, bias: bool = True
):
    return {
        "layer": "Conv2d",
        "in": cin,
        "out": cout,
        "kernel": str(k),
        "stride": s,
        "padding": p,
        "groups": groups,
        "bias": bias,
    }


def _pool(kind: str, k: int, s: int | None = None) -> dict[str, Any]:
    return {"layer": kind, "kernel": str(k), "stride": None if s is None else str(s)}


def _linear(cin: int, cout: int) -> dict[str, Any]:
    return {"layer": "Linear", "in": cin, "out": cout, "bias": True}


def _simple(kind: str, **values: Any) -> dict[str, Any]:
    return {"layer": kind, **values}


def _vgg16() -> tuple[dict[str, Any], ...]:
    rows: list[dict[str, Any]] = []
    cin = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            rows.append(_pool("MaxPool2d", 2, 2))
        else:
            rows += [_conv(cin, int(v), 3, p="1"), _simple("ReLU")]
            cin = int(v)
    rows += [
        _simple("AdaptiveAvgPool2d", out="7"),
        _simple("Flatten"),
        _linear(512 * 7 * 7, 4096),
        _simple("ReLU"),
        _simple("Dropout", p=0.5),
        _linear(4096, 4096),
        _simple("ReLU"),
        _simple("Dropout", p=0.5),
        _linear(4096, 1000),
    ]
    return tuple(rows)


_RELU = _simple("ReLU")
PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "LeNet-5 (1×28×28)",
            (1, 28, 28),
            (
                _conv(1, 6, 5, p="2"),
                _RELU,
                _pool("AvgPool2d", 2, 2),
                _conv(6, 16, 5),
                _RELU,
                _pool("AvgPool2d", 2, 2),
                _simple("Flatten"),
                _linear(400, 120),
                _RELU,
                _linear(120, 84),
                _RELU,
                _linear(84, 10),
            ),
            note="LeNet-5 for MNIST: padding 2 keeps 28×28 so the classifier sees 16×5×5 = 400 features.",
        ),
        Preset(
            "LeNet-5 (3×32×32)",
            (3, 32, 32),
            (
                _conv(3, 6, 5),
                _RELU,
                _pool("MaxPool2d", 2, 2),
                _conv(6, 16, 5),
                _RELU,
                _pool("MaxPool2d", 2, 2),
                _simple("Flatten"),
                _linear(400, 120),
                _RELU,
                _linear(120, 84),
                _RELU,
                _linear(84, 10),
            ),
            note="LeNet-5 for CIFAR-10 (the PyTorch tutorial's net): 32 → 28 → 14 → 10 → 5.",
        ),
        Preset(
            "AlexNet (3×224×224)",
            (3, 224, 224),
            (
                _conv(3, 64, 11, s="4", p="2"),
                _RELU,
                _pool("MaxPool2d", 3, 2),
                _conv(64, 192, 5, p="2"),
                _RELU,
                _pool("MaxPool2d", 3, 2),
                _conv(192, 384, 3, p="1"),
                _RELU,
                _conv(384, 256, 3, p="1"),
                _RELU,
                _conv(256, 256, 3, p="1"),
                _RELU,
                _pool("MaxPool2d", 3, 2),
                _simple("AdaptiveAvgPool2d", out="6"),
                _simple("Flatten"),
                _simple("Dropout", p=0.5),
                _linear(256 * 6 * 6, 4096),
                _RELU,
                _simple("Dropout", p=0.5),
                _linear(4096, 4096),
                _RELU,
                _linear(4096, 1000),
            ),
            note="torchvision's AlexNet (61.1 M parameters): 224 → 55 → 27 → 13 → 6.",
        ),
        Preset(
            "VGG-16 (3×224×224)",
            (3, 224, 224),
            _vgg16(),
            note="torchvision's VGG-16 (138.4 M parameters): 13 3×3 convolutions, 5 pools, 4096-wide head.",
        ),
        Preset(
            "ResNet basic block (64×56×56)",
            (64, 56, 56),
            (
                _conv(64, 64, 3, p="1", bias=False),
                _simple("BatchNorm2d", **{"in": 64}),
                _RELU,
                _conv(64, 64, 3, p="1", bias=False),
                _simple("BatchNorm2d", **{"in": 64}),
            ),
            residual=True,
            note="ResNet-18's first block: two 3×3 convolutions, output = ReLU(stack(x) + x).",
        ),
        Preset(
            "MobileNet depthwise-separable block (32×112×112)",
            (32, 112, 112),
            (
                _conv(32, 32, 3, p="1", groups=32, bias=False),
                _simple("BatchNorm2d", **{"in": 32}),
                _RELU,
                _conv(32, 64, 1, bias=False),
                _simple("BatchNorm2d", **{"in": 64}),
                _RELU,
            ),
            note="A 3×3 depthwise convolution (groups = channels) then a 1×1 pointwise one: "
            "32·9 + 32·64 weights instead of 32·64·9.",
        ),
    )
}
