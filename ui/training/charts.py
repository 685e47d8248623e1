"""A run's training curves on the Training page, drawn the same way while it trains and in its results:
per-batch loss and accuracy, and per-epoch train vs validation."""

from __future__ import annotations

import streamlit as st

from cnndash.jobs.registry import JobSnapshot
from cnndash.plots import training as plots_train
from cnndash.runs import Run
from ui import i18n

_engine = i18n.translator("engine")


def run_charts(snap: JobSnapshot, run: Run | None, key: str) -> None:
    """The batch and epoch charts of ``snap``'s run (keys ``{key}-batch-chart``, ``{key}-epoch-chart``)."""
    # The run's per-batch log covers the whole run, also the parts before a resume; the job's own points
    # only this part (and a run that failed before writing its folder has no log).
    points = (run.batch_log() if run is not None else None) or snap.batch_points
    if points:
        steps = snap.batches or points[-1].get("batches") or None
        st.plotly_chart(
            plots_train.batch_curves_figure(points, steps_per_epoch=steps, tr=_engine),
            key=f"{key}-batch-chart",
        )
    metrics = run.metrics() if run is not None else None
    if metrics is None or not len(metrics):
        metrics = snap.epoch_rows
    if len(metrics):
        st.plotly_chart(plots_train.epoch_curves_figure(metrics, tr=_engine), key=f"{key}-epoch-chart")
