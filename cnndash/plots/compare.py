"""Figures for comparing two runs (the Runs tab): the confusion-matrix difference and the per-class change.

Pure functions: a :class:`cnndash.evaluate.compare.RunComparison` (or its parts) in, a Plotly figure out.
Class and run names are drawn as text (:func:`cnndash.text.plotly_text`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cnndash.evaluate.compare import PER_CLASS_METRICS
from cnndash.text import N_, plotly_label, plotly_text, plotly_texts, plotly_ticks

A_COLOUR = "#9AA5B1"  # the reference run: muted
B_COLOUR = "#2E86AB"  # the challenger
DIVERGING = "RdBu"  # low (negative) red, high (positive) blue: blue = more in B, red = fewer
METRIC_NAMES = {"precision": N_("precision"), "recall": N_("recall"), "f1-score": N_("f1-score")}
PER_CLASS_TITLES = {
    "precision": N_("Precision per class"),
    "recall": N_("Recall per class"),
    "f1-score": N_("F1-score per class"),
}


def _cell_text(value: float, fraction: bool) -> str:
    if fraction:
        return "0" if abs(value) < 5e-4 else f"{value:+.0%}"
    return "0" if value == 0 else f"{int(value):+d}"


def confusion_change_figure(
    change: np.ndarray,
    classes: Sequence[str],
    *,
    fraction: bool = False,
    names: tuple[str, str] = ("A", "B"),
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """A diverging heatmap of B − A, rows = true class, columns = predicted (both in the same order);
    ``tr`` translates the title and axes.

    On the diagonal blue means B gets more of that class right; off the diagonal blue means B makes
    more of that mistake. The colour scale is symmetric around 0, so white is "no change".
    """
    change = np.asarray(change, dtype=np.float64)
    k = len(classes)
    if change.shape != (k, k):
        raise ValueError(f"the difference must be {k}×{k} for {k} classes, got shape {change.shape}")
    limit = float(np.abs(change).max()) or 1.0
    labels = plotly_texts(classes)
    text = [[_cell_text(v, fraction) for v in row] for row in change]
    fig = go.Figure(
        go.Heatmap(
            z=change, x=labels, y=labels, zmin=-limit, zmax=limit, zmid=0, colorscale=DIVERGING,
            text=text, texttemplate="%{text}" if k <= 20 else None,
            hovertemplate=tr(N_("true {true}, predicted {predicted}: {value}")).format(
                true="%{y}", predicted="%{x}", value="%{text}"
            ) + "<extra></extra>",
            colorbar=dict(title="B − A", tickformat="+.0%" if fraction else "+d"),
        )
    )  # fmt: skip
    title = (
        N_("Confusion matrix: {b} − {a} (share of each true class)")
        if fraction
        else N_("Confusion matrix: {b} − {a} (images)")
    )
    fig.update_layout(
        title=tr(title).format(b=plotly_text(names[1]), a=plotly_text(names[0])),
        xaxis=dict(title=tr(N_("predicted")), type="category", side="bottom", **plotly_ticks(classes)),
        yaxis=dict(title=tr(N_("true")), type="category", autorange="reversed", **plotly_ticks(classes)),
        height=max(360, 28 * k + 160),
        margin=dict(l=10, r=10, t=50, b=10),
        template="plotly_white",
    )
    return fig


def per_class_change_figure(
    per_class: pd.DataFrame,
    metric: str = "f1-score",
    *,
    names: tuple[str, str] = ("A", "B"),
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """Grouped bars per class: ``metric`` (precision, recall or f1-score) of run A next to run B; ``tr``
    translates the title and axes."""
    if metric not in PER_CLASS_METRICS:
        raise ValueError(f"metric must be one of {', '.join(PER_CLASS_METRICS)}, got {metric!r}")
    classes = plotly_texts(per_class.index)
    fig = go.Figure()
    for side, raw_name, colour in (("a", names[0], A_COLOUR), ("b", names[1], B_COLOUR)):
        name = plotly_label(raw_name, 60)
        values = per_class[f"{metric}_{side}"].tolist()
        fig.add_trace(
            go.Bar(x=classes, y=values, name=name, marker_color=colour,
                   hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}}<extra></extra>")
        )  # fmt: skip
    fig.update_layout(
        barmode="group",
        title=tr(PER_CLASS_TITLES[metric]),
        xaxis=dict(title=tr(N_("class")), type="category", **plotly_ticks(per_class.index)),
        yaxis=dict(title=tr(METRIC_NAMES[metric]), tickformat=".0%", range=[0, 1.02]),
        height=360,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
        template="plotly_white",
    )
    return fig
