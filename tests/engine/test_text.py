"""cnndash.text: counts with their plural, and names from uploads made inert for Plotly and Matplotlib."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib import cbook

from cnndash.text import mpl_text, plotly_text, plural, visible_controls
from tests.fixtures import HOSTILE_TEXTS


@pytest.mark.parametrize(
    ("count", "noun", "plural_noun", "expected"),
    [
        (0, "image", None, "0 images"),
        (1, "image", None, "1 image"),
        (2, "image", None, "2 images"),
        (1234, "image", None, "1,234 images"),
        (1, "class", "classes", "1 class"),
        (3, "class", "classes", "3 classes"),
    ],
)
def test_plural(count, noun, plural_noun, expected):
    assert plural(count, noun, plural_noun) == expected


def test_controls_are_shown_and_joiners_kept():
    assert visible_controls("photo\u202egpj.exe") == "photo⟨U+202E⟩gpj.exe"
    assert visible_controls("two\nlines\r\nhere\x1b[31m") == "two lines here⟨U+001B⟩[31m"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # an emoji sequence keeps its zero-width joiners
    assert visible_controls(family) == family
    assert visible_controls("שלום") == "שלום"  # right-to-left letters are text, not controls


# Plotly's text markup: tags, entities, LaTeX between dollars, %{…} placeholders in a hovertemplate.
PLOTLY_MARKUP = ("<", ">", "$", "%")


@given(st.text())
def test_plotly_text_has_no_markup_and_reads_back_as_the_name(name):
    shown = plotly_text(name)
    assert not any(ch in shown for ch in PLOTLY_MARKUP)
    assert html.unescape(shown) == visible_controls(name)  # what Plotly displays after decoding entities


@given(st.text())
def test_mpl_text_is_never_mathtext(name):
    assert not cbook.is_math_text(mpl_text(name))


def test_hostile_names_are_inert_for_plotly():
    for name in HOSTILE_TEXTS:
        shown = plotly_text(name)
        assert "<" not in shown and "$" not in shown
        assert html.unescape(shown) == visible_controls(name)


def test_axes_cut_long_names_but_keep_them_whole_as_values():
    from cnndash.text import TICK_CHARS, plotly_texts, plotly_ticks
    from tests.fixtures import LONG

    ticks = plotly_ticks([LONG, "<b>x</b>", "$" * 40])
    assert ticks["tickvals"] == plotly_texts([LONG, "<b>x</b>", "$" * 40])  # the categories themselves
    assert ticks["ticktext"][0] == LONG[: TICK_CHARS - 1] + "…"
    assert ticks["ticktext"][1] == "&lt;b&gt;x&lt;/b&gt;"
    assert ticks["ticktext"][2] == "&#36;" * (TICK_CHARS - 1) + "…"  # cut before escaping: no half entity
