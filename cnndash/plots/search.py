"""Figure builders for a hyperparameter search (:mod:`cnndash.search`): the trials in parallel coordinates.

Pure functions: the search's rows in (:meth:`cnndash.search.SearchResult.table`'s shape: ``number``, each
varied setting, ``value``, ``state``), a Plotly figure out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import plotly.graph_objects as go

from cnndash.text import N_, plotly_label

# The settings a search varies, their axis titles, and which are drawn on a log scale.
SETTING_LABELS = {
    "model": N_("model"),
    "lr": N_("learning rate"),
    "image_size": N_("image size"),
    "batch_size": N_("batch size"),
}
LOG_SETTINGS = frozenset({"lr"})


def _dimension(key: str, values: list, tr: Callable[[str], str] = str) -> dict:
    """One parallel-coordinates axis: categories as evenly spaced ticks, a log setting as log10 with its own
    values as tick labels, numbers as they are."""
    label = tr(SETTING_LABELS[key]) if key in SETTING_LABELS else key
    if any(isinstance(v, str) for v in values):
        categories = sorted({str(v) for v in values})
        index = {name: i for i, name in enumerate(categories)}
        return dict(label=label, values=[index[str(v)] for v in values], tickvals=list(range(len(categories))),
                    ticktext=[plotly_label(c, 24) for c in categories],
                    range=[-0.5, len(categories) - 0.5])  # fmt: skip
    numbers = [float(v) for v in values]
    if key in LOG_SETTINGS and all(v > 0 for v in numbers):
        logs = [math.log10(v) for v in numbers]
        low, high = math.floor(min(logs)), math.ceil(max(logs))
        ticks = [t / 2 for t in range(2 * low, 2 * high + 1)]  # every half decade: 1e-3, 3e-3, 1e-2 …
        return dict(label=tr(N_("{setting} (log)")).format(setting=label), values=logs, tickvals=ticks,
                    ticktext=[f"{10**t:.1g}" for t in ticks])  # fmt: skip
    return dict(label=label, values=numbers)


def parallel_coordinates_figure(rows: Sequence[Mapping], *, tr: Callable[[str], str] = str) -> go.Figure:
    """The trials with a validation accuracy as lines across one axis per varied setting and one for the
    accuracy, coloured by it (the best trials stand out in yellow). Trials without a value (failed before an
    epoch ended) are left out; the figure's ``meta["left_out"]`` counts them."""
    scored = [row for row in rows if row.get("value") is not None]
    settings = [key for key in SETTING_LABELS if any(key in row for row in scored)]
    settings += sorted({k for row in scored for k in row} - set(settings) - {"number", "value", "state"})
    values = [float(row["value"]) for row in scored]
    dimensions = [_dimension(key, [row.get(key) for row in scored], tr) for key in settings]
    dimensions.append(
        dict(label=tr(N_("validation accuracy")), values=values, range=[0, 1], tickformat=".0%")
    )
    line = dict(color=values, colorscale="Viridis", cmin=0, cmax=1, showscale=True,
                colorbar=dict(title=dict(text=tr(N_("val acc"))), tickformat=".0%"))  # fmt: skip
    fig = go.Figure(go.Parcoords(line=line, dimensions=dimensions))
    fig.update_layout(
        height=360,
        margin=dict(l=60, r=40, t=50, b=20),
        template="plotly_white",
        meta={"left_out": len(rows) - len(scored)},
    )
    return fig
