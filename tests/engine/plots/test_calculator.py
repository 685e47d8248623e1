"""Calculator figures and formulas: the numbers they show are PyTorch's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnndash.arith import ShapeError, avg_pool_output_size, conv_output_size, pool_output_size
from cnndash.plots.calculator import (
    HOLE,
    INPUT,
    PADDING,
    TAP,
    explicit_padding,
    output_size_latex,
    shape_chart,
    sliding_window_figure,
    transposed_window_figure,
)
from cnndash.stack import PRESETS, trace_stack


@pytest.mark.parametrize(
    ("kind", "size", "k", "s", "p", "d", "ceil"),
    [
        ("Conv2d", 37, 3, 2, 1, 2, False),
        ("Conv2d", 8, 4, 3, 0, 1, False),
        ("MaxPool2d", 5, 2, 2, 0, 1, True),
        ("MaxPool2d", 6, 3, 2, 1, 1, True),  # the last window would start in the padding
        ("AvgPool2d", 7, 3, 2, 1, 1, True),
    ],
)
def test_formula_result_equals_arith(kind, size, k, s, p, d, ceil):
    latex = output_size_latex(kind, "H", size, k, s, p, d, ceil_mode=ceil)
    if kind == "Conv2d":
        expected = conv_output_size(size, k, s, p, d)
    elif kind == "MaxPool2d":
        expected = pool_output_size(size, k, s, p, d, ceil)
    else:
        expected = avg_pool_output_size(size, k, s, p, ceil)
    assert latex.split("=")[-1].split(r"\;")[0].strip() == str(expected)
    assert f"{{{s}}}" in latex and str(size) in latex


def test_formula_marks_invalid_and_same_padding():
    with pytest.raises(ShapeError):
        conv_output_size(2, 5)
    assert r"\text{invalid}" in output_size_latex("Conv2d", "W", 2, 5)
    assert "= 9" in output_size_latex("Conv2d", "H", 9, 4, 1, "same", 2)
    assert output_size_latex("ConvTranspose2d", "H", 4, 4, 2, 1).endswith("= 8")


def test_same_padding_puts_the_odd_pixel_at_the_end():
    assert explicit_padding("same", (4, 3), (1, 2)) == ((1, 2), (2, 2))
    assert explicit_padding(2, (3, 3), (1, 1)) == ((2, 2), (2, 2))


def test_sliding_window_marks_taps_holes_and_padding():
    fig = sliding_window_figure((5, 6), (3, 3), (2, 2), 1, (2, 2), (2, 2), (1, 0))
    grid = np.asarray(fig.data[0].z)
    assert grid.shape == (7, 8)
    assert (grid[0] == PADDING).all() and (grid[:, 7] == PADDING).all()
    assert grid[1, 1] == INPUT and grid[3, 0] == HOLE  # a skipped padding cell inside the window
    taps = np.argwhere(grid == TAP)
    # Output row 1, column 0 with stride 2 and dilation 2: rows 2, 4, 6 × columns 0, 2, 4 of the padded grid.
    assert sorted(map(tuple, taps)) == [(r, c) for r in (2, 4, 6) for c in (0, 2, 4)]
    output = np.asarray(fig.data[1].z)
    assert output.shape == (2, 2) and output[1, 0] == TAP and (output == TAP).sum() == 1


def test_sliding_window_zooms_on_large_inputs():
    fig = sliding_window_figure((224, 224), (3, 3), (1, 1), 1, (1, 1), (224, 224), (200, 10))
    assert max(np.asarray(fig.data[0].z).shape) <= 48
    assert 200 in list(fig.data[0].y)  # the view follows the window


def test_shape_chart_has_a_point_per_layer_plus_input():
    preset = PRESETS["LeNet-5 (3×32×32)"]
    trace = trace_stack(preset.layers, preset.input_shape)
    fig = shape_chart(trace.rows, trace.input_shape)
    bars = fig.data[0]
    assert len(bars.x) == len(trace.rows) + 1
    assert list(bars.y[:2]) == [3, 6]
    heights = fig.data[1].y
    assert heights[0] == 32 and heights[1] == 28 and heights[-1] is None


@pytest.mark.parametrize(
    ("size", "k", "s", "p", "op", "d"),
    [((3, 4), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1)), ((2, 3), (2, 3), (3, 1), (0, 1), (2, 0), (1, 2))],
)
def test_transposed_picture_is_the_convolution_pytorch_computes(size, k, s, p, op, d):
    """The drawn grid (input pixels, inserted zeros, padding) swept with stride 1 by the flipped kernel
    gives exactly nn.ConvTranspose2d's output."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d, bias=False)
    x = torch.rand(1, 1, *size)
    expected = layer(x).detach()
    out_hw = tuple(expected.shape[-2:])
    fig = transposed_window_figure(size, k, s, p, op, d, out_hw, (0, 0))
    grid = np.asarray(fig.data[0].z)  # small enough to be drawn whole
    assert grid.shape == tuple(out_hw[a] + d[a] * (k[a] - 1) for a in range(2))
    # Rebuild the grid's values: input pixels where the picture shows them, zeros elsewhere.
    values = torch.zeros(grid.shape)
    pixels = np.argwhere((grid == INPUT) | (grid == TAP) | (grid == HOLE))
    hover = fig.data[0].text
    for r, c in pixels:
        if hover[r][c].startswith("input"):
            y, x_ = (int(v) for v in hover[r][c][len("input (") : -1].split(","))
            values[r, c] = x[0, 0, y, x_]
    flipped = layer.weight.detach().flip(-1, -2)
    direct = F.conv2d(values[None, None], flipped, dilation=d)
    torch.testing.assert_close(direct, expected)


def test_transposed_picture_refuses_padding_beyond_the_kernel_reach():
    assert transposed_window_figure((4, 4), (3, 3), (2, 2), (3, 3), (0, 0), (1, 1), (5, 5), (0, 0)) is None


def test_a_large_input_is_really_zoomed_and_says_which_part_it_shows():
    """Zoomed = fewer cells drawn larger (a fixed figure height); the title names the rows and columns shown."""
    whole = sliding_window_figure((37, 50), (3, 3), (1, 1), 0, (1, 1), (35, 48), (0, 0))
    assert np.asarray(whole.data[0].z).shape == (37, 50)
    assert "zoomed" not in whole.layout.annotations[0].text
    fig = sliding_window_figure((224, 224), (3, 3), (1, 1), 1, (1, 1), (224, 224), (200, 10))
    z = np.asarray(fig.data[0].z)
    assert z.shape[0] < 48 and z.shape == (z.shape[0], z.shape[0])
    assert fig.layout.height / z.shape[0] > 1.5 * whole.layout.height / 37  # cells 1.5× those of a whole grid
    rows, cols = list(fig.data[0].y), list(fig.data[0].x)
    title = fig.layout.annotations[0].text
    assert f"rows {rows[0]}–{rows[-1]}, columns {cols[0]}–{cols[-1]}" in title and "zoomed" in title
    assert (z == TAP).sum() == 9  # the whole 3×3 window is in the view
