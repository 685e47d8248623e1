"""Training page: choose data, model and settings, train in the background, watch it live, manage runs."""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.jobs.registry import get_registry
from cnndash.runs import list_runs
from ui import i18n
from ui.training import runs_tab
from ui.training.form import end_run_view, run_settings, show_run_settings
from ui.training.live import live, saved_run
from ui.training.preflight_view import what_the_model_sees
from ui.training.results import results

ui.route_guard()
_ = i18n.translator("training")

STOP_WAIT_SECONDS = 10  # a stop takes effect within one batch


def _train_tab() -> None:
    st.caption(
        _(
            "Pick a dataset and a model and press **Train**: training runs in the background, so you can "
            "reload the page or open it in a second tab and still follow it. The defaults (digits + LeNet, "
            "10 epochs) train a ~98 % model in well under a minute on a CPU."
        )
    )
    registry = get_registry()
    active = registry.active()
    if active is not None:
        show_run_settings(active)  # a view of the run's settings, read-only while it trains
    else:
        end_run_view()
    config = pre = None
    processes = 1
    with ui.user_errors():
        config, processes = run_settings(viewing=active is not None)
    if config is not None:
        pre = what_the_model_sees(config, processes)
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
        st.rerun()  # redraw the buttons and show the stopped run's results
    if start and config is not None:
        with ui.user_errors():  # refused beside another training on the device or a label check
            job = registry.start(config, processes=processes)
            ui.workspace.put("run", job.run_name)  # Evaluation and Grad-CAM start on it
            st.rerun()  # redraw with Train disabled and the live view
    if active is not None:
        live(active.run_name)
    elif (latest := registry.latest()) is not None:
        results(latest.snapshot(), saved_run(latest))
    elif runs := list_runs(include_hidden=False):  # a restarted server: the newest run on disk
        results(None, runs[0])


def main() -> None:
    st.title(_("Training"))
    train_tab, runs_tab_box = st.tabs([_("Train"), _("Runs")])
    with train_tab:
        _train_tab()
    with runs_tab_box:
        runs_tab.render_runs_tab()


main()
