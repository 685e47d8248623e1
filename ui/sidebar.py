"""The sidebar every page shares (the language switch, the compute device, every job running now: a training
run, a label check — all read through the one job registry) and the app's CSS."""

from __future__ import annotations

from typing import Any

import streamlit as st

from cnndash.text import N_, Phrase
from ui import i18n, workspace
from ui.background import engine, engine_ready
from ui.engine_text import engine_text
from ui.state import phrase_text
from ui.text import text

_ = i18n.translator("common")

SIDEBAR_POLL_SECONDS = 1.5  # the Training page's live view refreshes at the same pace
JOB_CAPTIONS = {"training": (N_("Active training run"), N_("Last training run")),
                "label_check": (N_("Label check (K-fold training)"), N_("Label check finished")),
                "search": (N_("Search (trials of the Runs tab)"), N_("Search finished"))}  # fmt: skip

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
def _device_info() -> Any:
    return engine("device").describe_device()


def _device_text() -> str:
    info = _device_info()
    if info.kind == "cpu":  # a GPU's description is its name and memory: said the same in any language
        description = _.plural("{n} thread · no GPU detected", "{n} threads · no GPU detected", info.threads)
    else:
        description = text(info.description)
    return f"**{info.kind.upper()}** — {description}"


def render_language_switch() -> None:
    """English / 简体中文, each named in itself; the choice is the workspace's ``lang`` (kept for the session,
    carried in the URL as ``?lang=zh-CN``). app.py draws it before the navigation, so the run the switch
    starts is already in the new language: one ordinary rerun, every other choice left as it was."""
    # Bound first: on the run a click starts, the choice moves here, so the label is in the new language too.
    bound = workspace.bind(
        "lang", "app-language", default=i18n.browser_language(), options=list(i18n.LANGUAGES)
    )
    st.sidebar.radio(
        _("Language"), list(i18n.LANGUAGES), format_func=i18n.LANGUAGES.__getitem__, horizontal=True, **bound
    )


def render_sidebar() -> None:
    with st.sidebar:
        st.caption(_("Compute device"))
        if engine_ready.is_set():
            st.markdown(_device_text())
            render_active_run()
        else:  # the first paint after a start: fill the panel in once the engine is imported
            st.fragment(_device_pending, run_every=SIDEBAR_POLL_SECONDS)()


def _device_pending() -> None:
    if not engine_ready.is_set():
        st.markdown(_("detecting…"))
        return
    st.rerun(scope="app")  # redraw the whole sidebar (device and active run) without polling


def render_active_run() -> None:
    """Show every job running now (training, label check; those of other processes included), refreshed as
    the Training page's live view is."""
    if not engine("jobs.registry").get_registry().running():
        return
    st.fragment(_jobs_panel, run_every=SIDEBAR_POLL_SECONDS)()


def _job_status(job: Any) -> str:
    """The job's one line of progress in the reader's language: a training job's from its template (its
    numbers filled in after translation), a label check's from its phrase."""
    snap = job.snapshot()
    if hasattr(snap, "status_template"):
        template, params = snap.status_template()
        return phrase_text(Phrase(template, **params), "engine")  # a failed job's error translated too
    return engine_text(job.status_text())


def _jobs_panel() -> None:
    registry = engine("jobs.registry").get_registry()
    running = registry.running()
    if not running and (latest := registry.latest()) is not None:
        running = [("training", latest.run_name, latest)]
    for kind, name, job in running:
        caption, ended = JOB_CAPTIONS[kind]
        st.caption(_(caption) if job.alive else _(ended))
        st.markdown(f"**{text(name)}** — {text(_job_status(job))}")
        st.progress(min(max(job.fraction_done(), 0.0), 1.0))
