"""The conv calculator's Single layer tab: one Conv2d, ConvTranspose2d, MaxPool2d or AvgPool2d set with
number inputs, its output-size formula per axis, its output shape, parameters, MACs and receptive field, and
a sliding-window picture with a Next position button. The settings are kept in the workspace
(:mod:`ui.calculator.kept`): they survive a page switch and a reload, and travel in a link.

Every number comes from :mod:`cnndash.single_layer` and :mod:`cnndash.arith` and every figure from
:mod:`cnndash.plots.calculator`; a setting PyTorch would refuse is shown as an error naming the control to
change (:func:`control_hint`). The tab is an ``st.fragment``: a change reruns this tab only.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

import ui
from cnndash import arith
from cnndash.plots import calculator as plots_arith
from cnndash.single_layer import LAYER_KINDS, layer_output_size, layer_receptive_field
from cnndash.text import N_
from ui.calculator.formatting import dims, human
from ui.calculator.kept import kept, number

_ = ui.i18n.translator("calculator")

# ShapeError.argument -> the control a person should change.
CONTROLS = {
    "size": N_("Input height / Input width"),
    "stride": N_("Stride"),
    "padding": N_("Padding"),
    "dilation": N_("Dilation"),
    "output_padding": N_("Output padding"),
    "groups": N_("Groups"),
    "in_channels": N_("Input channels"),
    "out_channels": N_("Output channels"),
}


def control_hint(exc: arith.ShapeError) -> str:
    """Which control(s) to change for a ShapeError, in the page's own labels."""
    if exc.argument == "kernel_size":
        if exc.axis is None:
            return "**" + _("Kernel height / Kernel width") + "**"
        if exc.axis == 0:
            return _("**Kernel height** (or Padding, Dilation, Input height)")
        return _("**Kernel width** (or Padding, Dilation, Input width)")
    if exc.argument == "output_padding" and exc.axis is None:
        return "**" + _("Output padding") + "**"
    return "**" + _(CONTROLS.get(exc.argument or "", N_("the layer settings"))) + "**"


@dataclass
class LayerSettings:
    """One layer as set in the Single layer tab (what does not apply to ``kind`` keeps its neutral value)."""

    kind: str
    size: tuple[int, int]  # input height, width
    in_c: int
    out_c: int
    kernel: tuple[int, int]
    stride: int
    dilation: int = 1
    padding: int | str = 0
    groups: int = 1
    output_padding: int = 0
    ceil_mode: bool = False
    bias: bool = True

    @property
    def is_conv(self) -> bool:
        return self.kind in ("Conv2d", "ConvTranspose2d")


def _padding_input(kind: str, cols) -> int | str:
    if kind != "Conv2d":
        return number(cols[1], _("Padding"), 0, 64, 0, "conv-padding")
    modes = ("number", "same", "valid")  # "same" and "valid" are PyTorch's own words: shown as code
    mode = cols[0].radio(
        _("Padding mode"),
        modes,
        format_func=lambda m: _("number") if m == "number" else f"`{m}`",
        horizontal=True,
        **kept("conv-padding-mode", "number", options=modes),
    )
    return number(cols[1], _("Padding"), 0, 64, 0, "conv-padding") if mode == "number" else mode


def _layer_settings() -> LayerSettings:
    kind = st.radio(
        _("Layer"), LAYER_KINDS, horizontal=True, **kept("conv-layer", LAYER_KINDS[0], options=LAYER_KINDS)
    )
    cols = st.columns(4)
    size = (
        number(cols[0], _("Input height"), 1, 4096, 37, "conv-in-h"),
        number(cols[1], _("Input width"), 1, 4096, 50, "conv-in-w"),
    )
    in_c = number(cols[2], _("Input channels"), 1, 4096, 3, "conv-in-channels")
    layer = LayerSettings(kind, size, in_c, in_c, (1, 1), 1)
    if layer.is_conv:
        layer.out_c = number(cols[3], _("Output channels"), 1, 4096, 8, "conv-out-channels")
    cols = st.columns(4)
    layer.kernel = (
        number(cols[0], _("Kernel height"), 1, 64, 3, "conv-kernel-h"),
        number(cols[1], _("Kernel width"), 1, 64, 3, "conv-kernel-w"),
    )
    layer.stride = number(cols[2], _("Stride"), 1, 64, 1, "conv-stride")
    if kind != "AvgPool2d":
        layer.dilation = number(cols[3], _("Dilation"), 1, 32, 1, "conv-dilation")
    cols = st.columns(4)
    layer.padding = _padding_input(kind, cols)
    if layer.is_conv:
        layer.groups = number(cols[2], _("Groups"), 1, 4096, 1, "conv-groups")
        layer.bias = cols[3].checkbox(_("Bias"), **kept("conv-bias", True))
    if kind == "ConvTranspose2d":
        layer.output_padding = number(cols[0], _("Output padding"), 0, 63, 0, "conv-output-padding")
    if kind in ("MaxPool2d", "AvgPool2d"):
        layer.ceil_mode = cols[2].checkbox("`ceil_mode`", **kept("conv-ceil-mode", False))
    return layer


def _formulas(layer: LayerSettings) -> None:
    for axis, size, k in (("H", layer.size[0], layer.kernel[0]), ("W", layer.size[1], layer.kernel[1])):
        st.latex(
            plots_arith.output_size_latex(
                layer.kind,
                axis,
                size,
                k,
                layer.stride,
                layer.padding,
                layer.dilation,
                layer.output_padding,
                layer.ceil_mode,
                tr=_,
            )
        )


