"""Figure builders for the Training page: live per-batch curves, per-epoch train vs val, run comparison.

Pure functions: data in (lists of dicts or DataFrames), Plotly figure out; nothing here reads files.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from cnndash.text import N_, plotly_label

TRAIN_COLOUR = "#E4572E"
VAL_COLOUR = "#2E86AB"
RAW_COLOUR = "rgba(228, 87, 46, 0.25)"
RUN_COLOURS = ("#2E86AB", "#E4572E", "#76B041", "#7E52A0", "#F2A541", "#17BEBB", "#8C564B", "#D62728")


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard-style): early points are not damped."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, avg = [], 0.0
    for i, value in enumerate(values, start=1):
        avg = weight * avg + (1.0 - weight) * float(value)
        out.append(avg / (1.0 - weight**i))
    return out


# Epoch axes tick whole epochs only, at most about this many ticks (every 1, 2, 5, 10, 20, 50… epochs).
EPOCH_TICKS = 10
_EPOCH_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def epoch_axis(last_epoch: int) -> dict:
    """Axis settings that put ticks on whole epochs only (never "1.5"), every 1, 2, 5, 10, … epochs so that
    an axis up to ``last_epoch`` has at most about :data:`EPOCH_TICKS` of them."""
    step = next((s for s in _EPOCH_STEPS if max(last_epoch, 1) / s <= EPOCH_TICKS), _EPOCH_STEPS[-1])
    return {"tickmode": "linear", "tick0": 0, "dtick": step, "tickformat": "d"}


MAX_POINTS = 600  # per trace in the live chart: enough to see the shape, cheap to redraw every second
# A loss that rises above this many times where it started has spiked (a run starts near the chance loss and
# a healthy one stays below it): a linear axis would flatten everything else into a line at zero.
SPIKE_RATIO = 3.0
# A loss whose values span more than this many decades (largest / smallest) is drawn on a log axis too: a
# validation loss of 900 in epoch 1 and 0.3 by epoch 5 is a flat line on a linear axis however it started.
SPAN_DECADES = 1.5
SPAN_RATIO = 10**SPAN_DECADES


def loss_spiked(values: Sequence[float], reference: float | None = None) -> bool:
    """True when a loss series rose above :data:`SPIKE_RATIO` × ``reference`` (default: its first value, where
    the run started) or spans more than :data:`SPAN_DECADES` decades: draw it on a log axis."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not finite or (reference is None and len(finite) < 2):
        return False
    if max(finite) > SPAN_RATIO * min(finite):
        return True
    return max(finite) > SPIKE_RATIO * (finite[0] if reference is None else reference)


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.08, xanchor="right", x=1),
        hovermode="x unified",
        template="plotly_white",
    )
    return fig


