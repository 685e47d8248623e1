"""The Training page's Runs tab: every run in a table, their curves compared, resume / delete / export one."""

from __future__ import annotations

import streamlit as st

import ui
import ui_export
from cnndash import plots_train
from cnndash.jobs import get_registry
from cnndash.runs import Run, delete_run, list_runs
from cnndash.train import TrainConfig

COMPARED_RUNS = 3  # runs compared by default: the newest ones


def resume(run: Run) -> None:
    """Continue a stopped or failed run from its last checkpoint, in the background."""
    with ui.user_errors():
        config = TrainConfig.from_dict(run.config)
        get_registry().start(config, run_name=run.name, resume=True)
        st.rerun()


def _runs_table(runs: list[Run]) -> None:
    rows = []
    for run in runs:
        summary = run.summary or {}
        rows.append(
            {
                "run": run.name,
                "status": run.status,
                "model": run.config.get("model"),
                "dataset": run.config.get("dataset"),
                "val accuracy": summary.get("val_accuracy"),
                "best epoch": summary.get("best_epoch"),
                "epochs": summary.get("epochs"),
                "images/sec": summary.get("images_per_sec"),
                "seconds": summary.get("seconds"),
                "device": summary.get("device"),
            }
        )
    st.dataframe(
        rows,
        key="runs-table",
        hide_index=True,
        column_config={
            "val accuracy": st.column_config.ProgressColumn(
                "val accuracy", min_value=0.0, max_value=1.0, format="percent"
            ),
            "images/sec": st.column_config.NumberColumn(format="%.0f"),
            "seconds": st.column_config.NumberColumn(format="%.1f"),
        },
    )


def _compare_runs(by_name: dict[str, Run]) -> None:
    names = list(by_name)
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Compare runs", names, default=names[:COMPARED_RUNS], key="runs-compare")
    metric = c2.selectbox(
        "Metric",
        list(plots_train.METRIC_LABELS),
        key="runs-metric",
        format_func=plots_train.METRIC_LABELS.get,
    )
    if chosen:
        curves = {name: by_name[name].metrics() for name in chosen}
        st.plotly_chart(plots_train.compare_runs_figure(curves, metric), key="runs-compare-chart")


def _manage_run(by_name: dict[str, Run]) -> None:
    """Resume or delete one run (both in the runs folder, where list_runs found it)."""
    c1, c2, c3 = st.columns([3, 1, 1])
    target = c1.selectbox("Run", list(by_name), key="runs-target")
    if c2.button(
        "Resume",
        key="runs-resume",
        disabled=not by_name[target].resumable,
        icon=":material/replay:",
        help="Continue a stopped or failed run from its last checkpoint.",
    ):
        resume(by_name[target])
    confirm = c3.checkbox("Really delete", key="runs-delete-confirm")
    if st.button("Delete run", key="runs-delete", disabled=not confirm, icon=":material/delete:"):
        with ui.user_errors():
            delete_run(target)
            st.session_state.pop("runs-delete-confirm", None)
            st.toast(f"Deleted {target}")
            st.rerun()
    with st.expander(f"Export {target}", icon=":material/deployed_code:"):
        ui_export.render_export(by_name[target], key="runs-export")


def render_runs_tab() -> None:
    runs = list_runs()
    if not runs:
        st.info("No runs yet: train one in the **Train** tab.", icon=":material/info:")
        return
    _runs_table(runs)
    by_name = {run.name: run for run in runs}
    _compare_runs(by_name)
    st.divider()
    _manage_run(by_name)