def _output_and_params(layer: LayerSettings) -> tuple[tuple[int, int], int] | None:
    """The output (height, width) and parameter count; None (with the control to change) when it fails."""
    with ui.user_errors():
        try:
            out_hw = layer_output_size(
                layer.kind,
                layer.size,
                layer.kernel,
                layer.stride,
                layer.padding,
                layer.dilation,
                layer.output_padding,
                layer.ceil_mode,
            )
            params = (
                arith.conv_params(layer.in_c, layer.out_c, layer.kernel, layer.groups, layer.bias)
                if layer.is_conv
                else 0
            )
            return out_hw, params
        except arith.ShapeError as exc:
            message = ui.text(ui.error_text(exc))
            st.error(
                _("{error}.  \nChange {control}.", error=message, control=control_hint(exc)),
                icon=":material/error:",
            )
    return None


def _layer_metrics(layer: LayerSettings, out_hw: tuple[int, int], params: int) -> None:
    macs = 0
    if layer.is_conv:
        macs = arith.conv_macs(layer.in_c, layer.out_c, layer.kernel, out_hw, layer.groups, layer.bias)
    field = layer_receptive_field(layer.kind, layer.kernel, layer.stride, layer.dilation)
    if layer.kind == "ConvTranspose2d":
        field_help = _("Input pixels one output pixel depends on: ceil(effective kernel / stride) per axis.")
    else:
        field_help = _("Input pixels one output pixel sees: the effective kernel d·(k−1)+1 per axis.")
    cols = st.columns(4)
    cols[0].metric(
        _("Output shape"), dims((layer.out_c, *out_hw)), help=_("channels × height × width (batch 1)")
    )
    cols[1].metric(_("Parameters"), f"{params:,}", help=_("weights + biases; pools have none"))
    cols[2].metric(
        _("MACs"), human(macs), help=_("(weights + biases) × output positions, as torchinfo counts")
    )
    cols[3].metric(_("Receptive field"), dims(field), help=field_help)
    if layer.is_conv and layer.groups > 1:
        st.caption(
            _(
                "groups={groups}: each output channel sees {seen} of the {total} input channels.",
                groups=layer.groups,
                seen=layer.in_c // layer.groups,
                total=layer.in_c,
            )
        )


def _window_position(out_hw: tuple[int, int]) -> list[int]:
    """The output cell (row, column) the window is drawn for, with a Next button."""
    oh, ow = out_hw
    position = []
    cols = st.columns([5, 5, 2], vertical_alignment="bottom")
    cols[2].button(
        _("Next position"),
        key="window-next",
        icon=":material/skip_next:",
        on_click=_next_position,
        args=(oh, ow),
        help=_("Step the window to the next output cell (row by row)"),
    )
    for col, label, key, limit in (
        (cols[0], _("Output row"), "window-row", oh),
        (cols[1], _("Output column"), "window-col", ow),
    ):
        if limit == 1:
            position.append(0)
            continue
        if st.session_state.get(key, 0) > limit - 1:
            st.session_state[key] = limit - 1
        position.append(col.slider(label, 0, limit - 1, 0, key=key))
    return position


def _next_position(rows: int, cols: int) -> None:
    """Advance the sliding-window position one output cell, row by row, wrapping at the end."""
    index = st.session_state.get("window-row", 0) * cols + st.session_state.get("window-col", 0) + 1
    row, col = divmod(index % (rows * cols), cols)
    st.session_state["window-row"], st.session_state["window-col"] = min(row, rows - 1), col


def _sliding_window(layer: LayerSettings, out_hw: tuple[int, int]) -> None:
    st.subheader(_("Sliding window"))
    position = _window_position(out_hw)
    legend = _("Orange: kernel taps · pale orange: cells a dilated kernel skips · grey: padding.")
    stride, dilation, padding = (layer.stride,) * 2, (layer.dilation,) * 2, layer.padding
    if layer.kind != "ConvTranspose2d":
        figure = plots_arith.sliding_window_figure(
            layer.size, layer.kernel, stride, padding, dilation, out_hw, position, tr=_
        )
    else:
        figure = plots_arith.transposed_window_figure(
            layer.size,
            layer.kernel,
            stride,
            (padding,) * 2,
            (layer.output_padding,) * 2,
            dilation,
            out_hw,
            position,
            tr=_,
        )
        if figure is None:
            st.info(
                _(
                    "With padding {padding} > dilation·(kernel − 1) the equivalent convolution crops the "
                    "upsampled input instead of padding it; lower the padding to see the picture.",
                    padding=padding,
                ),
                icon=":material/info:",
            )
            return
        legend = (
            _(
                "A transposed convolution equals a stride-1 convolution with the flipped kernel over the input "
                "with {zeros} zero(s) (white) inserted between pixels and dilation·(k−1) − padding of "
                "padding (+ output_padding at the bottom/right). ",
                zeros=layer.stride - 1,
            )
            + legend
        )
    st.plotly_chart(figure, key="window-figure", config={"displayModeBar": False})
    st.caption(legend)


@st.fragment
def single_layer() -> None:
    """The Single layer tab: settings, formulas, metrics and the sliding window (reruns on its own)."""
    layer = _layer_settings()
    _formulas(layer)
    result = _output_and_params(layer)
    if result is None:
        return
    out_hw, params = result
    _layer_metrics(layer, out_hw, params)
    _sliding_window(layer, out_hw)
