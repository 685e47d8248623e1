"""The learning-rate finder on the Training page: a button runs the engine's
:func:`cnndash.training.lr_finder.find_lr` for the form's settings in the background (with progress and
Stop), then shows the range test's curve on a log axis with the learning rate offered, whether a trial run
confirmed it, and "Use this learning rate", which sets the form's value.

The finder runs as the engine's background job (:func:`cnndash.search.job.start_lr_finder`: under the jobs rule,
never beside a training run on the device, a label check or a search); the job is held by the session that
started it (two people's findings never mix), it writes nothing but a temporary folder, and it never runs on a
rerun by itself — only on the button.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

import ui
from cnndash.plots import training as plots_train
from cnndash.search.job import LRFinderJob, start_lr_finder
from cnndash.training.config import TrainConfig
from cnndash.training.lr_finder import READINGS, LRFinding
from ui import i18n
from ui.engine_text import engine_text

_ = i18n.translator("training")
_engine = i18n.translator("engine")

POLL_SECONDS = 0.5
_TASK = "train-lr-finder-task"  # the running (or just ended) LRFinderJob this session started
_TASK_DATASET = "train-lr-finder-dataset"  # the dataset it runs on
_FOUND = "train-lr-finding"  # (dataset, LRFinding) of the last finished finder


def _use(lr: float) -> None:
    st.session_state["train-lr"] = float(lr)


def _collect(job: LRFinderJob) -> None:
    """An ended finder's outcome into the session (its finding, or its error shown once)."""
    state = st.session_state
    state.pop(_TASK, None)
    dataset = state.pop(_TASK_DATASET, "")
    snap = job.snapshot()
    if snap.status == "failed":
        st.error(ui.text(engine_text(snap.error)), icon=":material/error:")
    elif snap.finding is not None:
        state[_FOUND] = (dataset, snap.finding)


@st.fragment(run_every=POLL_SECONDS)
def _follow() -> None:
    """Redrawn twice a second while the finder runs; a full rerun when it ends shows the curve."""
    job = st.session_state.get(_TASK)
    if job is None:
        return
    snap = job.snapshot()
    st.progress(
        min(max(snap.fraction, 0.0), 1.0),
        text=_("Learning-rate finder: {progress}", progress=ui.text(engine_text(snap.text))),
    )
    if st.button(_("Stop the finder"), key="train-lr-finder-stop", icon=":material/stop:"):
        job.stop()
    if not job.alive:
        st.rerun()


def _trials_table(finding: LRFinding) -> None:
    lr, reading, before, after, fell = (
        _("learning rate"),
        _("reading"),
        _("loss before"),
        _("loss after"),
        _("loss fell"),
    )
    rows = [
        {
            lr: t.lr,
            reading: _engine(READINGS.get(t.source, t.source)),
            before: t.start_loss,
            after: t.end_loss if math.isfinite(t.end_loss) else None,
            fell: t.fell,
        }
        for t in finding.trials
    ]
    if rows:
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            key="train-lr-finder-trials",
            column_config={lr: st.column_config.NumberColumn(format="%.2g")},
        )


def _show(dataset: str, finding: LRFinding, current: float) -> None:
    fig = plots_train.lr_finder_figure(
        finding.lrs,
        finding.losses,
        finding.smoothed,
        finding.suggestion,
        reliable=finding.reliable,
        candidates=finding.candidates,
        tr=_engine,
    )
    st.plotly_chart(fig, key="train-lr-finder-chart")
    if finding.reliable:
        st.success(
            _(
                "**Offered: {lr}** — {reason}",
                lr=f"{finding.suggestion:.2g}",
                reason=ui.text(engine_text(finding.reason)),
            )
        )
    else:
        st.warning(ui.text(engine_text(finding.reason)), icon=":material/help:")
    _trials_table(finding)
    same = math.isclose(current, finding.suggestion, rel_tol=1e-9)
    st.button(
        _("Use this learning rate"),
        key="train-lr-finder-use",
        type="primary",
        icon=":material/check:",
        on_click=_use,
        args=(finding.suggestion,),
        disabled=same or not finding.reliable,
        help=_("Sets the form's learning rate to the one offered (confirmed by its trial run).")
        if not same
        else _("The form already uses it."),
    )
    st.caption(_("Found for {dataset} with the settings above at the time.", dataset=ui.text(dataset)))


def lr_finder(config: TrainConfig | None) -> None:
    """The finder's expander: the button (off while the form has a refused setting), its progress, and the last
    finding for this dataset."""
    task = st.session_state.get(_TASK)
    if task is not None and not task.alive:
        _collect(task)
        task = None
    found = st.session_state.get(_FOUND)
    dataset = config.dataset if config is not None else None
    expanded = task is not None or (found is not None and found[0] == dataset)
    with st.expander(_("Find a learning rate"), icon=":material/troubleshoot:", expanded=expanded):
        st.caption(
            _(
                "A short range test (Smith 2015, fastai's lr_find): the learning rate grows batch by batch "
                "while the loss is recorded; three readings of the curve and the current value are then each "
                "checked by a short trial run from the same start, and the one whose loss fell most is offered."
            )
        )
        if task is not None:
            _follow()
            return
        if st.button(
            _("Run the finder"),
            key="train-lr-finder-start",
            icon=":material/play_arrow:",
            disabled=config is None,
            help=_("Trains a throwaway copy of the model for a few dozen batches; nothing is saved."),
        ):
            with ui.user_errors():  # the jobs rule: not beside a run on the device, a label check or a search
                st.session_state[_TASK] = start_lr_finder(config)
                st.session_state[_TASK_DATASET] = config.dataset
                st.rerun()
        if found is not None and found[0] == dataset:
            _show(found[0], found[1], config.lr if config is not None else math.nan)
