"""Figure builders for the Evaluation page: pure functions, tables in, Plotly figures / PNG bytes out.

Class names come from uploads: every one goes through :func:`cnndash.text.plotly_text` (or
:func:`~cnndash.text.mpl_text` for the seaborn PNG) before it reaches a figure, so it is drawn as text.

The confusion-matrix heatmap carries an invisible scatter point on every cell (``customdata`` =
``[true_index, pred_index, count, value, "n images"]``) so that a click on a cell can be read back as a point selection by the
page (Plotly heatmaps themselves are not selectable).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cnndash.plots.training import epoch_axis, loss_spiked
from cnndash.text import N_, mpl_text, plotly_text, plotly_texts, plotly_ticks, plural

# Above this many classes the cell texts are dropped (they would overlap) and only hover shows values.
MAX_ANNOTATED_CLASSES = 30
# Click markers fill most of a cell: about 700 px of matrix shared by the classes, within [6, 60] px.
MARKER_SPAN_PX, MIN_MARKER_PX, MAX_MARKER_PX = 700, 6, 60
# Heatmap height: 28 px per class plus 90 px of axes and titles, within [380, 1100] px.
CELL_PX, AXES_PX, MIN_SIDE_PX, MAX_SIDE_PX = 28, 90, 380, 1100
# Outline of the selected cell: the app's primary orange, which no shade of the Blues scale comes near.
SELECTED_CELL_COLOUR = "#E4572E"


def _outline_cell(fig: go.Figure, row: int, column: int) -> None:
    """An outline around the heatmap cell at (``row``, ``column``) of the drawn matrix."""
    # Category axes place cell k at k: the outline spans k ± 0.5 (y is reversed, which shapes follow).
    fig.add_shape(
        type="rect",
        xref="x",
        yref="y",
        x0=column - 0.5,
        x1=column + 0.5,
        y0=row - 0.5,
        y1=row + 0.5,
        line={"color": SELECTED_CELL_COLOUR, "width": 3},
        fillcolor="rgba(0,0,0,0)",
        name="selected cell",
    )


def confusion_matrix_figure(
    cm: pd.DataFrame,
    *,
    counts: pd.DataFrame | None = None,
    normalized: bool = False,
    class_indices: list[int] | None = None,
    title: str | None = None,
    selected: tuple[int, int] | None = None,
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """Interactive heatmap of a confusion matrix: rows = true class (top to bottom), columns = predicted.

    ``cm`` holds the values to colour (counts, or fractions when ``normalized``); ``counts`` the raw
    counts shown alongside fractions. ``class_indices`` are the original class indices of ``cm``'s rows
    and columns when it is a sub-matrix (top-N view); they go into the click points' ``customdata``.
    ``selected`` = (true index, predicted index), in those original indices, gets an outline (the cell whose
    images the page shows); a cell outside a top-N view gets none.
    """
    n = len(cm)
    if cm.shape != (n, n):
        raise ValueError(f"A confusion matrix must be square, got shape {cm.shape}.")
    labels = plotly_texts(cm.columns)
    true_labels = plotly_texts(cm.index)
    counts = cm if counts is None else counts
    indices = list(range(n)) if class_indices is None else list(class_indices)
    values = cm.to_numpy(dtype=float)
    raw = counts.to_numpy()
    # The cell in the hover label: the axes' own titles, translated ("%{y}" is Plotly's, filled on hover).
    cell = plotly_text(tr(N_("true class"))) + " %{y}<br>" + plotly_text(tr(N_("predicted class"))) + " %{x}"
    if normalized:
        text = [[f"{values[i, j]:.0%}<br>{int(raw[i, j])}" for j in range(n)] for i in range(n)]
        hover = cell + "<br>%{customdata[3]:.1%}<br>%{customdata[4]}<extra></extra>"
    else:
        text = [[str(int(raw[i, j])) for j in range(n)] for i in range(n)]
        hover = cell + "<br>%{customdata[4]}<extra></extra>"
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=labels,
            y=true_labels,
            text=text if n <= MAX_ANNOTATED_CLASSES else None,
            texttemplate="%{text}" if n <= MAX_ANNOTATED_CLASSES else None,
            hoverinfo="skip",  # the cell markers below carry the hover text and the clicks
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalized else max(float(values.max()), 1.0),
            colorbar={"title": tr(N_("fraction")) if normalized else tr(N_("images"))},
            xgap=1,
            ygap=1,
        )
    )
    fig.add_trace(_cell_markers(labels, true_labels, indices, raw, values, hover, tr))
    if selected is not None and selected[0] in indices and selected[1] in indices:
        _outline_cell(fig, indices.index(selected[0]), indices.index(selected[1]))
    side = max(MIN_SIDE_PX, min(MAX_SIDE_PX, AXES_PX + CELL_PX * n))
    fig.update_layout(
        title=plotly_text(title) if title else None,
        height=side,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        xaxis={
            "title": tr(N_("predicted class")),
            "type": "category",
            "side": "bottom",
            "tickangle": -45 if n > 8 else 0,
            **plotly_ticks(cm.columns),
        },
        yaxis={
            "title": tr(N_("true class")),
            "type": "category",
            "autorange": "reversed",
            **plotly_ticks(cm.index),
        },
        clickmode="event+select",
        dragmode=False,
    )
    return fig


def _images(count: int, tr: Callable[[str], str]) -> str:
    """``count`` images in the hover label, in the reader's language (Plotly shows it as text)."""
    said = tr(N_("{n} image")) if count == 1 else tr(N_("{n} images"))
    return plotly_text(said.format(n=f"{count:,}"))


