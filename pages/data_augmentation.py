"""Data & augmentation page: pick or upload a dataset, inspect it, and build an augmentation pipeline
with a seeded preview grid, code export and saving by name (the Training page lists saved pipelines)."""

from __future__ import annotations

import streamlit as st

import ui
from ui.data.augmentation import augmentation_tab
from ui.data.datasets import datasets_tab

ui.route_guard()

# A radio rather than st.tabs: only the chosen section runs, so an upload does not also redraw the
# preview grid and vice versa. The section is a workspace choice: ``/data?section=augmentation`` opens the
# second one directly, and a reload stays on it.
SECTIONS = ["Datasets", "Augmentation"]


def main() -> None:
    st.title("Data & augmentation")
    section = st.radio(
        "Section",
        SECTIONS,
        horizontal=True,
        label_visibility="collapsed",
        **ui.workspace.bind(
            "section",
            "data-section",
            default=SECTIONS[0],
            options=SECTIONS,
            convert=(str.capitalize, str.lower),
        ),
    )
    if section == "Datasets":
        datasets_tab()
    else:
        augmentation_tab()


main()
