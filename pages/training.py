"""Training page: choose data, model and settings, train in the background, watch it live, search, manage runs.

The title, the tabs, the introduction and the form's first row (the dataset and pipeline boxes,
``ui.training.form_start``) are drawn before the engine is imported (PyTorch and torchvision take seconds on a
cold server): a first deep link shows them at once, and the rest of the form follows behind a spinner
(``benchmarks/first_paint.py``). ``app.py`` therefore does not wait for the engine before this page.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.text import N_
from ui import i18n
from ui.training import form_start

ui.route_guard()  # first (the imports above need no PyTorch): a first deep link's legacy run re-routes at once
_ = i18n.translator("training")
TABS = (N_("Train"), N_("Runs"))


def main() -> None:
    st.title(_("Training"))
    # Both tabs are drawn on every run (the Runs tab's search starts from the Train tab's form); the open
    # one stays open across a language switch (ui.kept_tabs).
    train_box, runs_box = ui.kept_tabs(TABS, "train-tab", _)
    with train_box:
        st.caption(
            _(
                "Pick a dataset and press **Train**: the model, image size, batch size, epochs and learning "
                "rate are suggested from the data for a one-minute run (why, under the settings; change any "
                "of them). Training runs in the background, so you can reload the page or open it in a "
                "second tab and still follow it."
            )
        )
        start = form_start.first_row()  # the dataset and pipeline boxes, without PyTorch
        with st.spinner(
            _("Loading PyTorch: the suggested settings, what the model sees and the runs follow…")
        ):
            ui.wait_for_background_imports()  # never beside the background import (see ui.background)
            from ui.training import page  # the engine: imported here, after the first row is drawn

        config = page.train_tab(start)
    with runs_box:
        page.runs_and_search(config)


main()
