"""Figures for the Learn page — pure functions: NumPy arrays in, Plotly figure out.

- :func:`grid_figure` — a small matrix as coloured cells with its numbers, optionally with a highlighted
  rectangle (the window under the kernel, the output cell being computed);
- :func:`loss_figure` and :func:`kernel_figure` — gradient descent on the 1×2 kernel;
- :func:`norm_figure` — the (N, C) slices of a tensor coloured by the statistic that normalises them;
- :func:`running_stats_figure` — BatchNorm's running mean creeping towards the batches' mean.

Titles, axes and legends pass through ``tr`` (the page's translator; ``str``: English) before their numbers
are filled in; :func:`grid_figure` and :func:`norm_figure` take a title the page has already translated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

__all__ = ["grid_figure", "kernel_figure", "loss_figure", "norm_figure", "running_stats_figure"]

CELL_PX = 38  # side of one cell in a grid figure
HIGHLIGHT = "#f28e2b"
MARGIN = {"l": 10, "r": 10, "t": 36, "b": 10}


def _cell_text(values: np.ndarray, decimals: int) -> np.ndarray:
    rounded = np.round(values.astype(np.float64), decimals) + 0.0  # + 0.0 turns −0 into 0
    return np.vectorize(lambda v: f"{v:g}")(rounded) if rounded.size else rounded.astype(str)


def _matrix_axes(fig: go.Figure) -> None:
    """Row 0 on top, one tick per cell, square cells that shrink the plot rather than pad the axes."""
    fig.update_xaxes(
        showgrid=False, zeroline=False, tickmode="linear", dtick=1, side="top", constrain="domain"
    )
    fig.update_yaxes(
        showgrid=False,
        zeroline=False,
        tickmode="linear",
        dtick=1,
        autorange="reversed",
        scaleanchor="x",
        constrain="domain",  # square cells shrink the plot instead of padding the axis with empty rows
    )


def grid_figure(
    values: np.ndarray,
    title: str = "",
    highlight: Sequence[tuple[int, int, int, int]] = (),
    *,
    decimals: int = 2,
    colorscale: str = "Blues",
    mask: np.ndarray | None = None,
    zmid: float | None = None,
) -> go.Figure:
    """``values`` (2-D) as a grid of cells with their numbers. ``highlight``: rectangles ``(row, col,
    height, width)`` outlined in orange. ``mask``: cells where it is False are drawn grey (dropped,
    padding). ``zmid`` centres a diverging colour scale."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"grid_figure draws 2-D arrays, got shape {values.shape}")
    rows, cols = values.shape
    shown = values if mask is None else np.where(mask, values, np.nan)
    finite = shown[np.isfinite(shown)]
    heat = go.Heatmap(
        z=shown,
        text=_cell_text(values, decimals),
        texttemplate="%{text}",
        colorscale=colorscale,
        showscale=False,
        zmid=zmid,
        zmin=None if zmid is not None or not finite.size else float(finite.min()),
        zmax=None if zmid is not None or not finite.size else float(finite.max()) + 1e-9,
        hovertemplate="row %{y}, column %{x}: %{text}<extra></extra>",
        xgap=1,
        ygap=1,
    )
    fig = go.Figure(heat)
    for row, col, height, width in highlight:
        fig.add_shape(
            type="rect",
            x0=col - 0.5,
            x1=col + width - 0.5,
            y0=row - 0.5,
            y1=row + height - 0.5,
            line={"color": HIGHLIGHT, "width": 4},
        )
    _matrix_axes(fig)
    fig.update_layout(
        title={"text": title, "font": {"size": 14}, "y": 0.99, "yanchor": "top"},
        width=max(cols * CELL_PX + 60, 160),
        height=rows * CELL_PX + 90,
        margin={**MARGIN, "t": 60},
        plot_bgcolor="#e9e9e9",
    )
    return fig


