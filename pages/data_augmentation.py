"""Data & augmentation page: pick or upload a dataset, inspect it, and build an augmentation pipeline
with a seeded preview grid, code export and saving by name (the Training page lists saved pipelines)."""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.text import N_
from ui import i18n
from ui.data.augmentation import augmentation_tab
from ui.data.datasets import datasets_tab

ui.route_guard()
_ = i18n.translator("data")

# A radio rather than st.tabs: only the chosen section runs, so an upload does not also redraw the
# preview grid and vice versa. The section is a workspace choice: ``/data?section=augmentation`` opens the
# second one directly, and a reload stays on it.
SECTIONS = [N_("Datasets"), N_("Augmentation")]


def main() -> None:
    st.title(_("Data & augmentation"))
    section = st.radio(
        _("Section"),
        SECTIONS,
        format_func=_,
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
