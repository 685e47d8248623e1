"""The Training page's two tabs, drawn by ``pages/training.py`` once the engine is imported: the Train tab (the
form after its first row, Train and Stop, the live view or the last run's results) and the Runs tab (the
search, then every run).

Kept out of the page file so that the page can draw its title, tabs and introduction before anything here
imports PyTorch (a first deep link's first paint, see ``benchmarks/first_paint.py``).
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.jobs.registry import get_registry
from cnndash.runs import list_runs
from cnndash.training.config import TrainConfig
from ui import i18n
from ui.training import lr_finder_view, runs_tab, search_tab
from ui.training.form import run_settings
from ui.training.form_start import FormStart, end_run_view, show_run_settings
from ui.training.live import live, saved_run
from ui.training.preflight_view import what_the_model_sees
from ui.training.results import results

_ = i18n.translator("training")

STOP_WAIT_SECONDS = 10  # a stop takes effect within one batch


def train_tab(start: FormStart) -> TrainConfig | None:
    """The rest of the form after its first row (``start``), Train and Stop, and the run training now (or
    the last one); the form's config (None while a setting is refused), which the Runs tab's search starts
    from."""
    registry = get_registry()
    active = registry.active()
    # A view of the run's settings, read-only while it trains, or the person's own once it ended: switched
    # before the first row is drawn, so by a rerun when the first row shows the other.
    if show_run_settings(active) if active is not None else end_run_view():
        st.rerun()
    config = pre = None
    processes = 1
    with ui.user_errors():
        config, processes = run_settings(start)
    if config is not None:
        pre = what_the_model_sees(config, processes)
    if active is None:
        lr_finder_view.lr_finder(config)
    c1, c2, c3 = st.columns([1, 1, 4], vertical_alignment="center")
    start = c1.button(
        _("Train"),
        key="train-start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=active is not None or pre is None or not pre.ok,
    )
    stop = c2.button(_("Stop"), key="train-stop", icon=":material/stop:", disabled=active is None)
    if active is not None:
        c3.caption(_("The settings above are the training run's; yours come back when it ends."))
    elif config is None:
        c3.caption(":material/block: " + _("Train is off until the setting marked above is fixed."))
    if stop and active is not None:
        active.stop()
        active.wait(STOP_WAIT_SECONDS)
        if not active.alive:
            end_run_view()  # the next run's first row shows the person's own values again
        st.rerun()  # redraw the buttons and show the stopped run's results
    if start and config is not None:
        with ui.user_errors():  # refused beside another training on the device or a label check
            job = registry.start(config, processes=processes)
            ui.workspace.put("run", job.run_name)  # Evaluation and Grad-CAM start on it
            show_run_settings(job)  # the next run's first row shows its settings
            st.rerun()  # redraw with Train disabled and the live view
    if active is not None:
        live(active.run_name)
    elif (latest := registry.latest()) is not None:
        results(latest.snapshot(), saved_run(latest))
    elif runs := list_runs(include_hidden=False):  # a restarted server: the newest run on disk
        results(None, runs[0])
    return config


def runs_and_search(config: TrainConfig | None) -> None:
    """The Runs tab: the search (from ``config``, the Train tab's settings), then every run."""
    search_tab.search_section(config, list_runs())
    runs_tab.render_runs_tab()