def _cell_markers(
    labels: list[str],
    true_labels: list[str],
    indices: list[int],
    raw: np.ndarray,
    values: np.ndarray,
    hover: str,
    tr: Callable[[str], str] = str,
) -> go.Scatter:
    """One invisible marker per cell: Plotly heatmaps cannot be selected, markers can, so a click on a
    cell selects its marker, whose customdata is [true_index, pred_index, count, value, "n images"]."""
    n = len(labels)
    jj, ii = np.meshgrid(np.arange(n), np.arange(n))
    return go.Scatter(
        x=[labels[j] for j in jj.ravel()],
        y=[true_labels[i] for i in ii.ravel()],
        mode="markers",
        marker={
            "size": max(MIN_MARKER_PX, min(MAX_MARKER_PX, MARKER_SPAN_PX // max(n, 1))),
            "opacity": 0,
            "symbol": "square",
        },
        customdata=[
            [indices[i], indices[j], int(raw[i, j]), float(values[i, j]), _images(int(raw[i, j]), tr)]
            for i, j in zip(ii.ravel(), jj.ravel(), strict=True)
        ],
        hovertemplate=hover,
        showlegend=False,
        name="cells",
    )


PNG_LABEL_CHARS = 40  # a longer class name is cut with "…" in the PNG (it would squeeze the matrix away)


def _tick(name: object) -> str:
    text = mpl_text(name)
    return text if len(text) <= PNG_LABEL_CHARS else text[: PNG_LABEL_CHARS - 1].rstrip("\\") + "…"


def confusion_matrix_png(
    cm: pd.DataFrame,
    *,
    normalized: bool = False,
    title: str = "Confusion matrix",
    tr: Callable[[str], str] = str,
) -> bytes:
    """Publication-quality seaborn heatmap (as the tutorials draw it) as PNG bytes, 200 dpi."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import seaborn as sns

    n = len(cm)
    side = max(4.0, min(24.0, 1.5 + 0.45 * n))
    fig, ax = plt.subplots(figsize=(side * 1.15, side))
    try:
        sns.heatmap(
            cm,
            annot=n <= MAX_ANNOTATED_CLASSES,
            fmt=".2f" if normalized else "d",
            cmap="Blues",
            vmin=0,
            vmax=1 if normalized else None,
            square=True,
            cbar_kws={"label": "fraction" if normalized else "images"},
            xticklabels=[_tick(c) for c in cm.columns],
            yticklabels=[_tick(c) for c in cm.index],
            ax=ax,
        )
        ax.set_xlabel(tr(N_("Predicted class")))
        ax.set_ylabel(tr(N_("True class")))
        ax.set_title(mpl_text(title))
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=200)
    finally:
        plt.close(fig)
    return buffer.getvalue()


def per_class_accuracy_figure(
    frame: pd.DataFrame, overall: float | None = None, *, tr: Callable[[str], str] = str
) -> go.Figure:
    """Bar chart of ``frame`` (columns ``class``, ``accuracy``, ``support``), with the overall accuracy;
    ``tr`` translates the axes and the annotation."""
    fig = go.Figure(
        go.Bar(
            x=plotly_texts(frame["class"]),
            y=frame["accuracy"],
            customdata=[
                [int(c), plural(int(n), "image")]
                for c, n in zip(frame["correct"], frame["support"], strict=True)
            ]
            if "correct" in frame
            else None,
            hovertemplate="%{x}: %{y:.1%}"
            + ("<br>%{customdata[0]} of %{customdata[1]}" if "correct" in frame else "")
            + "<extra></extra>",
            marker_color="#1f77b4",
        )
    )
    if overall is not None and np.isfinite(overall):
        fig.add_hline(y=overall, line_dash="dash", annotation_text=tr(N_("overall {accuracy}")).format(
            accuracy=f"{overall:.1%}"))  # fmt: skip
    fig.update_layout(
        height=340,
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"title": tr(N_("class")), "type": "category", **plotly_ticks(frame["class"])},
        yaxis={"title": tr(N_("accuracy (recall)")), "range": [0, 1.05], "tickformat": ".0%"},
    )
    return fig


CURVE_NAMES = {
    "train_loss": N_("train loss"),
    "val_loss": N_("val loss"),
    "train_acc": N_("train acc"),
    "val_acc": N_("val acc"),
}


def learning_curves_figure(metrics: pd.DataFrame, *, tr: Callable[[str], str] = str) -> go.Figure:
    """Train vs validation loss (left) and accuracy (right) per epoch, from a run's ``metrics.csv``; ``tr``
    translates the titles and legend."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(tr(N_("loss")), tr(N_("accuracy"))))
    styles = {"train": {"color": "#1f77b4"}, "val": {"color": "#d62728"}}
    for col, metric in ((1, "loss"), (2, "acc")):
        for split in ("train", "val"):
            name = f"{split}_{metric}"
            if name not in metrics:
                continue
            fig.add_trace(
                go.Scatter(
                    x=metrics["epoch"],
                    y=metrics[name],
                    mode="lines+markers",
                    name=tr(CURVE_NAMES[name]),
                    line=styles[split],
                    legendgroup=split,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(
        title_text=tr(N_("epoch")), **epoch_axis(int(metrics["epoch"].max()) if len(metrics) else 1)
    )
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    losses = [column for column in ("train_loss", "val_loss") if column in metrics]  # only those present
    start = metrics[losses[0]].iloc[0] if losses and len(metrics) else None
    if start is not None and loss_spiked([value for column in losses for value in metrics[column]], start):
        fig.update_yaxes(
            type="log", title_text=tr(N_("log scale")), row=1, col=1
        )  # the spike and the rest both show
    fig.update_layout(
        height=360,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0},
    )
    return fig


def style_report(frame: pd.DataFrame):
    """Classification report with conditional colouring: red (bad) to green (good) on the score columns.

    Rows with empty scores (the ``accuracy`` row's precision/recall) are left uncoloured.
    """
    scores = [c for c in ("precision", "recall", "f1-score") if c in frame.columns]
    complete = frame.index[frame[scores].notna().all(axis=1)]
    return frame.style.background_gradient(
        cmap="RdYlGn", vmin=0, vmax=1, subset=pd.IndexSlice[complete, scores]
    ).format(dict.fromkeys(scores, "{:.3f}"), na_rep="")


def thumbnail(image, size: int = 96):
    """``image`` (PIL) scaled so its longer side is ``size`` pixels; small images are enlarged with
    nearest-neighbour so 8×8 digits stay crisp instead of being blurred by the browser."""
    from PIL import Image

    w, h = image.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return image.resize(new, resample)
