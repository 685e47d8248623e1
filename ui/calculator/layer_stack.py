"""The conv calculator's Layer stack tab: a preset (LeNet-5, AlexNet, VGG-16, …) and its input shape, the
stack as an editable table, its shape trace (output shape, parameters, MACs, receptive field and jump per
layer, or the diagnosis of the layer that fails), a shape chart, and the stack as PyTorch code to download.

Parsing, tracing (on the meta device) and the code come from :mod:`cnndash.stack`, the chart from
:mod:`cnndash.plots.calculator`; traces and code are cached by the table's JSON. :func:`open_preset` is
how another page (Learn's classic networks) puts a preset in the editor.

The preset, the input, the shortcut and the edited rows are the workspace's ``stack`` choice
(``ui.workspace``): they survive a page switch and a reload and travel in a link. Rows read from a URL are
used only when every cell is one a person could type (:func:`clean_rows`), since a trace's diagnosis
quotes them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pandas as pd
import streamlit as st

import ui
from cnndash import stack as layers
from cnndash.plots import calculator as plots_arith
from cnndash.text import N_
from cnndash.trace import ShapeTrace
from ui.calculator.formatting import dims, human

_ = ui.i18n.translator("calculator")

DEFAULT_PRESET = "LeNet-5 (1×28×28)"
# The trace table's columns, keyed as built, with the header a person reads.
TRACE_COLUMNS = {
    "layer": N_("layer"),
    "type": N_("type"),
    "output shape": N_("output shape"),
    "params": N_("params"),
    "MACs": N_("MACs"),
    "receptive field": N_("receptive field"),
    "jump": N_("jump"),
}
MAX_ROWS = 200  # rows of an edited stack kept in the workspace (VGG-16 has 39)
# A text cell as a person types it: a size (3, 3x5, 2*2, -1), or a word the stack reads.
_CELL_TEXT = re.compile(r"^[0-9 x×*,-]{0,24}$|^(same|valid|yes|no)$")
# The editor's columns are shared by all rows, so a flag cannot be a checkbox on some rows only: bias and
# ceil_mode are yes/no choices, filled in on the rows whose layer reads them and blank on the others.
FLAGS = {"bias": True, "ceil_mode": False}  # the default of a blank cell


def _column_config() -> dict[str, Any]:
    """The editor's columns: the layer, in and out headers in the person's language; the others are the
    PyTorch arguments they set, named as in code."""
    yes_no = ["yes", "no"]  # cell values the stack parses: kept as typed (docs/calculator.md)
    text_column, number_column = st.column_config.TextColumn, st.column_config.NumberColumn
    return {
        "layer": st.column_config.SelectboxColumn(
            _("layer"), options=list(layers.LAYER_TYPES), required=True, width=150
        ),
        "in": number_column(
            _("in"),
            help=_("in_channels / in_features / num_features — blank: inferred"),
            min_value=1,
            step=1,
            width=70,
        ),
        "out": number_column(
            _("out"),
            help=_("out_channels / out_features / AdaptiveAvgPool2d output size"),
            min_value=1,
            step=1,
            width=70,
        ),
        "kernel": text_column("kernel", help=_("3, or 3x5 for height × width"), width=80),
        "stride": text_column("stride", help=_("blank: 1 (pools: the kernel size)"), width=80),
        "padding": text_column("padding", help=_('number, 3x5, or for Conv2d "same"/"valid"'), width=92),
        "dilation": text_column("dilation", help=_("blank: 1"), width=90),
        "groups": number_column("groups", min_value=1, step=1, help=_("blank: 1"), width=85),
        "output_padding": text_column("output_padding", help=_("ConvTranspose2d only"), width=135),
        "ceil_mode": st.column_config.SelectboxColumn(
            "ceil_mode", options=yes_no, help=_("MaxPool2d / AvgPool2d only; blank: no"), width=110
        ),
        "bias": st.column_config.SelectboxColumn(
            "bias", options=yes_no, help=_("Conv2d / ConvTranspose2d / Linear only; blank: yes"), width=70
        ),
        "p": number_column("p", min_value=0.0, max_value=1.0, help=_("Dropout probability"), width=60),
    }


ROW_HEIGHT = 35  # px; the browser test computes cell positions from it
# Widths fit each header with its edit icon; bias and ceil_mode come before the rarely used output_padding
# and p, so that at 1400 px (sidebar open) every column a common layer uses is in view without scrolling.
COLUMN_ORDER = [c for c in layers.COLUMNS if c not in ("output_padding", "p")] + ["output_padding", "p"]


def open_preset(name: str) -> None:
    """Put preset ``name`` in the editor: its input shape and shortcut too, in a fresh editor (no edits)."""
    state = st.session_state
    preset = layers.PRESETS[name]
    state["stack-preset"] = name
    state["stack-in-c"], state["stack-in-h"], state["stack-in-w"] = preset.input_shape
    state["stack-residual"] = preset.residual
    state["stack-version"] = state.get("stack-version", 0) + 1
    ui.workspace.put("stack.rows", None)


def _load_preset() -> None:
    open_preset(st.session_state["stack-preset"])


def _flag(value: bool) -> str:
    return "yes" if value else "no"


def _table(rows: list[dict]) -> pd.DataFrame:
    """The editor's table of ``rows`` (missing cells blank; text columns as text)."""
    frame = pd.DataFrame([{column: row.get(column) for column in layers.COLUMNS} for row in rows])
    frame = frame.reindex(columns=list(layers.COLUMNS))
    for column in ("kernel", "stride", "padding", "dilation", "output_padding"):
        frame[column] = ["" if pd.isna(value) else str(value) for value in frame[column]]
    return frame


