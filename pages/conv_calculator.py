"""Conv calculator & architecture lab: one layer's arithmetic with a sliding-window picture, a layer-stack
tracer with presets and code export, and a kernel playground on a real photo.

Widgets and layout only; every number comes from ``cnndash.arith`` / ``cnndash.trace`` / ``cnndash.stack``
/ ``cnndash.kernels`` and every figure from ``cnndash.plots.calculator``. A widget change reruns arithmetic
only: each tab is an ``st.fragment`` (a change reruns its own tab), and stack traces (meta device),
photos and convolved images are cached.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import ui
from cnndash import arith, kernels
from cnndash import stack as layers
from cnndash.plots import calculator as plots_arith
from cnndash.preprocess import convert_mode, open_image
from cnndash.trace import ShapeTrace

ui.route_guard()

KINDS = ("Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d")
# ShapeError.argument -> the control a person should change.
CONTROLS = {
    "size": "Input height / Input width",
    "stride": "Stride",
    "padding": "Padding",
    "dilation": "Dilation",
    "output_padding": "Output padding",
    "groups": "Groups",
    "in_channels": "Input channels",
    "out_channels": "Output channels",
}
AXIS_NAMES = ("height", "width")


def control_hint(exc: arith.ShapeError) -> str:
    """Which control(s) to change for a ShapeError, in the page's own labels."""
    axis = AXIS_NAMES[exc.axis] if exc.axis is not None else None
    if exc.argument == "kernel_size":
        if axis is None:
            return "**Kernel height / Kernel width**"
        return f"**Kernel {axis}** (or Padding, Dilation, Input {axis})"
    if exc.argument == "output_padding" and axis is None:
        return "**Output padding**"
    return f"**{CONTROLS.get(exc.argument or '', 'the layer settings')}**"


def dims(shape) -> str:
    return "×".join(str(v) for v in shape)


def human(number: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= scale:
            return f"{number / scale:.2f} {unit}"
    return str(number)


# --------------------------------------------------------------------------------------------- single layer


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
        return cols[1].number_input("Padding", 0, 64, 0, key="conv-padding")
    mode = cols[0].radio(
        "Padding mode", ("number", "same", "valid"), horizontal=True, key="conv-padding-mode"
    )
    return cols[1].number_input("Padding", 0, 64, 0, key="conv-padding") if mode == "number" else mode


def _layer_settings() -> LayerSettings:
    kind = st.radio("Layer", KINDS, horizontal=True, key="conv-layer")
    cols = st.columns(4)
    size = (
        cols[0].number_input("Input height", 1, 4096, 37, key="conv-in-h"),
        cols[1].number_input("Input width", 1, 4096, 50, key="conv-in-w"),
    )
    in_c = cols[2].number_input("Input channels", 1, 4096, 3, key="conv-in-channels")
    layer = LayerSettings(kind, size, in_c, in_c, (1, 1), 1)
    if layer.is_conv:
        layer.out_c = cols[3].number_input("Output channels", 1, 4096, 8, key="conv-out-channels")
    cols = st.columns(4)
    layer.kernel = (
        cols[0].number_input("Kernel height", 1, 64, 3, key="conv-kernel-h"),
        cols[1].number_input("Kernel width", 1, 64, 3, key="conv-kernel-w"),
    )
    layer.stride = cols[2].number_input("Stride", 1, 64, 1, key="conv-stride")
    if kind != "AvgPool2d":
        layer.dilation = cols[3].number_input("Dilation", 1, 32, 1, key="conv-dilation")
    cols = st.columns(4)
    layer.padding = _padding_input(kind, cols)
    if layer.is_conv:
        layer.groups = cols[2].number_input("Groups", 1, 4096, 1, key="conv-groups")
        layer.bias = cols[3].checkbox("Bias", True, key="conv-bias")
    if kind == "ConvTranspose2d":
        layer.output_padding = cols[0].number_input("Output padding", 0, 63, 0, key="conv-output-padding")
    if kind in ("MaxPool2d", "AvgPool2d"):
        layer.ceil_mode = cols[2].checkbox("ceil_mode", False, key="conv-ceil-mode")
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
            )
        )


