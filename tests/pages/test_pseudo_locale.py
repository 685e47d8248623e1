"""The pseudo-locale check (issue 25): every page, and every Learn lesson, rendered with ``?lang=qps`` shows
no text that is neither translated (``⟦…⟧``) nor data (numbers, code, names)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.pages.pseudo import unmarked, visible_text


def _mixed_page():
    import pandas as pd
    import plotly.graph_objects as go
    import streamlit as st

    st.title("⟦Title⟧")
    st.caption("⟦Stored as ⟦pets⟧: 3 images⟧ — `nn.Conv2d` 32×32 0.5")
    st.markdown("**⟦Loss⟧**: 0.25 :material/home: plain words here")
    st.radio("⟦Pick⟧", ["⟦One⟧", "Untranslated option", "LeNet"], help="A help text")
    st.button("⟦Go⟧")
    with st.expander("Open me"):
        st.write("x")
    st.dataframe(pd.DataFrame({"⟦class⟧": ["a"], "count": [1]}))
    st.plotly_chart(
        go.Figure(layout={"title": {"text": "Chart title"}, "xaxis": {"title": {"text": "⟦epoch⟧"}}})
    )


def test_unmarked_finds_every_visible_string_that_escaped_translation():
    at = AppTest.from_function(_mixed_page)
    at.run()
    assert "⟦Title⟧" in visible_text(at)
    assert unmarked(at, data=["LeNet"]) == [
        "**⟦Loss⟧**: 0.25 :material/home: plain words here",
        "Untranslated option",
        "A help text",
        "Open me",
        "count",
        "Chart title",
    ]
