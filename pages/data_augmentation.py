"""Data & augmentation page: pick or upload a dataset, inspect it, and build an augmentation pipeline
with a seeded preview grid, code export and saving by name (the Training page lists saved pipelines)."""

from __future__ import annotations

import streamlit as st

import ui
from ui.data.augmentation import augmentation_tab
from ui.data.datasets import datasets_tab

ui.route_guard()

# A radio rather than st.tabs: only the chosen section runs, so an upload does not also redraw the
# preview grid and vice versa. ``/data?section=augmentation`` opens the second one directly.
SECTIONS = ["Datasets", "Augmentation"]


def main() -> None:
    st.title("Data & augmentation")
    wanted = str(st.query_params.get("section", "")).capitalize()
    section = st.radio(
        "Section",
        SECTIONS,
        horizontal=True,
        label_visibility="collapsed",
        **ui.keep("data-section", wanted if wanted in SECTIONS else SECTIONS[0]),
    )
    if section == "Datasets":
        datasets_tab()
    else:
        augmentation_tab()


main()