def _output_and_params(layer: LayerSettings) -> tuple[tuple[int, int], int] | None:
    """The output (height, width) and parameter count; None (with the control to change) when it fails."""
    with ui.user_errors():
        try:
            out_hw = _output_size(
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
            st.error(f"{exc}.  \nChange {control_hint(exc)}.", icon=":material/error:")
    return None


def _layer_metrics(layer: LayerSettings, out_hw: tuple[int, int], params: int) -> None:
    macs = 0
    if layer.is_conv:
        macs = arith.conv_macs(layer.in_c, layer.out_c, layer.kernel, out_hw, layer.groups, layer.bias)
    eff = arith.effective_kernel_size(layer.kernel, layer.dilation)
    if layer.kind == "ConvTranspose2d":
        field = tuple(math.ceil(e / layer.stride) for e in eff)
        field_help = "Input pixels one output pixel depends on: ceil(effective kernel / stride) per axis."
    else:
        field = eff
        field_help = "Input pixels one output pixel sees: the effective kernel d·(k−1)+1 per axis."
    cols = st.columns(4)
    cols[0].metric("Output shape", dims((layer.out_c, *out_hw)), help="channels × height × width (batch 1)")
    cols[1].metric("Parameters", f"{params:,}", help="weights + biases; pools have none")
    cols[2].metric("MACs", human(macs), help="(weights + biases) × output positions, as torchinfo counts")
    cols[3].metric("Receptive field", dims(field), help=field_help)
    if layer.is_conv and layer.groups > 1:
        st.caption(
            f"groups={layer.groups}: each output channel sees {layer.in_c // layer.groups} of the "
            f"{layer.in_c} input channels."
        )


def _window_position(out_hw: tuple[int, int]) -> list[int]:
    """The output cell (row, column) the window is drawn for, with a Next button."""
    oh, ow = out_hw
    position = []
    cols = st.columns([5, 5, 2], vertical_alignment="bottom")
    cols[2].button(
        "Next position",
        key="window-next",
        icon=":material/skip_next:",
        on_click=_next_position,
        args=(oh, ow),
        help="Step the window to the next output cell (row by row)",
    )
    for col, label, key, limit in (
        (cols[0], "Output row", "window-row", oh),
        (cols[1], "Output column", "window-col", ow),
    ):
        if limit == 1:
            position.append(0)
            continue
        if st.session_state.get(key, 0) > limit - 1:
            st.session_state[key] = limit - 1
        position.append(col.slider(label, 0, limit - 1, 0, key=key))
    return position


def _sliding_window(layer: LayerSettings, out_hw: tuple[int, int]) -> None:
    st.subheader("Sliding window")
    position = _window_position(out_hw)
    legend = "Orange: kernel taps · pale orange: cells a dilated kernel skips · grey: padding."
    stride, dilation, padding = (layer.stride,) * 2, (layer.dilation,) * 2, layer.padding
    if layer.kind != "ConvTranspose2d":
        figure = plots_arith.sliding_window_figure(
            layer.size, layer.kernel, stride, padding, dilation, out_hw, position
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
        )
        if figure is None:
            st.info(
                f"With padding {padding} > dilation·(kernel − 1) the equivalent convolution crops the "
                "upsampled input instead of padding it; lower the padding to see the picture.",
                icon=":material/info:",
            )
            return
        legend = (
            "A transposed convolution equals a stride-1 convolution with the flipped kernel over the input "
            f"with {layer.stride - 1} zero(s) (white) inserted between pixels and dilation·(k−1) − padding of "
            "padding (+ output_padding at the bottom/right). " + legend
        )
    st.plotly_chart(figure, key="window-figure", config={"displayModeBar": False})
    st.caption(legend)


@st.fragment
def single_layer() -> None:
    layer = _layer_settings()
    _formulas(layer)
    result = _output_and_params(layer)
    if result is None:
        return
    out_hw, params = result
    _layer_metrics(layer, out_hw, params)
    _sliding_window(layer, out_hw)


def _next_position(rows: int, cols: int) -> None:
    """Advance the sliding-window position one output cell, row by row, wrapping at the end."""
    index = st.session_state.get("window-row", 0) * cols + st.session_state.get("window-col", 0) + 1
    row, col = divmod(index % (rows * cols), cols)
    st.session_state["window-row"], st.session_state["window-col"] = min(row, rows - 1), col


def _output_size(kind, size, kernel, stride, padding, dilation, output_padding, ceil_mode):
    if kind == "Conv2d":
        return arith.conv_output_size(size, kernel, stride, padding, dilation)
    if kind == "ConvTranspose2d":
        return arith.conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation)
    if kind == "MaxPool2d":
        return arith.pool_output_size(size, kernel, stride, padding, dilation, ceil_mode)
    return arith.avg_pool_output_size(size, kernel, stride, padding, ceil_mode)


# ---------------------------------------------------------------------------------------------- layer stack

DEFAULT_PRESET = "LeNet-5 (1×28×28)"


