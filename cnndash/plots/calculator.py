"""Figures and formulas for the conv calculator — pure functions: numbers in, Plotly figure or LaTeX out.

- :func:`output_size_latex` — the output-size formula of one axis with the user's numbers substituted.
- :func:`sliding_window_figure` — the padded input grid with the dilated kernel footprint of one output
  position, next to the output grid with that cell highlighted; :func:`transposed_window_figure` draws a
  transposed convolution as the stride-1 convolution over the zero-upsampled input that it equals.
- :func:`shape_chart` — channels and spatial size after every layer of a traced stack.

Every builder takes ``tr``, the page's translator (``str`` by default: English), through which each
title, axis, legend and hover text passes before its numbers are filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnndash.trace import TraceRow

__all__ = [
    "explicit_padding",
    "output_size_latex",
    "shape_chart",
    "sliding_window_figure",
    "transposed_window_figure",
]

INPUT, PADDING, TAP, HOLE, ZERO = 0, 1, 2, 3, 4
# input, padding, kernel tap, dilation hole, zero inserted by a transposed convolution's stride
COLOURS = ("#d6e6f5", "#e9e9e9", "#f28e2b", "#fde3c8", "#ffffff")
SELECTED_OUTPUT = TAP
WHOLE_GRID = 64  # a grid up to this many cells per axis is drawn whole; a larger one is zoomed on the window
# A zoomed view: the window plus ZOOM_MARGIN cells on each side, at least ZOOM_CELLS, at most MAX_GRID per
# axis, drawn ZOOM_HEIGHT_PX high (about 20 px cells instead of 12), so the picture really is magnified.
MAX_GRID, ZOOM_CELLS, ZOOM_MARGIN, ZOOM_HEIGHT_PX = 48, 24, 6, 560


def _view(length: int, centre: int, size: int) -> np.ndarray:
    """Indices of at most ``size`` consecutive cells of ``range(length)`` around ``centre``."""
    size = min(length, size)
    start = min(max(centre - size // 2, 0), length - size)
    return np.arange(start, start + size)


def _frac_parts(kind: str, n: int, k: int, s: int, p: int, d: int) -> tuple[str, str, int]:
    """Symbolic and numeric numerator of the conv/pool formula, and its value."""
    if kind == "AvgPool2d":
        symbolic = r"{A}_{\text{in}} + 2p - k"
        numeric = rf"{n} + 2\cdot {p} - {k}"
        value = n + 2 * p - k
    else:
        symbolic = r"{A}_{\text{in}} + 2p - d\,(k-1) - 1"
        numeric = rf"{n} + 2\cdot {p} - {d}\cdot({k}-1) - 1"
        value = n + 2 * p - d * (k - 1) - 1
    return symbolic, numeric, value


def output_size_latex(
    kind: str,
    axis: str,
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    output_padding: int = 0,
    ceil_mode: bool = False,
    *,
    tr: Callable[[str], str] = str,
) -> str:
    """LaTeX for one axis (``axis`` is ``"H"`` or ``"W"``) of ``kind`` (Conv2d, ConvTranspose2d,
    MaxPool2d, AvgPool2d): the formula, the same with numbers, and the result. A result below 1 is shown
    as computed, marked as invalid."""
    n, k, s, d, op = size, kernel_size, stride, dilation, output_padding
    same, split, valid, invalid = tr("same: padding"), tr("split"), tr("valid:"), tr("invalid")
    overhang = tr("the last window would start in the right padding")
    out = rf"{axis}_{{\text{{out}}}}"
    if kind == "Conv2d" and padding == "same":
        total = d * (k - 1)
        return (
            rf"{out} = {axis}_{{\text{{in}}}} = {n} \qquad (\text{{{same} }} d\,(k-1) = {total}"
            rf"\text{{ {split} }} {total // 2} + {total - total // 2})"
        )
    p = 0 if padding == "valid" else int(padding)
    if kind == "ConvTranspose2d":
        value = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        text = (
            rf"{out} = ({axis}_{{\text{{in}}}} - 1)\,s - 2p + d\,(k-1) + p_{{\text{{out}}}} + 1"
            rf" = ({n}-1)\cdot {s} - 2\cdot {p} + {d}\cdot({k}-1) + {op} + 1 = {value}"
        )
        return text + (rf" \;<\; 1 \;(\text{{{invalid}}})" if value < 1 else "")
    symbolic, numeric, numerator = _frac_parts(kind, n, k, s, p, d)
    symbolic = symbolic.replace("{A}", axis)
    ceil = ceil_mode and kind in ("MaxPool2d", "AvgPool2d")
    left, right = (r"\left\lceil", r"\right\rceil") if ceil else (r"\left\lfloor", r"\right\rfloor")
    value = (-(-numerator // s) if ceil else numerator // s) + 1
    text = (
        rf"{out} = {left} \frac{{{symbolic}}}{{s}} {right} + 1"
        rf" = {left} \frac{{{numeric}}}{{{s}}} {right} + 1 = {value}"
    )
    if ceil and (value - 1) * s >= n + p:
        value -= 1
        text += rf" - 1 = {value} \;(\text{{{overhang}}})"
    if kind == "Conv2d" and padding == "valid":
        text += rf" \qquad (\text{{{valid} }} p = 0)"
    return text + (rf" \;<\; 1 \;(\text{{{invalid}}})" if value < 1 else "")


def explicit_padding(padding: int | str | Sequence[int], kernel_size: Sequence[int], dilation: Sequence[int]):
    """``((top, bottom), (left, right))`` as PyTorch pads: ``"same"`` puts the odd pixel at the end."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        totals = [dilation[a] * (kernel_size[a] - 1) for a in range(2)]
        return tuple((t // 2, t - t // 2) for t in totals)
    pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
    return ((pad[0], pad[0]), (pad[1], pad[1]))


def sliding_window_figure(
    input_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: int | str | Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
    position: Sequence[int],
    *,
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """Padded input grid with the window of output cell ``position`` = (row, col), and the output grid.

    Kernel taps are orange, the cells a dilated kernel skips pale orange, padding grey. With
    ``ceil_mode`` a window may overhang the padded input; the grid grows to show it.
    """
    (top, bottom), (left, right) = explicit_padding(padding, kernel_size, dilation)
    h, w = input_size
    oh, ow = output_size
    extent = [dilation[a] * (kernel_size[a] - 1) + 1 for a in range(2)]
    rows = max(top + h + bottom, (oh - 1) * stride[0] + extent[0])
    cols = max(left + w + right, (ow - 1) * stride[1] + extent[1])

    def codes(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        inside = (rr >= top) & (rr < top + h) & (cc >= left) & (cc < left + w)
        return np.where(inside, INPUT, PADDING).astype(np.int8)

    def describe(r: int, c: int) -> str:
        if top <= r < top + h and left <= c < left + w:
            return tr("input ({row}, {col})").format(row=r - top, col=c - left)
        return tr("padding")

    title = tr("padded input {rows}×{cols} (input {h}×{w})").format(rows=rows, cols=cols, h=h, w=w)
    return _window_figure(
        (rows, cols), codes, describe, stride, extent, dilation, output_size, position, title, tr
    )


def transposed_window_figure(
    input_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
    position: Sequence[int],
    *,
    tr: Callable[[str], str] = str,
) -> go.Figure | None:
    """ConvTranspose2d drawn as the direct convolution it equals: the input with ``stride − 1`` zeros
    inserted between pixels, padded by ``dilation·(kernel − 1) − padding`` (plus ``output_padding`` at the
    bottom/right), swept with stride 1 by the (flipped) dilated kernel. Returns None when the padding
    exceeds ``dilation·(kernel − 1)`` (the equivalent convolution would crop instead of pad)."""
    h, w = input_size
    reach = [dilation[a] * (kernel_size[a] - 1) for a in range(2)]
    low = [reach[a] - padding[a] for a in range(2)]
    if min(low) < 0:
        return None
    spread = [(input_size[a] - 1) * stride[a] + 1 for a in range(2)]
    rows, cols = (low[a] + spread[a] + low[a] + output_padding[a] for a in range(2))

    def codes(rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        grid = np.full(rr.shape, PADDING, dtype=np.int8)
        inside = (rr >= low[0]) & (rr < low[0] + spread[0]) & (cc >= low[1]) & (cc < low[1] + spread[1])
        grid[inside] = ZERO
        on_pixel = inside & ((rr - low[0]) % stride[0] == 0) & ((cc - low[1]) % stride[1] == 0)
        grid[on_pixel] = INPUT
        return grid

    def describe(r: int, c: int) -> str:
        y, x = r - low[0], c - low[1]
        if not (0 <= y < spread[0] and 0 <= x < spread[1]):
            return tr("padding")
        if y % stride[0] or x % stride[1]:
            return tr("inserted zero")
        return tr("input ({row}, {col})").format(row=y // stride[0], col=x // stride[1])

    extent = [reach[a] + 1 for a in range(2)]
    title = tr("input {h}×{w} with zeros inserted and padding: {rows}×{cols}").format(
        h=h, w=w, rows=rows, cols=cols
    )
    return _window_figure(
        (rows, cols), codes, describe, (1, 1), extent, dilation, output_size, position, title, tr
    )


def _window_figure(
    grid_size: Sequence[int],
    codes: Callable[[np.ndarray, np.ndarray], np.ndarray],
    describe: Callable[[int, int], str],
    stride: Sequence[int],
    extent: Sequence[int],
    dilation: Sequence[int],
    output_size: Sequence[int],
    position: Sequence[int],
    title: str,
    tr: Callable[[str], str],
) -> go.Figure:  # long: one figure's geometry (zoom, window, output cell) kept together
    rows, cols = grid_size
    oh, ow = output_size
    row, col = min(max(position[0], 0), oh - 1), min(max(position[1], 0), ow - 1)
    # A grid over WHOLE_GRID cells is zoomed: a view of about ZOOM_CELLS centred on the window, drawn larger.
    r0, c0 = row * stride[0], col * stride[1]
    zoomed = max(rows, cols) > WHOLE_GRID
    span = min(MAX_GRID, max(ZOOM_CELLS, max(extent) + 2 * ZOOM_MARGIN)) if zoomed else WHOLE_GRID
    view_r = _view(rows, r0 + extent[0] // 2, span)
    view_c = _view(cols, c0 + extent[1] // 2, span)
    rr, cc = np.meshgrid(view_r, view_c, indexing="ij")
    grid = codes(rr, cc)
    inside = (rr >= r0) & (rr < r0 + extent[0]) & (cc >= c0) & (cc < c0 + extent[1])
    tap = inside & ((rr - r0) % dilation[0] == 0) & ((cc - c0) % dilation[1] == 0)
    grid[inside] = HOLE
    grid[tap] = TAP
    hover = [[describe(int(r), int(c)) for c in view_c] for r in view_r]
    out_r, out_c = _view(oh, row, span), _view(ow, col, span)
    out_grid = np.full((len(out_r), len(out_c)), INPUT, dtype=np.int8)
    out_grid[row - out_r[0], col - out_c[0]] = SELECTED_OUTPUT
    out_cell = tr("output ({row}, {col})")
    out_hover = [[out_cell.format(row=r, col=c) for c in out_c] for r in out_r]
    if zoomed:
        zoom = tr("zoomed: rows {first_row}–{last_row}, columns {first_col}–{last_col}")
        title += "<br>" + zoom.format(
            first_row=view_r[0], last_row=view_r[-1], first_col=view_c[0], last_col=view_c[-1]
        )
    cropped_out = len(out_r) < oh or len(out_c) < ow
    titles = (
        title,
        tr("output {oh}×{ow} — cell ({row}, {col})").format(oh=oh, ow=ow, row=row, col=col)
        + ("<br>" + tr("(part shown)") if cropped_out else ""),
    )
    views = ((grid, hover, view_r, view_c), (out_grid, out_hover, out_r, out_c))
    return _grids_figure(views, titles, height=ZOOM_HEIGHT_PX if zoomed else None)


# Cells are drawn with 1 px gaps up to this many per axis; beyond, gaps would hide the colours.
GAP_MAX_CELLS = 64
# Figure height: about 12 px per input row plus 80 px of titles and margins, within [260, 640] px.
ROW_PX, EXTRA_PX, MIN_HEIGHT_PX, MAX_HEIGHT_PX = 12, 80, 260, 640


def _grids_figure(views: Sequence[tuple], titles: tuple[str, str], height: int | None = None) -> go.Figure:
    """The input grid (left) and the output grid (right) side by side, as category-coloured heatmaps;
    each view is ``(codes, hover texts, row indices, column indices)``; ``height`` in px, or sized to
    the rows."""
    (_, _, view_r, view_c), (_, _, _, out_c) = views
    view_rows, view_cols, out_cols = len(view_r), len(view_c), len(out_c)
    scale = []
    for value, colour in enumerate(COLOURS):
        scale += [[value / len(COLOURS), colour], [(value + 1) / len(COLOURS), colour]]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[view_cols / (view_cols + out_cols), out_cols / (view_cols + out_cols)],
        horizontal_spacing=0.06,
        subplot_titles=titles,
    )
    gap = 1 if max(view_rows, view_cols) <= GAP_MAX_CELLS else 0
    for index, (z, text, ys, xs) in enumerate(views, start=1):
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=xs,
                y=ys,
                text=text,
                hoverinfo="text",
                colorscale=scale,
                zmin=-0.5,  # one colour band per integer code
                zmax=len(COLOURS) - 0.5,
                showscale=False,
                xgap=gap,
                ygap=gap,
            ),
            row=1,
            col=index,
        )
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=index)
        fig.update_xaxes(
            showticklabels=False, scaleanchor=f"y{'' if index == 1 else index}", row=1, col=index
        )
    fig.update_layout(
        height=height or min(MAX_HEIGHT_PX, max(MIN_HEIGHT_PX, ROW_PX * view_rows + EXTRA_PX)),
        margin=dict(l=10, r=10, t=60 if "<br>" in titles[0] else 40, b=10),  # two-line titles
        plot_bgcolor="white",
    )
    return fig


def shape_chart(
    rows: Sequence[TraceRow], input_shape: Sequence[int], *, tr: Callable[[str], str] = str
) -> go.Figure:
    """Channels (bars) and spatial height/width (lines) after each layer, starting with the input."""
    labels = [tr("input")] + [f"{i} {row.kind}" for i, row in enumerate(rows)]
    shapes = [tuple(input_shape)] + [row.output_shape for row in rows]
    channels = [shape[1] if len(shape) >= 2 else None for shape in shapes]
    heights = [shape[2] if len(shape) == 4 else None for shape in shapes]
    widths = [shape[3] if len(shape) == 4 else None for shape in shapes]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=labels, y=channels, name=tr("channels / features"), marker_color="#9ecae1", opacity=0.8),
        secondary_y=False,
    )
    fig.add_trace(go.Scatter(x=labels, y=heights, name=tr("height"), mode="lines+markers"), secondary_y=True)
    if widths != heights:
        fig.add_trace(
            go.Scatter(x=labels, y=widths, name=tr("width"), mode="lines+markers"), secondary_y=True
        )
    fig.update_yaxes(title_text=tr("channels / features"), type="log", dtick=1, secondary_y=False)
    fig.update_yaxes(
        title_text=tr("spatial size (px)"),
        rangemode="tozero",
        tickmode="auto",
        showgrid=False,
        secondary_y=True,
    )
    fig.update_layout(
        height=360, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.12), bargap=0.3
    )
    return fig
