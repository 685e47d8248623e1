"""Learn: the tutorials' lessons as small experiments, every number computed by ``cnndash.lessons`` and
checked there against ``torch.nn``. One render function per lesson, in ``ui.learn`` (``convolution``,
``pool_norm_dropout``, ``networks``); only the selected lesson runs."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

import ui
from ui.learn import convolution, networks, pool_norm_dropout, widgets

ui.route_guard()
_ = ui.i18n.translator("learn")

LESSONS: dict[str, Callable[[], None]] = {
    _("1 · Cross-correlation step by step"): convolution.cross_correlation,
    _("2 · Learning a kernel"): convolution.learning_a_kernel,
    _("3 · Padding and stride"): convolution.padding_and_stride,
    _("4 · Channels"): convolution.channels,
    _("5 · Convolution as matrix multiplication"): convolution.matrix_multiplication,
    _("6 · Pooling"): pool_norm_dropout.pooling,
    _("7 · Normalisation layers"): pool_norm_dropout.normalisation,
    _("8 · Dropout in train and eval"): pool_norm_dropout.dropout,
    _("9 · Classic networks"): networks.classic_networks,
    _("10 · What a trained network sees"): networks.trained_network,
}

st.title(_("Learn"))
st.caption(
    _(
        "The tutorials' lessons as small experiments; every number is computed by hand and checked against "
        "PyTorch."
    )
)
# The workspace keeps the lesson by number (``?lesson=3``); the picker shows its title in the person's
# language, so a switch of language keeps the lesson (the title is found again from the number).
TITLES = list(LESSONS)
lesson = st.selectbox(
    _("Lesson"),
    TITLES,
    **ui.workspace.bind(
        "lesson",
        "learn-lesson",
        default=TITLES[0],
        options=TITLES,
        convert=(
            lambda number: TITLES[number - 1] if number >= 1 else "",
            lambda title: TITLES.index(title) + 1,
        ),
    ),
)
widgets.start_run()
with ui.user_errors():
    LESSONS[lesson]()
