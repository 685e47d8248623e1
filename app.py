"""cnndash — entry point: page config, navigation over ``pages/``, and the shared sidebar."""

from __future__ import annotations

import streamlit as st

import ui

ui.start_background_imports()  # the engine, while the page config and the sidebar are drawn
st.set_page_config(
    page_title="cnndash — convolutional networks, end to end",
    page_icon=":material/grid_on:",
    layout="wide",
    initial_sidebar_state="expanded",
)

navigation = st.navigation(ui.SECTIONS)
ui.page_style()
ui.render_sidebar()
# Home imports no engine; Training draws its frame first and waits behind a spinner (pages/training.py).
if navigation.title not in (ui.PAGES["home"].title, ui.PAGES["training"].title):
    ui.wait_for_background_imports()
with ui.through_app():
    navigation.run()
ui.warm_up()  # after the page: see ui.background.WARM_UP_MODULES
