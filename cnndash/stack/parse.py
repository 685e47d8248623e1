"""Parse the rows of the layer-stack editor into ``(layer type, constructor kwargs)`` pairs.

A row holds what a person types (see :mod:`cnndash.stack`); :func:`resolve_stack` checks every value,
infers blank ``in`` values from the shape that reaches the layer, and raises :class:`LayerSpecError`
naming the row and column of anything no layer can be built from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch import nn

from cnndash import arith
from cnndash.errors import Phrase, Term, UserError
from cnndash.text import N_

__all__ = [
    "COLUMNS",
    "LAYER_TYPES",
    "USES",
    "IgnoredCells",
    "LayerSpecError",
    "ignored_cells",
    "make_layer",
    "resolve_stack",
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


class LayerSpecError(UserError):
    """A row of a layer stack that cannot be turned into a layer; the message names the row and column."""

    domain = "calculator"  # the conv calculator's messages: ui.user_errors translates them there


_PAIR = re.compile(r"^\s*(\d+)\s*[x×,*]\s*(\d+)\s*$")
_INT = re.compile(r"^\s*-?\d+\s*$")


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, float) and math.isnan(value))
    )


def _where(index: int, kind: str, column: str) -> Phrase:
    return Phrase("row {row} ({kind}), column '{column}'", row=index + 1, kind=kind, column=column)


def _int(value: Any, index: int, kind: str, column: str) -> int | None:
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise LayerSpecError(
            "{where}: expected a whole number, got {value}",
            where=_where(index, kind, column),
            value=repr(value),
        )
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.match(value):
        return int(value)
    raise LayerSpecError(
        "{where}: expected a whole number, got {value}", where=_where(index, kind, column), value=repr(value)
    )


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
        raise LayerSpecError(
            "{where}: expected a number or an h×w pair such as 3x5{words}, got {value}",
            where=_where(index, kind, column),
            words="".join(f' or "{w}"' for w in words),
            value=repr(value),
        ) from None


def _bool(value: Any, default: bool) -> bool:
    if _blank(value):
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y")
    return bool(value)


def _required(value: Any, index: int, kind: str, column: str, what: str) -> Any:  # what: a Term
    if value is None:
        raise LayerSpecError(
            "{where} is empty: enter the {what}", where=_where(index, kind, column), what=what
        )
    return value


def _positive(value: Any, index: int, kind: str, column: str) -> None:
    values = value if isinstance(value, tuple) else (value,)
    if any(v < 1 for v in values):
        raise LayerSpecError(
            "{where} must be at least 1, got {value}", where=_where(index, kind, column), value=value
        )


# Layer types whose constructor takes a device (the others have no parameters or buffers to place).
_TAKES_DEVICE = ("Conv2d", "ConvTranspose2d", "BatchNorm2d", "Linear")


@dataclass(frozen=True)
class IgnoredCells:
    """Cells filled in on one row although its layer takes no such argument (a bias on a MaxPool2d row)."""

    row: int  # 1-based, as the editor numbers rows
    layer: str
    columns: tuple[str, ...]  # in the order of COLUMNS


def _empty_cell(value: Any) -> bool:
    """An editor cell with nothing in it: None, blank text, or any missing value pandas knows (NaN, NA)."""
    return value is None or (isinstance(value, str) and not value.strip()) or bool(pd.isna(value))


def ignored_cells(layers: Sequence[Mapping[str, Any]]) -> list[IgnoredCells]:
    """Every row with cells its layer does not read (see :data:`USES`), so the editor can say they are
    ignored. Rows with a blank or unknown layer type are skipped: :func:`resolve_stack` reports those."""
    found = []
    for number, row in enumerate(layers, start=1):
        uses = USES.get(row.get("layer"))
        if uses is None:
            continue
        extra = tuple(
            column
            for column in COLUMNS
            if column != "layer" and column not in uses and not _empty_cell(row.get(column))
        )
        if extra:
            found.append(IgnoredCells(number, row["layer"], extra))
    return found


def make_layer(kind: str, kwargs: Mapping[str, Any], device: torch.device | str | None) -> nn.Module:
    """``torch.nn.<kind>(**kwargs)`` on ``device``."""
    cls = getattr(nn, kind)
    if kind in _TAKES_DEVICE:
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
            "the input shape must be three positive numbers C×H×W, got {shape}", shape=tuple(input_shape)
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
                "row {row}: unknown layer type {kind}; choose one of {types}",
                row=index + 1,
                kind=repr(kind),
                types=", ".join(LAYER_TYPES),
            )
        kwargs = _KWARGS[kind](index, kind, row, x, channels, features)
        try:
            module = make_layer(kind, kwargs, "meta")
        except (ValueError, TypeError, RuntimeError) as exc:
            raise LayerSpecError("row {row} ({kind}): {exc}", row=index + 1, kind=kind, exc=exc) from None
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


# Every per-kind reader gets the row's index and type (for messages), the row, the tensor reaching the
# layer on the meta device (None once an earlier layer failed) and the last known channel / feature
# counts (the fallback for a blank "in" after a failure).


def _blank_in(x: torch.Tensor | None, channels: int) -> int:
    """The channel count reaching a layer, for a blank ``in``."""
    return int(x.shape[1]) if x is not None and x.dim() == 4 else channels


def _conv_kwargs(index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int):
    in_channels = _int(row.get("in"), index, kind, "in")
    if in_channels is None:
        in_channels = _blank_in(x, channels)
    out_channels = _required(
        _int(row.get("out"), index, kind, "out"), index, kind, "out", Term("out_channels")
    )
    kernel = _required(
        _size(row.get("kernel"), index, kind, "kernel"), index, kind, "kernel", Term(N_("kernel size"))
    )
    words = ("same", "valid") if kind == "Conv2d" else ()
    stride = _size(row.get("stride"), index, kind, "stride")
    padding = _size(row.get("padding"), index, kind, "padding", words)
    dilation = _size(row.get("dilation"), index, kind, "dilation")
    groups = _int(row.get("groups"), index, kind, "groups") or 1
    for column, value in (("in", in_channels), ("out", out_channels), ("groups", groups)):
        _positive(value, index, kind, column)
    if in_channels % groups or out_channels % groups:
        try:
            arith.conv_params(in_channels, out_channels, kernel if kernel else 1, groups)
        except arith.ShapeError as exc:
            raise LayerSpecError(
                "{where}: {problem}", where=_where(index, kind, "groups"), problem=Phrase.of(exc)
            ) from None
    kwargs: dict[str, Any] = {"in_channels": in_channels, "out_channels": out_channels, "kernel_size": kernel}
    optional = [("stride", stride), ("padding", padding), ("dilation", dilation)]
    if kind == "ConvTranspose2d":
        optional.append(("output_padding", _size(row.get("output_padding"), index, kind, "output_padding")))
    kwargs.update({k: v for k, v in optional if v is not None})
    if groups != 1:
        kwargs["groups"] = groups
    if not _bool(row.get("bias"), True):
        kwargs["bias"] = False
    if padding == "same" and stride not in (None, 1, (1, 1)):
        raise LayerSpecError('{where}: "same" padding needs stride 1', where=_where(index, kind, "padding"))
    return kwargs


def _pool_kwargs(index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int):
    kernel = _required(
        _size(row.get("kernel"), index, kind, "kernel"), index, kind, "kernel", Term(N_("kernel size"))
    )
    kwargs: dict[str, Any] = {"kernel_size": kernel}
    columns = ("stride", "padding", "dilation") if kind == "MaxPool2d" else ("stride", "padding")
    for column in columns:
        value = _size(row.get(column), index, kind, column)
        if value is not None:
            kwargs[column] = value
    if _bool(row.get("ceil_mode"), False):
        kwargs["ceil_mode"] = True
    return kwargs


def _adaptive_kwargs(
    index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int
):
    out = _required(_size(row.get("out"), index, kind, "out"), index, kind, "out", Term(N_("output size")))
    _positive(out, index, kind, "out")
    return {"output_size": out}


def _batchnorm_kwargs(
    index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int
):
    num = _int(row.get("in"), index, kind, "in")
    if num is None:
        num = _blank_in(x, channels)
    _positive(num, index, kind, "in")
    return {"num_features": num}


def _dropout_kwargs(
    index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int
):
    p = row.get("p")
    if _blank(p):
        return {}
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise LayerSpecError(
            "{where}: expected a probability, got {value}", where=_where(index, kind, "p"), value=repr(p)
        ) from None
    if not 0 <= p <= 1:
        raise LayerSpecError(
            "{where}: a dropout probability is between 0 and 1, got {value}",
            where=_where(index, kind, "p"),
            value=p,
        )
    return {"p": p}


def _linear_kwargs(index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int):
    in_features = _int(row.get("in"), index, kind, "in")
    if in_features is None:
        in_features = int(x.shape[-1]) if x is not None else features
    out_features = _required(
        _int(row.get("out"), index, kind, "out"), index, kind, "out", Term("out_features")
    )
    _positive(in_features, index, kind, "in")
    _positive(out_features, index, kind, "out")
    kwargs: dict[str, Any] = {"in_features": in_features, "out_features": out_features}
    if not _bool(row.get("bias"), True):
        kwargs["bias"] = False
    return kwargs


def _no_kwargs(index: int, kind: str, row: Mapping, x: torch.Tensor | None, channels: int, features: int):
    return {}


_KWARGS = {
    "Conv2d": _conv_kwargs,
    "ConvTranspose2d": _conv_kwargs,
    "MaxPool2d": _pool_kwargs,
    "AvgPool2d": _pool_kwargs,
    "AdaptiveAvgPool2d": _adaptive_kwargs,
    "BatchNorm2d": _batchnorm_kwargs,
    "ReLU": _no_kwargs,
    "Dropout": _dropout_kwargs,
    "Flatten": _no_kwargs,
    "Linear": _linear_kwargs,
}