def _load_preset() -> None:
    preset = layers.PRESETS[st.session_state["stack-preset"]]
    st.session_state["stack-in-c"], st.session_state["stack-in-h"], st.session_state["stack-in-w"] = (
        preset.input_shape
    )
    st.session_state["stack-residual"] = preset.residual
    st.session_state["stack-version"] = st.session_state.get("stack-version", 0) + 1


# The editor's columns are shared by all rows, so a flag cannot be a checkbox on some rows only: bias and
# ceil_mode are yes/no choices, filled in on the rows whose layer reads them and blank on the others.
FLAGS = {"bias": True, "ceil_mode": False}  # the default of a blank cell


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def _frame(preset: layers.Preset) -> pd.DataFrame:
    rows = []
    for row in preset.layers:
        full = {column: row.get(column) for column in layers.COLUMNS}
        uses = layers.USES.get(row.get("layer"), ())
        for flag, default in FLAGS.items():
            full[flag] = _flag(bool(row.get(flag, default))) if flag in uses else None
        rows.append(full)
    frame = pd.DataFrame(rows, columns=list(layers.COLUMNS))
    for column in ("kernel", "stride", "padding", "dilation", "output_padding"):
        frame[column] = ["" if pd.isna(value) else str(value) for value in frame[column]]
    return frame


@st.cache_data(show_spinner=False, max_entries=64)
def _trace(records_json: str, input_shape: tuple[int, int, int], residual: bool) -> ShapeTrace:
    return layers.trace_stack(json.loads(records_json), input_shape, residual=residual)


@st.cache_data(show_spinner=False, max_entries=64)
def _code(
    records_json: str, input_shape: tuple[int, int, int], residual: bool, title: str, failure: str = ""
) -> str:
    return layers.stack_code(
        json.loads(records_json), input_shape, residual=residual, title=title, failure=failure
    )


def _title(preset_name: str, preset: layers.Preset, records: list[dict]) -> str:
    """The preset's name while the stack is the preset; otherwise say it was edited."""
    if not records:
        return "Layer stack"
    original = json.dumps(_frame(preset).to_dict("records"), default=str)
    if json.dumps(records, default=str) == original:
        return preset_name
    return f"Layer stack (edited from {preset_name})"


def _trace_table(trace: ShapeTrace) -> pd.DataFrame:
    """One row per traced layer, plus a last row marking the failing layer when there is one."""
    failed = []
    if not trace.ok and trace.failed_layer:
        failed = [
            {"layer": trace.failed_layer, "type": trace.failed_kind, "output shape": "✗ fails — see above"}
        ]
    return pd.DataFrame(
        [
            {
                "layer": row.name,
                "type": row.kind,
                "output shape": dims(row.output_shape),
                "params": row.params,
                "MACs": row.macs,
                "receptive field": "whole input"
                if row.receptive_field is None
                else dims(row.receptive_field),
                "jump": "" if row.jump is None else dims(f"{j:g}" for j in row.jump),
            }
            for row in trace.rows
        ]
        + failed,
        columns=["layer", "type", "output shape", "params", "MACs", "receptive field", "jump"],
    )


def _ignored_cells(records: list[dict]) -> str:
    """Cells filled in on rows whose layer does not read that column, as "row 3 (MaxPool2d): bias"."""
    notes = []
    for number, record in enumerate(records, start=1):
        uses = layers.USES.get(record.get("layer"), None)
        if uses is None:
            continue
        extra = [
            column
            for column in layers.COLUMNS
            if column != "layer" and column not in uses and not _blank(record.get(column))
        ]
        if extra:
            notes.append(f"row {number} ({record['layer']}): {', '.join(extra)}")
    return "; ".join(notes)


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or bool(pd.isna(value))


