"""Streamlit glue shared by the pages: the page registry, the sidebar, and the user-error boundary.

This is the only place besides ``pages/`` and ``app.py`` that imports Streamlit; the engine lives in
``cnndash/`` and never does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from cnndash.device import describe_device

log = logging.getLogger("cnndash.ui")

# One st.Page per file, created once so that st.page_link / st.switch_page can refer to them.
PAGES = {
    "home": st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    "calculator": st.Page(
        "pages/conv_calculator.py",
        title="Conv calculator",
        icon=":material/calculate:",
        url_path="calculator",
    ),
    "data": st.Page(
        "pages/data_augmentation.py",
        title="Data & augmentation",
        icon=":material/photo_library:",
        url_path="data",
    ),
    "training": st.Page(
        "pages/training.py", title="Training", icon=":material/model_training:", url_path="training"
    ),
    "evaluation": st.Page(
        "pages/evaluation.py", title="Evaluation", icon=":material/fact_check:", url_path="evaluation"
    ),
    "gradcam": st.Page(
        "pages/grad_cam.py", title="Grad-CAM", icon=":material/visibility:", url_path="gradcam"
    ),
}


@st.cache_resource(show_spinner=False)
def _device_text() -> str:
    info = describe_device()
    return f"**{info.kind.upper()}** — {info.description}"


def render_sidebar() -> None:
    with st.sidebar:
        st.caption("Compute device")
        st.markdown(_device_text())
        render_active_run()


def render_active_run() -> None:
    """Show the training run in progress, if any (filled in by the jobs module)."""
    try:
        from cnndash.jobs import get_registry
    except ImportError:  # training not available in this build
        return
    job = get_registry().active()
    if job is None:
        return
    st.caption("Active training run")
    st.markdown(f"`{job.run_name}` — {job.status_text()}")
    st.progress(min(max(job.fraction_done(), 0.0), 1.0))


@contextmanager
def user_errors() -> Iterator[None]:
    """Show errors a user can cause (``ValueError`` and subclasses) as ``st.error``, never a traceback."""
    try:
        yield
    except ValueError as exc:
        log.info("user error: %s", exc)
        st.error(str(exc), icon=":material/error:")
