"""The pseudo-locale check (issue 25): every page, and every Learn lesson, rendered with ``?lang=qps`` shows
no text that is neither translated (``⟦…⟧``) nor data (numbers, code, names)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cnndash.kernels import SAMPLE_PHOTOS
from cnndash.lessons.pool_norm_dropout import NORMS
from cnndash.single_layer import LAYER_KINDS
from cnndash.stack import COLUMNS, LAYER_TYPES, PRESETS
from tests.conftest import ROOT
from tests.pages.pseudo import unmarked, visible_text
from ui.i18n import PSEUDO


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


def render(page: str, query: dict | None = None) -> AppTest:
    """``page`` through the app (sidebar, navigation, page) in the pseudo-locale; no exception, no error."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"lang": PSEUDO, **(query or {})})
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


# Data each page shows untranslated: names of datasets, models, layers, presets, photos and PyTorch
# arguments (the Layer stack's columns are the arguments they set).
DATA_HOME = ["digits", "LeNet", "MNIST", "CIFAR", "shapes", "GPU", "CPU"]
DATA_CONV_CALCULATOR = [*LAYER_KINDS, *PRESETS, *SAMPLE_PHOTOS, *LAYER_TYPES, *COLUMNS, "CPU", "GPU"]


def test_home_is_translated_everywhere():
    assert unmarked(render("pages/home.py"), data=DATA_HOME) == []


def test_the_calculator_is_translated_everywhere():
    assert unmarked(render("pages/conv_calculator.py"), data=DATA_CONV_CALCULATOR) == []


DATA_LEARN = ["corr2d", "nn.Conv2d", "model.eval", "kernel", "padding", "stride", *NORMS]


@pytest.mark.parametrize("lesson", range(1, 11))
def test_every_learn_lesson_is_translated_everywhere(lesson):
    """Each lesson opened by its link (``?lesson=N``): AppTest cannot change a selectbox whose options are
    formatted (here, translated) from the values the app keeps, so each lesson is a fresh session."""
    at = render("pages/learn.py", {"lesson": str(lesson)})
    assert at.selectbox(key="learn-lesson").index == lesson - 1
    assert unmarked(at, data=DATA_LEARN) == []