COLUMN_CONFIG = {
    "layer": st.column_config.SelectboxColumn(
        "layer", options=list(layers.LAYER_TYPES), required=True, width=150
    ),
    "in": st.column_config.NumberColumn(
        "in", help="in_channels / in_features / num_features — blank: inferred", min_value=1, step=1, width=70
    ),
    "out": st.column_config.NumberColumn(
        "out",
        help="out_channels / out_features / AdaptiveAvgPool2d output size",
        min_value=1,
        step=1,
        width=70,
    ),
    "kernel": st.column_config.TextColumn("kernel", help="3, or 3x5 for height × width", width=80),
    "stride": st.column_config.TextColumn("stride", help="blank: 1 (pools: the kernel size)", width=80),
    "padding": st.column_config.TextColumn(
        "padding", help='number, 3x5, or for Conv2d "same"/"valid"', width=92
    ),
    "dilation": st.column_config.TextColumn("dilation", help="blank: 1", width=90),
    "groups": st.column_config.NumberColumn("groups", min_value=1, step=1, help="blank: 1", width=85),
    "output_padding": st.column_config.TextColumn("output_padding", help="ConvTranspose2d only", width=135),
    "ceil_mode": st.column_config.SelectboxColumn(
        "ceil_mode", options=["yes", "no"], help="MaxPool2d / AvgPool2d only; blank: no", width=110
    ),
    "bias": st.column_config.SelectboxColumn(
        "bias", options=["yes", "no"], help="Conv2d / ConvTranspose2d / Linear only; blank: yes", width=70
    ),
    "p": st.column_config.NumberColumn(
        "p", min_value=0.0, max_value=1.0, help="Dropout probability", width=60
    ),
}
ROW_HEIGHT = 35  # px; the browser test computes cell positions from it
# Widths fit each header with its edit icon; bias and ceil_mode come before the rarely used output_padding
# and p, so that at 1400 px (sidebar open) every column a common layer uses is in view without scrolling.
COLUMN_ORDER = [c for c in layers.COLUMNS if c not in ("output_padding", "p")] + ["output_padding", "p"]


@st.fragment
def _stack_code(code: str, failure: str) -> None:
    """The stack as PyTorch code, with its download off (and the reason shown) while the trace fails."""
    with st.expander("PyTorch code", expanded=False):
        if failure:
            st.warning(
                "This stack does not run on the input above (see the shape error), so the code is marked "
                "as broken and the download is off until the trace succeeds.",
                icon=":material/warning:",
            )
        st.code(code, language="python")
        st.download_button(
            "Download model.py",
            code,
            "model.py",
            "text/x-python",
            key="stack-download",
            disabled=bool(failure),
            help="Fix the shape error first." if failure else None,
        )


def layer_stack() -> None:
    if "stack-preset" not in st.session_state:
        st.session_state["stack-preset"] = DEFAULT_PRESET
        _load_preset()
    cols = st.columns([3, 1, 1, 1, 2])
    preset_name = cols[0].selectbox(
        "Preset", list(layers.PRESETS), key="stack-preset", on_change=_load_preset
    )
    preset = layers.PRESETS[preset_name]
    in_c = cols[1].number_input("Channels", 1, 4096, key="stack-in-c")
    in_h = cols[2].number_input("Height", 1, 4096, key="stack-in-h")
    in_w = cols[3].number_input("Width", 1, 4096, key="stack-in-w")
    residual = cols[4].checkbox(
        "Identity shortcut", key="stack-residual", help="Wrap the stack as ReLU(stack(x) + x), a ResNet block"
    )
    if preset.note:
        st.caption(preset.note)
    edited = st.data_editor(
        _frame(preset),
        key=f"stack-editor-{st.session_state['stack-version']}",
        num_rows="dynamic",
        column_config=COLUMN_CONFIG,
        column_order=COLUMN_ORDER,
        hide_index=True,
        row_height=ROW_HEIGHT,
        placeholder="",
        width="stretch",
    )
    records = edited.to_dict("records")
    if ignored := _ignored_cells(records):
        st.caption(f":material/info: Ignored (the layer has no such argument): {ignored}.")
    records_json = json.dumps(records, default=str)
    input_shape = (int(in_c), int(in_h), int(in_w))
    with ui.user_errors():
        trace = _trace(records_json, input_shape, residual)
        if trace.ok:
            st.success(f"Output shape: **{dims(trace.output_shape)}**", icon=":material/check_circle:")
        else:
            st.error(f"**Shape error.** {trace.diagnosis}", icon=":material/error:")
        cols = st.columns(3)
        cols[0].metric("Output shape", dims(trace.output_shape) if trace.ok else "—")
        cols[1].metric("Parameters", f"{trace.total_params:,}", help="sum(p.numel()) of the built model")
        cols[2].metric("MACs", human(trace.total_macs), help=f"{trace.total_macs:,} — torchinfo's count")
        st.dataframe(
            _trace_table(trace),
            key="stack-trace",
            width="stretch",
            hide_index=True,
            column_config={
                "params": st.column_config.NumberColumn(format="localized"),
                "MACs": st.column_config.NumberColumn(format="localized"),
            },
        )
        if trace.rows:
            st.plotly_chart(plots_arith.shape_chart(trace.rows, trace.input_shape), key="stack-chart")
        failure = "" if trace.ok else (trace.diagnosis or "the shape trace fails")
        _stack_code(
            _code(records_json, input_shape, residual, _title(preset_name, preset, records), failure), failure
        )


