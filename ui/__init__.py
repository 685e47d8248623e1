"""The Streamlit layer: what every page shares, and one subpackage per page holding that page's parts.

Shared here: the page registry and the deep-link guard (``navigation``), the sidebar and CSS
(``sidebar``), upload names as text (``text``, ``md``, ``plain``; counts with ``plural``), the workspace — what the person has chosen, across pages,
reloads and links (``workspace``) —, the language of every page (``i18n``: ``translator(domain)``), the user-error boundary and kept widget preferences (``state``), the
cached model, dataset and prediction loaders (``loaders``), and the engine imported in
the background (``background``). Page parts: ``ui.calculator``, ``ui.learn``, ``ui.data``,
``ui.training``, ``ui.evaluation``, ``ui.gradcam``, and the export panel two pages show
(``export_panel``).

The names below are re-exported so a page reads ``ui.keep(…)``, ``ui.md(…)``. No engine decision lives
in ``ui``: it draws widgets and calls ``cnndash``. Streamlit is imported only here, in ``pages/`` and in
``app.py``; the engine never imports it.
"""

from __future__ import annotations

from cnndash.text import plural
from ui import i18n, workspace
from ui.background import start as start_background_imports
from ui.background import wait_for_background_imports, warm_up
from ui.loaders import (
    dataset_stamp,
    image_types,
    load_dataset,
    load_model,
    predictions,
    run_dataset,
    run_results_key,
)
from ui.navigation import PAGES, route_guard, sections, through_app
from ui.sidebar import page_style, render_language_switch, render_sidebar
from ui.state import error_text, keep, kept_tabs, phrase_text, user_errors
from ui.text import md, plain, text

__all__ = [
    "PAGES",
    "dataset_stamp",
    "error_text",
    "i18n",
    "image_types",
    "keep",
    "kept_tabs",
    "load_dataset",
    "load_model",
    "md",
    "page_style",
    "phrase_text",
    "plain",
    "plural",
    "predictions",
    "render_language_switch",
    "render_sidebar",
    "route_guard",
    "run_dataset",
    "run_results_key",
    "sections",
    "start_background_imports",
    "text",
    "through_app",
    "user_errors",
    "wait_for_background_imports",
    "warm_up",
    "workspace",
]
