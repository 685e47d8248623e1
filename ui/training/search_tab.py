"""The search on the Training page's Runs tab: try several settings around the Train tab's in a budgeted Optuna
study (the engine's :mod:`cnndash.search`: TPE with successive halving, trials are hidden runs of the group
``search:<id>``), follow it with progress and Stop, see its trials in parallel coordinates and a table, and
train the best one as a normal run in one click.

A search runs in this server process (:func:`cnndash.search.job.start_search`, under the jobs rule: never beside
a training run on its device or a label check). Searches found on disk (after a reload or a restart) are read
back from their trial runs (:func:`cnndash.search.search_trials`).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

import ui
from cnndash.jobs.registry import get_registry
from cnndash.models import MODEL_NAMES
from cnndash.plots.search import parallel_coordinates_figure
from cnndash.runs import Run, RunError, load_run
from cnndash.search import SearchSpace, TrialResult, search_trials
from cnndash.search.job import SearchJob, active_search_job, search_job, start_search
from cnndash.search.study import GROUP_PREFIX, best_trial
from cnndash.text import N_
from cnndash.training.config import TrainConfig
from ui import i18n
from ui.engine_text import engine_text

_ = i18n.translator("training")
_engine = i18n.translator("engine")

POLL_SECONDS = 1.0
DEFAULT_TRIALS = 8
_SHOWN = "search-shown"  # the search id this session looks at (the one it started, or one picked from disk)
STATE_LABELS = {
    "complete": N_("complete"),
    "pruned": N_("pruned (trailed the others)"),
    "stopped": N_("stopped"),
    "failed": N_("failed"),
}


def search_ids(runs: list[Run]) -> list[str]:
    """The searches whose trials are in ``runs``, newest first (ids start with their start time)."""
    found = {run.group.removeprefix(GROUP_PREFIX) for run in runs if run.group.startswith(GROUP_PREFIX)}
    return sorted(found, reverse=True)


def best_config(trials: list[TrialResult]) -> TrainConfig | None:
    """The best trial's settings as a normal run (its run's config, ``purpose="train"``, no group)."""
    best = best_trial(trials)
    if best is None:
        return None
    try:
        config = TrainConfig.from_dict(load_run(best.run_name).config)
    except (RunError, ValueError):
        return None  # its run was deleted meanwhile: nothing to train from
    return replace(config, purpose="train", group="")


def _controls(config: TrainConfig | None) -> None:
    c1, c2, c3 = st.columns([1, 1, 2])
    trials = c1.number_input(
        _("Trials"),
        step=1,
        help=_("Configurations to try. The first is the Train tab's own settings, trained in full."),
        **ui.keep("search-trials", DEFAULT_TRIALS),
    )
    budget = c2.number_input(
        _("Time budget (s, 0 = twice one run)"),
        step=30,
        help=_(
            "The search stops its trial in flight at this time; 0 allows twice the first trial's time. "
            "Successive halving stops the trials that trail the others after their first epochs, so several fit."
        ),
        **ui.keep("search-budget", 0),
    )
    models = c3.multiselect(
        _("Models to try"),
        MODEL_NAMES,
        help=_("Each trial picks one; the learning rate ranges from a tenth to three times the Train tab's."),
        **ui.keep("search-models", [config.model] if config is not None else [MODEL_NAMES[0]]),
    )
    if config is None:
        st.caption(
            ":material/block: "
            + _("The search starts from the Train tab's settings: fix the one marked there.")
        )
    if st.button(
        _("Start the search"), key="search-start", icon=":material/travel_explore:", disabled=config is None
    ):
        with ui.user_errors():  # refused settings, or a training run or label check on the device
            space = SearchSpace.around(config, models)
            job = start_search(config, trials=int(trials), budget_s=float(budget) or None, space=space)
            st.session_state[_SHOWN] = st.session_state["search-pick"] = job.search_id
            st.rerun()


def _trials_table(trials: list[TrialResult], key: str) -> None:
    rows = [
        {"trial": t.number, **t.params, "val accuracy": t.value,
         "state": _(STATE_LABELS[t.state]) if t.state in STATE_LABELS else t.state,
         "epochs": t.epochs, "seconds": t.seconds, "run": ui.plain(t.run_name)}
        for t in trials
    ]  # fmt: skip
    # The columns keep their keys (a trial's params are TrainConfig fields) and show translated headers.
    headers = {"trial": _("trial"), "state": _("state"), "epochs": _("epochs"), "seconds": _("seconds"),
               "run": _("run"), "model": _("model"), "image_size": _("image size"), "batch_size": _("batch size"),
               "optimizer": _("optimizer"), "weight_decay": _("weight decay")}  # fmt: skip
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key=key,
        column_config={
            **{column: st.column_config.Column(header) for column, header in headers.items()},
            "val accuracy": st.column_config.ProgressColumn(
                _("val accuracy"), min_value=0.0, max_value=1.0, format="percent"
            ),
            "lr": st.column_config.NumberColumn(_("learning rate"), format="%.2g"),
            "seconds": st.column_config.NumberColumn(_("seconds"), format="%.1f"),
        },
    )


@st.fragment(run_every=POLL_SECONDS)
def _follow(search_id: str) -> None:
    """Redrawn every second while the search runs; a full rerun when it ends shows its results."""
    job = search_job(search_id)
    if job is None:
        return
    snap = job.snapshot()
    progress = ui.text(engine_text(snap.text()))
    st.progress(
        snap.fraction, text=_("Search {search}: {progress}", search=ui.text(search_id), progress=progress)
    )
    if st.button(_("Stop the search"), key="search-stop", icon=":material/stop:"):
        job.stop()  # within one batch; the trials so far are kept
    if snap.done:
        _trials_table(list(snap.done), "search-live-trials")
    if not job.alive:
        st.rerun()


def _train_best(best: TrainConfig) -> None:
    with ui.user_errors():  # refused beside another training run or a search on the device
        job = get_registry().start(best)
        ui.workspace.put("run", job.run_name)  # Evaluation and Grad-CAM start on it
        st.session_state["search-trained"] = job.run_name
        st.rerun()


def _results(search_id: str, job: SearchJob | None) -> None:
    """A finished (or stopped) search: parallel coordinates, the trials, and Train the best."""
    snap = job.snapshot() if job is not None else None
    result = snap.result if snap is not None else None
    trials = list(result.trials) if result is not None else search_trials(search_id)
    if snap is not None and snap.status == "failed":
        st.error(ui.text(engine_text(snap.error)), icon=":material/error:")
    if not trials:
        st.info(_("This search has no finished trial yet."), icon=":material/info:")
        return
    if result is not None:
        cut = " · " + _("{n} not started (time budget)", n=result.not_started) if result.not_started else ""
        stopped = " · " + _("stopped") if result.stopped else ""
        said = _(
            "{n} trials in {seconds} s of the {allowed} s allowed",
            n=len(trials),
            seconds=f"{result.seconds:.0f}",
            allowed=f"{result.deadline_s:.0f}",
        )
        st.caption(said + cut + stopped)
    st.plotly_chart(parallel_coordinates_figure([{"number": t.number, **t.params, "value": t.value,
                                                  "state": t.state} for t in trials], tr=_engine),
                    key="search-parcoords")  # fmt: skip
    _trials_table(trials, "search-trials-table")
    best = result.best_config if result is not None else best_config(trials)
    top = best_trial(trials)
    if best is None or top is None:
        return
    c1, c2 = st.columns([1, 3], vertical_alignment="center")
    if c1.button(
        _("Train the best"),
        key="search-train-best",
        type="primary",
        icon=":material/play_arrow:",
        disabled=get_registry().active() is not None,
        help=_("Trains the best trial's settings as a normal run, for the Train tab's epochs."),
    ):
        _train_best(best)
    c2.caption(
        _("Best: trial {n} — {model}, learning rate {lr}, {acc} validation accuracy",
          n=top.number, model=best.model, lr=f"{best.lr:.2g}", acc=f"{(top.value or 0):.1%}")
    )  # fmt: skip


def search_section(config: TrainConfig | None, runs: list[Run]) -> None:
    """The search: controls (or the running search's progress), then the results of the search on show."""
    running = active_search_job()
    shown = st.session_state.get(_SHOWN)
    on_disk = search_ids(runs)
    if running is not None:
        st.session_state[_SHOWN] = shown = running.search_id
    elif shown is None and on_disk:
        shown = on_disk[0]
    with st.expander(_("Search: try several settings, keep the best"), icon=":material/travel_explore:",
                     expanded=running is not None or shown is not None):  # fmt: skip
        active = get_registry().active()
        if active is not None and active.run_name == st.session_state.get(
            "search-trained"
        ):  # while it trains
            st.info(
                _(
                    "Training the best settings as run {run}: follow it in the Train tab.",
                    run=ui.text(active.run_name),
                )
            )
        if running is not None:
            _follow(running.search_id)
            return
        _controls(config)
        choices = list(dict.fromkeys([*([shown] if shown else []), *on_disk]))
        if not choices:
            return
        shown = st.selectbox(_("Search"), choices, key="search-pick", format_func=ui.plain)
        _results(shown, search_job(shown))