def _frame(preset: layers.Preset) -> pd.DataFrame:
    rows = []
    for row in preset.layers:
        full = {column: row.get(column) for column in layers.COLUMNS}
        uses = layers.USES.get(row.get("layer"), ())
        for flag, default in FLAGS.items():
            full[flag] = _flag(bool(row.get(flag, default))) if flag in uses else None
        rows.append(full)
    return _table(rows)


def _plain_cell(value: Any) -> Any:
    """A cell as the workspace keeps it: None for blank, whole floats as ints."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.item() if hasattr(value, "item") else value


def plain_rows(records: list[dict]) -> list[dict]:
    """The editor's records as plain JSON rows, blank cells left out."""
    return [
        {k: v for k, v in ((k, _plain_cell(v)) for k, v in row.items()) if v is not None} for row in records
    ]


def clean_rows(rows: Any) -> list[dict] | None:
    """``rows`` if every row names a layer type and every cell is a number or text a person could type into
    the editor (a size, same/valid, yes/no); None otherwise (rows from a URL are untrusted)."""
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        return None
    for row in rows:
        if (
            not isinstance(row, dict)
            or row.get("layer") not in layers.LAYER_TYPES
            or set(row) - set(layers.COLUMNS)
        ):
            return None
        for column, value in row.items():
            if column == "layer":
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (number and math.isfinite(value) and abs(value) < 1e9) and not (
                isinstance(value, str) and _CELL_TEXT.match(value)
            ):
                return None
    return rows


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
            {"layer": trace.failed_layer, "type": trace.failed_kind, "output shape": _("✗ fails — see above")}
        ]
    frame = pd.DataFrame(
        [
            {
                "layer": row.name,
                "type": row.kind,
                "output shape": dims(row.output_shape),
                "params": row.params,
                "MACs": row.macs,
                "receptive field": _("whole input")
                if row.receptive_field is None
                else dims(row.receptive_field),
                "jump": "" if row.jump is None else dims(f"{j:g}" for j in row.jump),
            }
            for row in trace.rows
        ]
        + failed,
        columns=list(TRACE_COLUMNS),
    )
    return frame.rename(columns={key: _(title) for key, title in TRACE_COLUMNS.items()})


@st.fragment
def _stack_code(code: str, failure: str) -> None:
    """The stack as PyTorch code, with its download off (and the reason shown) while the trace fails."""
    with st.expander(_("PyTorch code"), expanded=False):
        if failure:
            st.warning(
                _(
                    "This stack does not run on the input above (see the shape error), so the code is marked "
                    "as broken and the download is off until the trace succeeds."
                ),
                icon=":material/warning:",
            )
        st.code(code, language="python")
        st.download_button(
            _("Download model.py"),
            code,
            "model.py",
            "text/x-python",
            key="stack-download",
            disabled=bool(failure),
            help=_("Fix the shape error first.") if failure else None,
        )


