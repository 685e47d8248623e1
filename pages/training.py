"""Training page: choose data, model and settings, train in the background, watch it live, search, manage runs.

The title, the tabs and the introduction are drawn before the engine is imported (PyTorch and torchvision take
seconds on a cold server): a first deep link shows them at once, and the form follows behind a spinner
(``benchmarks/first_paint.py``). ``app.py`` therefore does not wait for the engine before this page.
"""

from __future__ import annotations

import streamlit as st

import ui
from ui import i18n

ui.route_guard()  # before any engine import: a first deep link's legacy run re-routes at once
_ = i18n.translator("training")


def main() -> None:
    st.title(_("Training"))
    train_box, runs_box = st.tabs([_("Train"), _("Runs")])
    with train_box:
        st.caption(
            _(
                "Pick a dataset and press **Train**: the model, image size, batch size, epochs and learning "
                "rate are suggested from the data for a one-minute run (why, under the settings; change any "
                "of them). Training runs in the background, so you can reload the page or open it in a "
                "second tab and still follow it."
            )
        )
        with st.spinner(_("Loading PyTorch and the engine…")):
            ui.wait_for_background_imports()  # never beside the background import (see ui.background)
            from ui.training import page  # the engine: imported here, after the frame is drawn

        config = page.train_tab()
    with runs_box:
        page.runs_and_search(config)


main()