def _two_panels(
    titles: tuple[str, str],
    x_title: str,
    traces: list[dict],
    shapes: list[dict],
    height: int,
    log_loss: bool = False,
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """Two side-by-side panels (loss left, accuracy right) built in one go.

    ``make_subplots`` and per-shape ``add_vline`` calls validate the figure again on every call, which
    costs most of a second for a live chart redrawn every second; one constructor call does not.
    """
    annotations = [
        dict(text=title, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
             showarrow=False, font=dict(size=14))
        for title, x in zip(titles, (0.225, 0.775), strict=True)
    ]  # fmt: skip
    layout = dict(
        xaxis=dict(domain=[0.0, 0.45], title=dict(text=x_title), anchor="y"),
        xaxis2=dict(domain=[0.55, 1.0], title=dict(text=x_title), anchor="y2"),
        yaxis=dict(type="log", title=dict(text=tr(N_("log scale"))), anchor="x")
        if log_loss  # a spike (see loss_spiked) and the rest of the run both stay readable
        else dict(rangemode="tozero", anchor="x"),
        yaxis2=dict(range=[0, 1.02], tickformat=".0%", anchor="x2"),
        annotations=annotations,
        shapes=shapes,
    )
    return _layout(go.Figure(data=traces, layout=layout), height)


def _thin(points: Sequence, limit: int = MAX_POINTS) -> Sequence:
    step = max(1, -(-len(points) // limit))
    return points[::step] if step > 1 else points


def batch_curves_figure(
    batch_points: Sequence[Mapping],
    *,
    smoothing: float = 0.9,
    steps_per_epoch: int | None = None,
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """Per-batch training loss and accuracy: raw (faint) and smoothed, against the batch step.

    Smoothing uses every point; long runs are thinned to ``MAX_POINTS`` per trace for drawing. ``tr``
    translates the titles and legend (a page passes its translator; English by default).
    """
    steps = [p["step"] for p in batch_points]
    traces = []
    for axis, key, raw_name, smooth_name in (
        ("", "loss", N_("loss (raw)"), N_("loss (smoothed)")),
        ("2", "acc", N_("accuracy (raw)"), N_("accuracy (smoothed)")),
    ):
        values = [p[key] for p in batch_points]
        smoothed = smooth(values, smoothing)
        xs, raw, smo = _thin(steps), _thin(values), _thin(smoothed)
        traces.append(
            dict(type="scatter", x=list(xs), y=list(raw), mode="lines", name=tr(raw_name),
                 line=dict(color=RAW_COLOUR, width=1), xaxis=f"x{axis}", yaxis=f"y{axis}", showlegend=axis == "")
        )  # fmt: skip
        traces.append(
            dict(type="scatter", x=list(xs), y=list(smo), mode="lines", name=tr(smooth_name),
                 line=dict(color=TRAIN_COLOUR, width=2), xaxis=f"x{axis}", yaxis=f"y{axis}", showlegend=axis == "")
        )  # fmt: skip
    shapes = []
    if steps_per_epoch and steps:
        for boundary in range(steps_per_epoch, int(max(steps)) + 1, steps_per_epoch):
            for axis in ("", "2"):
                shapes.append(
                    dict(type="line", x0=boundary + 0.5, x1=boundary + 0.5, y0=0, y1=1, xref=f"x{axis}",
                         yref=f"y{axis} domain", line=dict(color="#CCCCCC", dash="dot", width=1))
                )  # fmt: skip
    spiked = loss_spiked([p["loss"] for p in batch_points])
    return _two_panels(
        (tr(N_("Training loss (per batch)")), tr(N_("Training accuracy (per batch)"))),
        tr(N_("batch")),
        traces,
        shapes,
        320,
        spiked,
        tr,
    )


def epoch_curves_figure(
    metrics: pd.DataFrame | Sequence[Mapping], *, tr: Callable[[str], str] = str
) -> go.Figure:
    """Per-epoch loss and accuracy, train vs validation (the columns of ``metrics.csv``); ``tr`` translates
    the titles and legend."""
    frame = metrics if isinstance(metrics, pd.DataFrame) else pd.DataFrame(list(metrics))
    traces = []
    if len(frame):
        for axis, metric in (("", "loss"), ("2", "acc")):
            for split, colour in (("train", TRAIN_COLOUR), ("val", VAL_COLOUR)):
                traces.append(
                    dict(type="scatter", x=frame["epoch"].tolist(), y=frame[f"{split}_{metric}"].tolist(),
                         mode="lines+markers", name=tr(SPLIT_NAMES[split]), line=dict(color=colour, width=2),
                         xaxis=f"x{axis}", yaxis=f"y{axis}", showlegend=axis == "")
                )  # fmt: skip
    # Both against where training started: a first validation loss far above it is a spike too.
    start = float(frame["train_loss"].iloc[0]) if len(frame) else None
    spiked = start is not None and loss_spiked([*frame["train_loss"], *frame["val_loss"]], start)
    fig = _two_panels(
        (tr(N_("Loss per epoch")), tr(N_("Accuracy per epoch"))), tr(N_("epoch")), traces, [], 320, spiked, tr
    )
    fig.update_xaxes(**epoch_axis(int(frame["epoch"].max()) if len(frame) else 1))
    return fig


SPLIT_NAMES = {"train": N_("train"), "val": N_("val")}
METRIC_LABELS = {
    "val_acc": N_("validation accuracy"),
    "val_loss": N_("validation loss"),
    "train_acc": N_("training accuracy"),
    "train_loss": N_("training loss"),
}


X_AXES = {"epoch": N_("epoch"), "time": N_("wall-clock time (s)")}
# The titles of compare_runs_figure, by metric and x axis.
COMPARE_TITLES = {
    ("val_acc", "epoch"): N_("Validation accuracy by epoch"),
    ("val_loss", "epoch"): N_("Validation loss by epoch"),
    ("train_acc", "epoch"): N_("Training accuracy by epoch"),
    ("train_loss", "epoch"): N_("Training loss by epoch"),
    ("val_acc", "time"): N_("Validation accuracy over wall-clock time"),
    ("val_loss", "time"): N_("Validation loss over wall-clock time"),
    ("train_acc", "time"): N_("Training accuracy over wall-clock time"),
    ("train_loss", "time"): N_("Training loss over wall-clock time"),
}


def run_time_axis(frame: pd.DataFrame) -> pd.Series | None:
    """Seconds since the run's start at the end of each epoch: the ``clock`` column when every epoch has one
    (wall time from the per-batch log, see ``Run.metrics_with_clock``), else the cumulative sum of
    ``metrics.csv``'s per-epoch ``seconds`` (training time only: runs from before the per-batch log).
    None for a run with neither."""
    if "clock" in frame and len(frame) and not frame["clock"].isna().any():
        return frame["clock"].astype(float)
    if "seconds" not in frame or frame["seconds"].isna().any():
        return None
    return frame["seconds"].astype(float).cumsum()


def _start(frame: pd.DataFrame) -> float | None:
    """Where a run's loss started: its first training loss (None without one)."""
    if "train_loss" not in frame or not len(frame):
        return None
    first = float(frame["train_loss"].iloc[0])
    return first if math.isfinite(first) and first > 0 else None


def compare_runs_figure(
    runs: Mapping[str, pd.DataFrame],
    metric: str = "val_acc",
    *,
    smoothing: float = 0.0,
    x: str = "epoch",
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """One line per run of ``metric`` against the epoch or the wall-clock time (``x="time"``).

    ``smoothing`` > 0 draws TensorBoard's debiased exponential moving average (:func:`smooth`) as the
    line, with the raw values faint behind it; 0 draws the raw values only. Runs without a time axis are
    left out of a time plot (listed in the figure's ``meta["no_time"]``). Run names (a ``train --out``
    folder can be named anything) are drawn as text. ``tr`` translates the titles.
    """
    if metric not in METRIC_LABELS:
        raise ValueError(f"metric must be one of {', '.join(METRIC_LABELS)}, got {metric!r}")
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    fig, skipped = go.Figure(), []
    for i, (name, frame) in enumerate(runs.items()):
        if not len(frame):
            continue
        xs = frame["epoch"] if x == "epoch" else run_time_axis(frame)
        if xs is None:
            skipped.append(name)
            continue
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        values = frame[metric].astype(float).tolist()
        label, group = plotly_label(name, 60), f"run-{i}"
        if smoothing > 0:
            fig.add_trace(go.Scatter(x=list(xs), y=values, mode="lines", name=tr(N_("{run} (raw)")).format(run=label), legendgroup=group,
                                     showlegend=False, opacity=0.3, line=dict(color=colour, width=1)))  # fmt: skip
            values = smooth(values, smoothing)
        fig.add_trace(go.Scatter(x=list(xs), y=values, mode="lines+markers", name=label, legendgroup=group,
                                 line=dict(color=colour)))  # fmt: skip
    fig.update_xaxes(title_text=tr(X_AXES[x]))
    if x == "epoch":
        last = max((int(frame["epoch"].max()) for frame in runs.values() if len(frame)), default=1)
        fig.update_xaxes(**epoch_axis(last))
    fig.update_yaxes(title_text=tr(METRIC_LABELS[metric]))
    if metric.endswith("acc"):
        fig.update_yaxes(tickformat=".0%")
    elif any(loss_spiked(frame[metric].tolist(), _start(frame)) for frame in runs.values() if len(frame)):
        # One run's spike would flatten every other run's curve: all of them on a log axis.
        fig.update_yaxes(
            type="log", title_text=tr(N_("{metric} (log scale)")).format(metric=tr(METRIC_LABELS[metric]))
        )
    fig.update_layout(title=tr(COMPARE_TITLES[metric, x]), meta={"no_time": skipped})
    return _layout(fig, 360)


def lr_finder_figure(
    lrs: Sequence[float],
    losses: Sequence[float],
    smoothed: Sequence[float],
    suggestion: float,
    *,
    reliable: bool,
    candidates: Mapping[str, float] | None = None,
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """The learning-rate range test: loss (raw faint, smoothed) against the learning rate on a log axis, each
    candidate reading as a dotted line and the learning rate offered as a marker on the smoothed curve (a
    star when a trial run confirmed it, an open circle when the current one was kept)."""
    finite = [(lr, loss) for lr, loss in zip(lrs, smoothed, strict=False) if math.isfinite(loss)]
    traces = [
        go.Scatter(x=list(lrs), y=list(losses), mode="lines", name=tr(N_("loss (raw)")), line=dict(color=RAW_COLOUR, width=1)),
        go.Scatter(x=[p[0] for p in finite], y=[p[1] for p in finite], mode="lines", name=tr(N_("loss (smoothed)")),
                   line=dict(color=TRAIN_COLOUR, width=2)),
    ]  # fmt: skip
    if (
        finite
    ):  # the offered learning rate on the curve (nearest recorded point: a kept lr may be off the test)
        near = min(finite, key=lambda p: abs(math.log(p[0]) - math.log(suggestion)))
        traces.append(
            go.Scatter(x=[suggestion], y=[near[1]], mode="markers", name=tr(N_("offered: {lr}")).format(lr=f"{suggestion:.2g}"),
                       marker=dict(symbol="star" if reliable else "circle-open", size=16, color=VAL_COLOUR,
                                   line=dict(width=2, color=VAL_COLOUR)))
        )  # fmt: skip
    shapes = [
        dict(type="line", x0=lr, x1=lr, y0=0, y1=1, xref="x", yref="y domain",
             line=dict(color="#999999", dash="dot", width=1))
        for lr in (candidates or {}).values()
    ]  # fmt: skip
    annotations = [
        dict(x=math.log10(lr), y=1.0, xref="x", yref="y domain", text=tr(name), showarrow=False,
             textangle=-90, xanchor="right", yanchor="top", font=dict(size=10, color="#777777"))
        for name, lr in (candidates or {}).items()
    ]  # fmt: skip
    fig = go.Figure(data=traces)
    fig.update_layout(shapes=shapes, annotations=annotations)
    fig.update_xaxes(type="log", title_text=tr(N_("learning rate (log scale)")), exponentformat="power")
    fig.update_yaxes(title_text=tr(N_("training loss")))
    if loss_spiked([x for x in smoothed if math.isfinite(x)]):
        fig.update_yaxes(type="log", title_text=tr(N_("training loss (log scale)")))  # the blow-up at the end
    fig.update_layout(hovermode="closest")
    return _layout(fig, 340)