def _stack_input() -> tuple[str, tuple[int, int, int], bool]:
    """The preset's name, the input shape (C, H, W) and whether the identity shortcut is on."""
    workspace = ui.workspace
    cols = st.columns([3, 1, 1, 1, 2])
    presets = list(layers.PRESETS)
    preset_name = cols[0].selectbox(
        _("Preset"),
        presets,
        on_change=_load_preset,
        **workspace.bind("stack.preset", "stack-preset", default=DEFAULT_PRESET, options=presets),
    )
    preset = layers.PRESETS[preset_name]

    def size(label: str, index: int, col) -> int:
        part = "chw"[index]

        def fits(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4096

        bound = workspace.bind(
            f"stack.{part}", f"stack-in-{part}", default=preset.input_shape[index], accept=fits
        )
        return int(col.number_input(label, 1, 4096, **bound))

    in_c, in_h, in_w = (
        size(_("Channels"), 0, cols[1]),
        size(_("Height"), 1, cols[2]),
        size(_("Width"), 2, cols[3]),
    )
    residual = cols[4].checkbox(
        _("Identity shortcut"),
        help=_("Wrap the stack as ReLU(stack(x) + x), a ResNet block"),
        **workspace.bind("stack.residual", "stack-residual", default=preset.residual, options=(True, False)),
    )
    return preset_name, (in_c, in_h, in_w), residual


def _edited_records(preset: layers.Preset) -> list[dict]:
    """The editor, opened on the preset (or on the rows edited before a page switch or a reload), and its
    rows as edited; a caption names cells a layer ignores."""
    state = st.session_state
    key = f"stack-editor-{state.setdefault('stack-version', 0)}"
    original = _frame(preset)
    if key not in state:  # a fresh editor: open it on the workspace's edited rows, if any
        state["stack-opened-on"] = clean_rows(ui.workspace.get("stack.rows"))
    rows = state.get("stack-opened-on")
    edited = st.data_editor(
        _table(rows) if rows else original,
        key=key,
        num_rows="dynamic",
        column_config=_column_config(),
        column_order=COLUMN_ORDER,
        hide_index=True,
        row_height=ROW_HEIGHT,
        placeholder="",
        width="stretch",
    )
    records = edited.to_dict("records")
    kept = plain_rows(records)
    ui.workspace.put("stack.rows", None if kept == plain_rows(original.to_dict("records")) else kept)
    if ignored := layers.ignored_cells(records):
        row_note = _("row {row} ({layer}): {columns}")
        notes = "; ".join(
            row_note.format(row=cells.row, layer=cells.layer, columns=", ".join(cells.columns))
            for cells in ignored
        )
        st.caption(":material/info: " + _("Ignored (the layer has no such argument): {notes}.", notes=notes))
    return records


def _trace_results(trace: ShapeTrace) -> None:
    """The trace's verdict, totals, per-layer table and shape chart."""
    if trace.ok:
        st.success(
            _("Output shape: **{shape}**", shape=dims(trace.output_shape)), icon=":material/check_circle:"
        )
    else:
        st.error(_("**Shape error.** {diagnosis}", diagnosis=diagnosis_text(trace)), icon=":material/error:")
    cols = st.columns(3)
    cols[0].metric(_("Output shape"), dims(trace.output_shape) if trace.ok else "—")
    if trace.ok:
        cols[1].metric(
            _("Parameters"), f"{trace.total_params:,}", help=_("sum(p.numel()) of the built model")
        )
        cols[2].metric(
            _("MACs"),
            human(trace.total_macs),
            help=_("{count:,} — torchinfo's count", count=trace.total_macs),
        )
    else:  # the layers before the failure are not the model: no total until the stack runs
        why = _("The stack fails, so there is no model to count yet; fix the shape error.")
        cols[1].metric(_("Parameters"), "—", help=why)
        cols[2].metric(_("MACs"), "—", help=why)
    st.dataframe(
        _trace_table(trace),
        key="stack-trace",
        width="stretch",
        hide_index=True,
        column_config={
            _(TRACE_COLUMNS["params"]): st.column_config.NumberColumn(format="localized"),
            _(TRACE_COLUMNS["MACs"]): st.column_config.NumberColumn(format="localized"),
        },
    )
    if trace.rows:
        st.plotly_chart(plots_arith.shape_chart(trace.rows, trace.input_shape, tr=_), key="stack-chart")


def diagnosis_text(trace: ShapeTrace) -> str:
    """Why the stack fails, in the person's language (the trace's diagnosis, translated)."""
    return ui.phrase_text(trace.why, "calculator") if trace.why is not None else (trace.diagnosis or "")


def layer_stack() -> None:
    """The Layer stack tab: preset and input, the editable stack, its trace and its code."""
    preset_name, input_shape, residual = _stack_input()
    preset = layers.PRESETS[preset_name]
    note = st.empty()  # drawn once the stack is known: the note describes the preset as published
    records = _edited_records(preset)
    unchanged = _title(preset_name, preset, records) == preset_name
    if preset.note and unchanged and (input_shape, residual) == (tuple(preset.input_shape), preset.residual):
        note.caption(_(preset.note))
    records_json = json.dumps(records, default=str)
    with ui.user_errors():
        trace = _trace(records_json, input_shape, residual)
        _trace_results(trace)
        failure = "" if trace.ok else (trace.diagnosis or "the shape trace fails")
        _stack_code(
            _code(records_json, input_shape, residual, _title(preset_name, preset, records), failure), failure
        )
