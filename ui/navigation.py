"""The app's pages and sections (one ``st.Page`` per file in ``pages/``), and the one workaround that keeps
a first deep link on the app's own navigation.

Streamlit 1.67 (the range pinned in requirements.txt) starts a server whose entry script sits next to a
``pages/`` folder in its legacy multipage mode, and leaves it only when ``st.navigation`` is first called.
A fresh server whose first request is a deep link (``/training``) therefore runs ``pages/training.py``
on its own — file names in the sidebar, no device panel, the narrow layout — instead of ``app.py``. The
public way out is the one ``app.py`` uses: call ``st.navigation``. :func:`route_guard` does that from a
page that finds it was not run through ``app.py`` and reruns, so the same request then renders the real
app on the same page (the legacy page and ``app.py``'s page share the URL path, hence the page id). The
browser test ``tests/e2e/test_deeplink.py`` starts a fresh server for exactly this case.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from ui import workspace

log = logging.getLogger("cnndash.ui")

# One st.Page per file, created once so that st.page_link / st.switch_page can refer to them.
PAGES = {
    "home": st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    "learn": st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
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

# The sidebar's sections, in order.
SECTIONS = {
    "Start": [PAGES["home"]],
    "Learn": [PAGES["calculator"], PAGES["learn"]],
    "Build": [PAGES["data"], PAGES["training"]],
    "Inspect": [PAGES["evaluation"], PAGES["gradcam"]],
}

_REROUTED = "cnndash-rerouted"
_app_run = threading.local()  # a script run runs in one thread: app.py marks its own here


@contextmanager
def through_app() -> Iterator[None]:
    """app.py runs the page inside this block: :func:`route_guard` then knows it came through app.py."""
    _app_run.active = True
    try:
        yield
    finally:
        _app_run.active = False


def route_guard() -> None:
    """Re-route a page that Streamlit ran without ``app.py`` (its legacy ``pages/`` mode) through it.

    Called first thing on every page. Once per session: a rerun drops the run's button clicks, and
    AppTest, which starts every run in the legacy mode, must get to the page after one rerun. Every page
    run also brings the workspace's choices into the URL (:func:`ui.workspace.sync`: a page switch
    empties it).
    """
    if getattr(_app_run, "active", False) or st.session_state.get(_REROUTED):
        workspace.sync()
        return
    log.info("a page ran without app.py (a first deep link in legacy pages/ mode): re-routing")
    st.session_state[_REROUTED] = True
    st.navigation(SECTIONS)  # what app.py's first run does: the server leaves the legacy mode
    st.rerun()
