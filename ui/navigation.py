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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import streamlit as st

from cnndash.text import N_
from ui import workspace
from ui.i18n import translator

log = logging.getLogger("cnndash.ui")
_ = translator("common")

# The pages: file, title, icon, URL path (Home is the default page, at the root).
_PAGE_SPECS = {
    "home": ("pages/home.py", N_("Home"), ":material/home:", None),
    "learn": ("pages/learn.py", N_("Learn"), ":material/school:", "learn"),
    "calculator": ("pages/conv_calculator.py", N_("Conv calculator"), ":material/calculate:", "calculator"),
    "data": ("pages/data_augmentation.py", N_("Data & augmentation"), ":material/photo_library:", "data"),
    "training": ("pages/training.py", N_("Training"), ":material/model_training:", "training"),
    "evaluation": ("pages/evaluation.py", N_("Evaluation"), ":material/fact_check:", "evaluation"),
    "gradcam": ("pages/grad_cam.py", N_("Grad-CAM"), ":material/visibility:", "gradcam"),
}
# The sidebar's sections, in order, and their pages.
_SECTION_SPECS = {
    N_("Start"): ("home",),
    N_("Learn"): ("calculator", "learn"),
    N_("Build"): ("data", "training"),
    N_("Inspect"): ("evaluation", "gradcam"),
}


def _page(key: str, title: str) -> st.Page:
    path, _title, icon, url_path = _PAGE_SPECS[key]
    if url_path is None:
        return st.Page(path, title=title, icon=icon, default=True)
    return st.Page(path, title=title, icon=icon, url_path=url_path)


class _Pages(Mapping[str, st.Page]):
    """The pages by key, for st.page_link / st.switch_page (which find a page by its URL path), made when
    asked for: an ``st.Page`` made outside a script run (a test importing ``ui``) is unusable."""

    def __getitem__(self, key: str) -> st.Page:
        return _page(key, _(_PAGE_SPECS[key][1]))

    def __iter__(self) -> Iterator[str]:
        return iter(_PAGE_SPECS)

    def __len__(self) -> int:
        return len(_PAGE_SPECS)


PAGES = _Pages()


def sections() -> dict[str, list[st.Page]]:
    """The sidebar's sections and pages, titled in the language of this run (new objects every run: the
    module-level :data:`PAGES` are shared by every session, whatever its language)."""
    return {
        _(section): [_page(key, _(_PAGE_SPECS[key][1])) for key in keys]
        for section, keys in _SECTION_SPECS.items()
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
    st.navigation(sections())  # what app.py's first run does: the server leaves the legacy mode
    st.rerun()
