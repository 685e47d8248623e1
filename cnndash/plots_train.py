"""Figure builders for the Training page: live per-batch curves, per-epoch train vs val, run comparison.

Pure functions: data in (lists of dicts or DataFrames), Plotly figure out; nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TRAIN_COLOUR = "#E4572E"
VAL_COLOUR = "#2E86AB"
RAW_COLOUR = "rgba(228, 87, 46, 0.25)"


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard-style): early points are not damped."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, avg = [], 0.0
    for i, value in enumerate(values, start=1):
        avg = weight * avg + (1.0 - weight) * float(value)
        out.append(avg / (1.0 - weight**i))
    return out


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.08, xanchor="right", x=1),
        hovermode="x unified",
        template="plotly_white",
    )
    return fig


def batch_curves_figure(
    batch_points: Sequence[Mapping], *, smoothing: float = 0.9, steps_per_epoch: int | None = None
) -> go.Figure:
    """Per-batch training loss and accuracy: raw (faint) and smoothed, against the batch step."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Training loss (per batch)", "Training accuracy (per batch)")
    )
    steps = [p["step"] for p in batch_points]
    losses = [p["loss"] for p in batch_points]
    accs = [p["acc"] for p in batch_points]
    for col, values, name in ((1, losses, "loss"), (2, accs, "accuracy")):
        fig.add_trace(
            go.Scatter(x=steps, y=values, mode="lines", name=f"{name} (raw)", line=dict(color=RAW_COLOUR, width=1),
                       showlegend=col == 1),
            row=1, col=col,
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(x=steps, y=smooth(values, smoothing), mode="lines", name=f"{name} (smoothed)",
                       line=dict(color=TRAIN_COLOUR, width=2), showlegend=col == 1),
            row=1, col=col,
        )  # fmt: skip
    if steps_per_epoch and steps:
        for boundary in range(steps_per_epoch, int(max(steps)) + 1, steps_per_epoch):
            fig.add_vline(x=boundary + 0.5, line=dict(color="#CCCCCC", dash="dot", width=1))
    fig.update_xaxes(title_text="batch")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    return _layout(fig, 320)


def epoch_curves_figure(metrics: pd.DataFrame | Sequence[Mapping]) -> go.Figure:
    """Per-epoch loss and accuracy, train vs validation (the columns of ``metrics.csv``)."""
    frame = metrics if isinstance(metrics, pd.DataFrame) else pd.DataFrame(list(metrics))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss per epoch", "Accuracy per epoch"))
    if len(frame):
        for col, metric in ((1, "loss"), (2, "acc")):
            for split, colour in (("train", TRAIN_COLOUR), ("val", VAL_COLOUR)):
                fig.add_trace(
                    go.Scatter(x=frame["epoch"], y=frame[f"{split}_{metric}"], mode="lines+markers",
                               name=split, line=dict(color=colour, width=2), showlegend=col == 1),
                    row=1, col=col,
                )  # fmt: skip
    fig.update_xaxes(title_text="epoch", dtick=1 if len(frame) <= 20 else None)
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    return _layout(fig, 320)


METRIC_LABELS = {
    "val_acc": "validation accuracy",
    "val_loss": "validation loss",
    "train_acc": "training accuracy",
    "train_loss": "training loss",
}


def compare_runs_figure(runs: Mapping[str, pd.DataFrame], metric: str = "val_acc") -> go.Figure:
    """One line per run of ``metric`` against the epoch."""
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_LABELS)}, got {metric!r}")
    fig = go.Figure()
    for name, frame in runs.items():
        if len(frame):
            fig.add_trace(go.Scatter(x=frame["epoch"], y=frame[metric], mode="lines+markers", name=name))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text=METRIC_LABELS[metric])
    if metric.endswith("acc"):
        fig.update_yaxes(tickformat=".0%")
    fig.update_layout(title=f"{METRIC_LABELS[metric].capitalize()} by epoch")
    return _layout(fig, 360)


def lr_figure(batch_points: Sequence[Mapping]) -> go.Figure:
    """The learning rate schedule as it was applied, per batch."""
    fig = go.Figure(
        go.Scatter(
            x=[p["step"] for p in batch_points],
            y=[p["lr"] for p in batch_points],
            mode="lines",
            line=dict(color=VAL_COLOUR),
            name="learning rate",
        )
    )
    fig.update_xaxes(title_text="batch")
    fig.update_yaxes(title_text="learning rate", exponentformat="e")
    fig.update_layout(title="Learning rate")
    return _layout(fig, 260)