# ----------------------------------------------------------------------------------------- kernel playground


PLAYGROUND_SIDE = 320  # px: photos and uploads are shrunk to this long side (convolution stays instant)


@st.cache_data(show_spinner=False)
def _photo(name: str, grayscale: bool) -> np.ndarray:
    return _pixels(Image.fromarray(kernels.sample_photo(name, max_side=PLAYGROUND_SIDE)), grayscale)


@st.cache_data(show_spinner=False, max_entries=32)
def _upload(data: bytes, name: str, grayscale: bool) -> np.ndarray:
    image = convert_mode(open_image(data, name), "RGB")
    image.thumbnail((PLAYGROUND_SIDE, PLAYGROUND_SIDE), Image.Resampling.BILINEAR)
    return _pixels(image, grayscale)


def _pixels(image: Image.Image, grayscale: bool) -> np.ndarray:
    """The (H, W) or (H, W, 3) uint8 array the kernels take."""
    return np.asarray(convert_mode(image, "L") if grayscale else image)


@st.cache_data(show_spinner=False, max_entries=32)
def _convolve(image, kernel: tuple[tuple[float, ...], ...], stride: int, padding: int, dilation: int):
    """The displayed output as PNG bytes (encoded once, not on every rerun) and its size."""
    output = kernels.to_display(kernels.apply_kernel(image, kernel, stride, padding, dilation), kernel)
    return _png(output), output.shape[:2]


@st.cache_data(show_spinner=False, max_entries=32)
def _png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@st.fragment
def kernel_playground() -> None:
    cols = st.columns([2, 2, 1])
    source = cols[0].radio("Image", ("Sample photo", "Upload"), horizontal=True, key="kernel-source")
    gray = cols[2].toggle("Grayscale", key="kernel-grayscale")
    image = None
    with ui.user_errors():
        if source == "Sample photo":
            name = cols[1].selectbox("Photo", kernels.SAMPLE_PHOTOS, key="kernel-photo")
            image = _photo(name, gray)
        else:
            upload = cols[1].file_uploader("PNG or JPEG", type=ui.image_types(), key="kernel-upload")
            if upload is not None:
                image = _upload(upload.getvalue(), upload.name, gray)
    cols = st.columns(4)
    choice = cols[0].selectbox("Kernel", [*kernels.KERNELS, "custom"], key="kernel-name")
    stride = cols[1].number_input("Stride", 1, 16, 1, key="kernel-stride")
    padding = cols[2].number_input("Padding", 0, 32, 1, key="kernel-padding")
    dilation = cols[3].number_input("Dilation", 1, 16, 1, key="kernel-dilation")
    if choice == "custom":
        size = st.radio("Custom kernel size", (3, 5), horizontal=True, key="kernel-custom-size")
        start = [[1.0 if (r, c) == (size // 2, size // 2) else 0.0 for c in range(size)] for r in range(size)]
        table = st.data_editor(pd.DataFrame(start), key=f"kernel-custom-{size}", width="content")
        kernel = tuple(tuple(float(v) for v in row) for row in table.to_numpy())
    else:
        kernel = tuple(tuple(float(v) for v in row) for row in kernels.KERNELS[choice])
        st.dataframe(pd.DataFrame(kernel).round(3), width="content", key="kernel-weights")
    if image is None:
        st.info("Upload an image to convolve it.", icon=":material/upload:")
        return
    with ui.user_errors():
        shown, (out_h, out_w) = _convolve(image, kernel, stride, padding, dilation)
        left, right = st.columns(2)
        left.image(_png(image), caption=f"input {image.shape[0]}×{image.shape[1]}", width="stretch")
        right.image(shown, caption=f"output {out_h}×{out_w}", width="stretch")
        st.caption(
            "Each colour channel is convolved with the same kernel (F.conv2d, groups = channels). "
            "Edge kernels show |output| stretched to white; the others are clipped to 0–255."
        )


# ------------------------------------------------------------------------------------------------- page

st.title("Conv calculator")
st.caption(
    "Every output size below is PyTorch's own rule (checked against nn.Conv2d & co. on thousands of "
    "random configurations). Change a number and watch the shapes move."
)
single_tab, stack_tab, kernel_tab = st.tabs(["Single layer", "Layer stack", "Kernel playground"])
with single_tab:
    single_layer()
with stack_tab:
    layer_stack()
with kernel_tab:
    kernel_playground()
