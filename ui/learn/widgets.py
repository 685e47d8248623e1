"""The widgets every Learn lesson shares: a number grid as a heatmap (:func:`grid`), the "By hand =
PyTorch" check (:func:`agreement`), the "What to notice" box (:func:`notice`) and an editable grid's
table (:func:`grid_frame`).

Grid charts are keyed by their order in the run (``learn-grid-0``, ``learn-grid-1``, …), so a chart keeps
its key from one run to the next; the page calls :func:`start_run` before drawing a lesson to count from 0
again. Figures come from :mod:`cnndash.plots.learn`, the check from :mod:`cnndash.lessons.agreement`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from cnndash.lessons.agreement import check_agreement
from cnndash.plots import learn as plots_learn
from ui.i18n import translator

_ = translator("learn")

FIT = {"config": {"displayModeBar": False}}
CHART_COUNT = "learn-chart-count"  # session key: grid charts drawn so far in this run


def start_run() -> None:
    """Number this run's grid charts from 0 again (call once per run, before the lesson draws)."""
    st.session_state[CHART_COUNT] = 0


def notice(text: str) -> None:
    """The lesson's "What to notice" box (``text`` already in the person's language)."""
    st.info(_("**What to notice.** {text}", text=text), icon=":material/lightbulb:")


def grid(values, title: str = "", **options) -> None:
    """``values`` (2-D) as a heatmap with its numbers; ``options`` go to ``plots.learn.grid_figure``."""
    figure = plots_learn.grid_figure(values, title, **options)
    number = st.session_state.get(CHART_COUNT, 0)
    st.session_state[CHART_COUNT] = number + 1
    st.plotly_chart(figure, width="content", key=f"learn-grid-{number}", **FIT)


def agreement(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Say whether the hand-made numbers equal PyTorch's (they always should: the tests make sure)."""
    result = check_agreement(ours, theirs)
    if result.same:
        st.success(
            _(
                "By hand = `{what}`: same shape {shape}, largest difference {difference:.1e}.",
                what=what,
                shape=result.shape,
                difference=result.largest_difference,
            )
        )
    else:
        st.error(
            _(
                "By hand ≠ `{what}` (largest difference {difference:.3g}); please report this.",
                what=what,
                difference=result.largest_difference,
            )
        )


def grid_frame(values: np.ndarray) -> pd.DataFrame:
    """A 2-D array as the table an editable grid starts from (columns named 0, 1, …)."""
    return pd.DataFrame(values, columns=[str(c) for c in range(values.shape[1])])