def loss_figure(
    losses: np.ndarray, diverged_at: int | None = None, *, tr: Callable[[str], str] = str
) -> go.Figure:
    """The loss before each step, on a log axis; a divergence is marked where the run stopped."""
    steps = np.arange(len(losses))
    fig = go.Figure(go.Scatter(x=steps, y=np.maximum(losses, 1e-12), mode="lines+markers", name=tr("loss")))
    if diverged_at is not None:
        fig.add_vline(x=diverged_at, line={"color": "#d62728", "dash": "dash"})
        fig.add_annotation(
            x=diverged_at, y=1, yref="paper", text=tr("diverged at step {step}").format(step=diverged_at),
            showarrow=False, font={"color": "#d62728"}, xanchor="right",
        )  # fmt: skip
    fig.update_layout(
        title=tr("Loss (sum of squared errors)"),
        xaxis_title=tr("step"),
        yaxis_title=tr("loss"),
        margin=MARGIN,
        height=300,
    )
    fig.update_yaxes(type="log")
    return fig


def kernel_figure(
    kernels: np.ndarray, target: Sequence[float], *, tr: Callable[[str], str] = str
) -> go.Figure:
    """Each kernel weight per step, with the weight it should reach as a dotted line."""
    fig = go.Figure()
    colours = ("#1f77b4", "#ff7f0e")
    for i, goal in enumerate(target):
        fig.add_trace(
            go.Scatter(y=kernels[:, i], mode="lines+markers", name=f"w{i}", line={"color": colours[i]})
        )
        fig.add_hline(y=goal, line={"color": colours[i], "dash": "dot"})
    fig.update_layout(
        title=tr("Kernel weights (dotted: [1, −1])"), xaxis_title=tr("step"), margin=MARGIN, height=300
    )
    return fig


def norm_figure(
    stat_ids: np.ndarray, means: np.ndarray, selected: int, title: str = "", *, tr: Callable[[str], str] = str
) -> go.Figure:
    """One cell per (sample n, channel c) slice of H×W values: the slices normalised together with the
    ``selected`` statistic are orange, the others grey; each cell shows its statistic's mean."""
    n, c = stat_ids.shape
    chosen = (stat_ids == selected).astype(float)
    text = np.vectorize(lambda s: f"μ={means[s]:.2f}")(stat_ids)
    fig = go.Figure(
        go.Heatmap(
            z=chosen,
            x=[f"c{j}" for j in range(c)],
            y=[f"n{i}" for i in range(n)],
            text=text,
            texttemplate="%{text}",
            colorscale=[[0, "#dcdcdc"], [1, HIGHLIGHT]],
            zmin=0,
            zmax=1,
            showscale=False,
            xgap=3,
            ygap=3,
            hovertemplate=tr("sample {sample}, channel {channel}").format(sample="%{y}", channel="%{x}")
            + ": %{text}<extra></extra>",
        )
    )
    fig.update_xaxes(side="top")  # ticks c0, c1, … and n0, n1, … name the axes
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(
        title={"text": title, "y": 0.98, "yanchor": "top"}, height=110 + 56 * n, margin={**MARGIN, "t": 80}
    )
    return fig


def running_stats_figure(
    running_means: np.ndarray, batch_means: np.ndarray, *, tr: Callable[[str], str] = str
) -> go.Figure:
    """Per channel: each batch's mean (dots) and the running mean after it (line), from 0 at step 0."""
    fig = go.Figure()
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
    for c in range(running_means.shape[1]):
        colour = palette[c % len(palette)]
        fig.add_trace(
            go.Scatter(
                y=running_means[:, c], name=tr("running mean c{c}").format(c=c), line={"color": colour}
            )
        )
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(batch_means) + 1), y=batch_means[:, c], mode="markers",
                name=tr("batch mean c{c}").format(c=c), marker={"color": colour, "symbol": "circle-open"},
            )
        )  # fmt: skip
    fig.update_layout(
        title=tr("BatchNorm running mean (train mode)"),
        xaxis_title=tr("batches seen"),
        margin=MARGIN,
        height=320,
    )
    return fig
