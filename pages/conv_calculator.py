"""Conv calculator & architecture lab: one layer's arithmetic with a sliding-window picture, a layer-stack
tracer with presets and code export, and a kernel playground on a real photo.

Title and tabs only; each tab is drawn by its module in ``ui.calculator`` (``single_layer``,
``layer_stack``, ``kernel_playground``), whose numbers come from ``cnndash.single_layer`` /
``cnndash.arith`` / ``cnndash.stack`` / ``cnndash.kernels`` and whose figures from
``cnndash.plots.calculator``. A widget change reruns arithmetic only: the Single layer and Kernel
playground tabs are ``st.fragment``s (a change reruns its own tab), and stack traces (meta device),
photos and convolved images are cached.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.text import N_
from ui.calculator.kernel_playground import kernel_playground
from ui.calculator.layer_stack import layer_stack
from ui.calculator.single_layer import single_layer

ui.route_guard()
_ = ui.i18n.translator("calculator")
TABS = [N_("Single layer"), N_("Layer stack"), N_("Kernel playground")]

st.title(_("Conv calculator"))
st.caption(
    _(
        "Every output size below is PyTorch's own rule (checked against nn.Conv2d & co. on thousands of "
        "random configurations). Change a number and watch the shapes move."
    )
)
# Every tab runs (they are cheap, and a tab's widgets keep their values); the open one stays open across a
# language switch (ui.kept_tabs).
single_tab, stack_tab, kernel_tab = ui.kept_tabs(TABS, "calc-tab", _)
with single_tab:
    single_layer()
with stack_tab:
    layer_stack()
with kernel_tab:
    kernel_playground()
