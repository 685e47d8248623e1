"""The sidebar every page shares (compute device, the training run in progress, a running label check)
and the app's CSS."""

from __future__ import annotations

import sys

import streamlit as st

from ui.background import engine, engine_ready
from ui.text import text

SIDEBAR_POLL_SECONDS = 1.5  # the Training page's live view refreshes at the same pace
# The Evaluation page's Data view, which draws a running label check here. Looked up, not imported: it
# imports cleanlab, which no other page needs; a label check can only be running once it was loaded.
DATA_VIEW_MODULE = "ui.evaluation.data_view"

# Plotly draws its toolbar (the modebar) over the top-right corner of the figure, where the figures put
# their legends (and a user clicks a legend item to hide a trace). One rule for every chart of every page,
# instead of a config or a legend position per figure: the modebar is not drawn. What it offered stays:
# drag to zoom, double-click to reset, Streamlit's own full-screen button; the figures worth keeping have
# download buttons of their own (confusion matrix, Grad-CAM overlays). Moving it into a strip above the
# figure was tried: Streamlit clips it there.
_PAGE_STYLE = """<style>
.stPlotlyChart .modebar-container { display: none !important; }
</style>"""


def page_style() -> None:
    """The app's CSS (app.py calls this once per run, before the page)."""
    st.html(_PAGE_STYLE)


@st.cache_resource(show_spinner=False)
def _device_text() -> str:
    info = engine("device").describe_device()
    return f"**{info.kind.upper()}** — {info.description}"


def render_sidebar() -> None:
    with st.sidebar:
        st.caption("Compute device")
        if engine_ready.is_set():
            st.markdown(_device_text())
            render_active_run()
            (data_view := sys.modules.get(DATA_VIEW_MODULE)) and data_view.render_label_job_sidebar()
        else:  # the first paint after a start: fill the panel in once the engine is imported
            st.fragment(_device_pending, run_every=SIDEBAR_POLL_SECONDS)()


def _device_pending() -> None:
    if not engine_ready.is_set():
        st.markdown("detecting…")
        return
    st.rerun(scope="app")  # redraw the whole sidebar (device and active run) without polling


def render_active_run() -> None:
    """Show the training run in progress, if any, refreshed as the Training page's live view is."""
    jobs = sys.modules.get("cnndash.jobs.registry")
    if jobs is None or jobs.get_registry().active() is None:  # no jobs module: no job was ever started
        return
    st.fragment(_active_run_panel, run_every=SIDEBAR_POLL_SECONDS)()


def _active_run_panel() -> None:
    registry = engine("jobs.registry").get_registry()
    job = registry.active() or registry.latest()
    if job is None:
        return
    snap = job.snapshot()  # one snapshot for the text and the bar, as on the Training page
    st.caption("Active training run" if job.alive else "Last training run")
    st.markdown(f"{text(job.run_name)} — {text(snap.status_text())}")
    st.progress(min(max(snap.fraction, 0.0), 1.0))
