"""The learning-rate finder on the Training page: a button runs the engine's
:func:`cnndash.training.lr_finder.find_lr` for the form's settings in a background thread (with progress and
Stop), then shows the range test's curve on a log axis with the learning rate offered, whether a trial run
confirmed it, and "Use this learning rate", which sets the form's value.

The finder is one person's: its thread lives in their session (two people's finders never mix), it writes
nothing but a temporary folder, and it never runs on a rerun by itself — only on the button.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

import ui
from cnndash.plots import training as plots_train
from cnndash.training.config import TrainConfig
from cnndash.training.lr_finder import LRFinding, find_lr

log = logging.getLogger("cnndash.ui")
POLL_SECONDS = 0.5
_TASK = "train-lr-finder-task"  # the running (or just ended) FinderTask of this session
_FOUND = "train-lr-finding"  # (dataset, LRFinding) of the last finished finder


@dataclass
class FinderTask:
    """``find_lr`` in a daemon thread: progress for the page, a stop flag, and its finding or error."""

    config: TrainConfig
    stop_event: threading.Event = field(default_factory=threading.Event)
    fraction: float = 0.0
    text: str = "starting…"
    finding: LRFinding | None = None
    error: str = ""
    thread: threading.Thread | None = None

    def _progress(self, fraction: float, text: str) -> None:
        self.fraction, self.text = fraction, text  # single assignments: read whole by the page

    def _run(self) -> None:
        try:
            self.finding = find_lr(self.config, progress=self._progress, stop_event=self.stop_event)
        except ValueError as exc:  # the data or the settings: the message says what to change
            self.error = str(exc)
        except Exception as exc:  # a bug: the traceback in the log, one line on the page
            log.exception("learning-rate finder crashed")
            self.error = f"The learning-rate finder failed ({type(exc).__name__}: {exc})."

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="cnndash-lr-finder", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def _use(lr: float) -> None:
    st.session_state["train-lr"] = float(lr)


def _collect(task: FinderTask) -> None:
    """A finished task's outcome into the session (its finding, or its error shown once)."""
    st.session_state.pop(_TASK, None)
    if task.error:
        st.error(ui.text(task.error), icon=":material/error:")
    elif task.finding is not None:
        st.session_state[_FOUND] = (task.config.dataset, task.finding)


@st.fragment(run_every=POLL_SECONDS)
def _follow() -> None:
    """Redrawn twice a second while the finder runs; a full rerun when it ends shows the curve."""
    task = st.session_state.get(_TASK)
    if task is None:
        return
    st.progress(min(max(task.fraction, 0.0), 1.0), text=f"Learning-rate finder: {task.text}")
    if st.button("Stop the finder", key="train-lr-finder-stop", icon=":material/stop:"):
        task.stop_event.set()
    if not task.alive:
        st.rerun()


def _trials_table(finding: LRFinding) -> None:
    rows = [
        {
            "learning rate": t.lr,
            "reading": t.source,
            "loss before": t.start_loss,
            "loss after": t.end_loss if math.isfinite(t.end_loss) else None,
            "loss fell": t.fell,
        }
        for t in finding.trials
    ]
    if rows:
        st.dataframe(
            pd.DataFrame(rows),
            hide_index=True,
            key="train-lr-finder-trials",
            column_config={"learning rate": st.column_config.NumberColumn(format="%.2g")},
        )


def _show(dataset: str, finding: LRFinding, current: float) -> None:
    fig = plots_train.lr_finder_figure(
        finding.lrs,
        finding.losses,
        finding.smoothed,
        finding.suggestion,
        reliable=finding.reliable,
        candidates=finding.candidates,
    )
    st.plotly_chart(fig, key="train-lr-finder-chart")
    if finding.reliable:
        st.success(
            ui.md("**Offered: {lr}** — {reason}", lr=f"{finding.suggestion:.2g}", reason=finding.reason)
        )
    else:
        st.warning(ui.text(finding.reason), icon=":material/help:")
    _trials_table(finding)
    same = math.isclose(current, finding.suggestion, rel_tol=1e-9)
    st.button(
        "Use this learning rate",
        key="train-lr-finder-use",
        type="primary",
        icon=":material/check:",
        on_click=_use,
        args=(finding.suggestion,),
        disabled=same or not finding.reliable,
        help="Sets the form's learning rate to the one offered (confirmed by its trial run)."
        if not same
        else "The form already uses it.",
    )
    st.caption(ui.md("Found for {dataset} with the settings above at the time.", dataset=dataset))


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
    with st.expander("Find a learning rate", icon=":material/troubleshoot:", expanded=expanded):
        st.caption(
            "A short range test (Smith 2015, fastai's lr_find): the learning rate grows batch by batch while "
            "the loss is recorded; three readings of the curve and the current value are then each checked "
            "by a short trial run from the same start, and the one whose loss fell most is offered."
        )
        if task is not None:
            _follow()
            return
        if st.button(
            "Run the finder",
            key="train-lr-finder-start",
            icon=":material/play_arrow:",
            disabled=config is None,
            help="Trains a throwaway copy of the model for a few dozen batches; nothing is saved.",
        ):
            task = FinderTask(config)
            task.start()
            st.session_state[_TASK] = task
            st.rerun()
        if found is not None and found[0] == dataset:
            _show(found[0], found[1], config.lr if config is not None else math.nan)
