"""cnndash — entry point: page config, navigation over ``pages/``, and the shared sidebar."""

from __future__ import annotations

import streamlit as st

import ui

st.set_page_config(
    page_title="cnndash — convolutional networks, end to end",
    page_icon=":material/grid_on:",
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = {
    "Start": [ui.PAGES["home"]],
    "Learn": [ui.PAGES["calculator"], ui.PAGES["learn"]],
    "Build": [ui.PAGES["data"], ui.PAGES["training"]],
    "Inspect": [ui.PAGES["evaluation"], ui.PAGES["gradcam"]],
}

navigation = st.navigation(PAGES)
ui.page_style()
ui.render_sidebar()
ui.wait_for_background_imports(navigation)
navigation.run()
ui.warm_up()  # after the page: see ui._WARM_UP_MODULES
