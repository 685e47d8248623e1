"""Figures of the data-centric view: the embedding scatter and the distribution of label-issue scores.

Pure functions: data in, Plotly figure out (no Streamlit), testable without a browser.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go

from cnndash.text import N_, plotly_label, plotly_text

SUSPECT_SYMBOL = "x"  # suspicious points are crosses on top of the class-coloured dots


def embedding_figure(points: pd.DataFrame, *, title: str = "", tr: Callable[[str], str] = str) -> go.Figure:
    """Scatter of ``points`` (columns ``x``, ``y``, ``given``, ``path``, ``score``, ``suspect``): one trace
    per given class, suspicious points (``suspect``) drawn as black-edged crosses in a trace of their own.
    ``customdata`` holds each point's path as it is, so a selection names the images; what is drawn (legend,
    hover) is the paths and class names as text (:func:`cnndash.text.plotly_text`); ``tr`` translates the
    legend's words."""
    fig = go.Figure()
    for cls, group in points[~points["suspect"]].groupby("given", sort=True):
        fig.add_trace(_trace(group, plotly_label(cls), "circle", 7))  # the legend: cut, the hover: whole
    suspects = points[points["suspect"]]
    if len(suspects):
        trace = _trace(suspects, tr(N_("suspicious label")), SUSPECT_SYMBOL, 11)
        trace.marker.line = {"width": 1.5, "color": "black"}
        trace.marker.color = "crimson"
        fig.add_trace(trace)
    fig.update_layout(
        title=title or None, dragmode="lasso", legend_title_text=tr(N_("given label")), height=520,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
    )  # fmt: skip
    fig.update_xaxes(showticklabels=False, title=None)
    fig.update_yaxes(showticklabels=False, title=None)
    return fig


def _trace(group: pd.DataFrame, name: str, symbol: str, size: int) -> go.Scatter:
    return go.Scatter(
        x=group["x"],
        y=group["y"],
        mode="markers",
        name=name,
        marker={"symbol": symbol, "size": size, "opacity": 0.85},
        customdata=group[["path", "given", "score"]].to_numpy(),
        # The hover is built here, escaped: values put into a hovertemplate are read as Plotly's HTML.
        text=[
            f"{plotly_text(path)}<br>given: {plotly_text(given)}<br>score: {score:.2f}"
            for path, given, score in zip(group["path"], group["given"], group["score"], strict=True)
        ],
        hovertemplate="%{text}<extra></extra>",
    )


def score_histogram(scores: pd.Series, threshold: float, *, tr: Callable[[str], str] = str) -> go.Figure:
    """Histogram of label-issue scores with the acceptance threshold as a vertical line; ``tr`` translates
    the axes and the line's label."""
    fig = go.Figure(go.Histogram(x=scores, nbinsx=40, marker_color="steelblue"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="crimson", annotation_text=tr(N_("threshold")))
    fig.update_layout(
        height=220,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis_title=tr(N_("score")),
        yaxis_title=tr(N_("images")),
    )

    return fig
