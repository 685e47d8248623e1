"""The fastest first win, one click from Home: LeNet on the built-in ``digits`` (8×8 handwritten digits,
no download) trains to about 98 % validation accuracy in seconds on a CPU.

:func:`start_first_run` starts it in the background like the Training page's Train button (same registry,
same refusal while another run or a label check trains), puts its settings in the Training form, and opens
the Training page, whose live view follows it.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.jobs.registry import get_registry
from cnndash.training.loops import TrainConfig
from ui.training.auto_view import suggestion
from ui.training.form_start import show_run_settings

FIRST_DATASET = "digits"


def first_run_config() -> TrainConfig:
    """The one-click choice for digits (the Training form's suggestion, ``train --model auto``'s): LeNet."""
    defaults = TrainConfig(dataset=FIRST_DATASET)
    return suggestion(FIRST_DATASET, val_fraction=defaults.val_fraction, seed=defaults.seed).config


def start_first_run() -> None:
    """Train :func:`first_run_config` in the background and open the Training page on it; a user error (a run
    already training, a label check: the jobs rule) is shown where the button is."""
    with ui.user_errors():
        job = get_registry().start(first_run_config())
        show_run_settings(job)  # the Training form opens on its settings
        st.switch_page(ui.PAGES["training"])
