"""The sidebar every page shares (compute device, every job running now: a training run, a label check —
all read through the one job registry) and the app's CSS."""

from __future__ import annotations

import streamlit as st

from ui.background import engine, engine_ready
from ui.text import text

SIDEBAR_POLL_SECONDS = 1.5  # the Training page's live view refreshes at the same pace
JOB_CAPTIONS = {"training": ("Active training run", "Last training run"),
                "label_check": ("Label check (K-fold training)", "Label check finished")}  # fmt: skip

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
        else:  # the first paint after a start: fill the panel in once the engine is imported
            st.fragment(_device_pending, run_every=SIDEBAR_POLL_SECONDS)()


def _device_pending() -> None:
    if not engine_ready.is_set():
        st.markdown("detecting…")
        return
    st.rerun(scope="app")  # redraw the whole sidebar (device and active run) without polling


def render_active_run() -> None:
    """Show every job running now (training, label check; those of other processes included), refreshed as
    the Training page's live view is."""
    if not engine("jobs.registry").get_registry().running():
        return
    st.fragment(_jobs_panel, run_every=SIDEBAR_POLL_SECONDS)()


def _jobs_panel() -> None:
    registry = engine("jobs.registry").get_registry()
    running = registry.running()
    if not running and (latest := registry.latest()) is not None:
        running = [("training", latest.run_name, latest)]
    for kind, name, job in running:
        caption, ended = JOB_CAPTIONS[kind]
        st.caption(caption if job.alive else ended)
        st.markdown(f"**{text(name)}** — {text(job.status_text())}")
        st.progress(min(max(job.fraction_done(), 0.0), 1.0))
