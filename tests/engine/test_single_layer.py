"""One layer named by its kind: output size and receptive field against real torch.nn layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnndash.arith import ShapeError
from cnndash.single_layer import LAYER_KINDS, layer_output_size, layer_receptive_field

SETTINGS = {"kernel_size": (3, 2), "stride": 2, "padding": 1, "dilation": 2}


def _layer(kind: str) -> nn.Module:
    if kind == "Conv2d":
        return nn.Conv2d(1, 1, **SETTINGS)
    if kind == "ConvTranspose2d":
        return nn.ConvTranspose2d(1, 1, **SETTINGS, output_padding=1)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(**SETTINGS, ceil_mode=True)
    return nn.AvgPool2d(SETTINGS["kernel_size"], SETTINGS["stride"], SETTINGS["padding"], ceil_mode=True)


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_output_size_picks_each_kinds_rule(kind):
    expected = tuple(_layer(kind)(torch.zeros(1, 1, 9, 10)).shape[2:])
    assert layer_output_size(kind, (9, 10), **SETTINGS, output_padding=1, ceil_mode=True) == expected


def test_unknown_kind_and_refused_settings_raise_shape_error():
    with pytest.raises(ShapeError, match="unknown layer") as info:
        layer_output_size("Conv3d", (9, 9), 3)
    assert info.value.argument == "kind"
    with pytest.raises(ShapeError) as info:
        layer_output_size("MaxPool2d", (9, 9), 2, padding=2)  # over half the kernel
    assert info.value.argument == "padding"


def _inputs_seen(layer: nn.Module, size: int) -> tuple[int, int]:
    """The widest span of input rows / columns any one output pixel depends on, found with autograd."""
    nn.init.ones_(layer.weight)
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    out = layer(x)
    most = [0, 0]
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            (grad,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
            rows, cols = torch.nonzero(grad[0, 0], as_tuple=True)
            if not len(rows):  # a transposed convolution's gap: no input reaches this pixel
                continue
            most[0] = max(most[0], int(rows.max() - rows.min()) + 1)
            most[1] = max(most[1], int(cols.max() - cols.min()) + 1)
    return most[0], most[1]


@pytest.mark.parametrize(("kernel", "stride", "dilation"), [((3, 3), 1, 1), ((3, 5), 2, 1), ((4, 3), 3, 2)])
def test_receptive_field_equals_the_inputs_one_output_pixel_depends_on(kernel, stride, dilation):
    conv = nn.Conv2d(1, 1, kernel, stride, dilation=dilation, bias=False)
    assert layer_receptive_field("Conv2d", kernel, stride, dilation) == _inputs_seen(conv, 12)
    transposed = nn.ConvTranspose2d(1, 1, kernel, stride, dilation=dilation, bias=False)
    field = layer_receptive_field("ConvTranspose2d", kernel, stride, dilation)
    seen = _inputs_seen(transposed, 6)
    if dilation == 1:
        assert field == seen
    else:  # dilated taps can skip input rows: then ceil(effective kernel / stride) is an upper bound
        assert field[0] >= seen[0] and field[1] >= seen[1]
    assert layer_receptive_field("ConvTranspose2d", 5, 2) == 3  # ints in, an int out


def test_receptive_field_of_pools_is_the_effective_kernel():
    assert layer_receptive_field("MaxPool2d", (2, 3), 2, 2) == (3, 5)
    assert layer_receptive_field("AvgPool2d", 3, 3) == 3
    with pytest.raises(ShapeError):
        layer_receptive_field("ConvTranspose2d", 3, 0)
