"""Learn's lessons on whole networks (9–10): the classic networks (LeNet, AlexNet, VGG-16, NiN, and the
Inception, ResNet and DenseNet blocks) as shape traces, with the tutorial's mistakes and a way into the layer-stack editor, and
what a trained run's first convolution sees: its filters and its feature maps for a validation image.

Traces come from :mod:`cnndash.lessons.networks` (cached here), filters and feature maps from
:mod:`cnndash.explain.feature_maps` and their pictures from :mod:`cnndash.plots.gradcam`; a trained run
and its validation split are loaded through ``ui.load_model`` / ``ui.run_dataset``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from cnndash.explain import feature_maps as features
from cnndash.lessons import networks
from cnndash.plots import gradcam as plots_cam
from cnndash.runs import list_runs
from cnndash.text import N_
from ui.calculator.layer_stack import open_preset
from ui.learn.widgets import notice

_ = ui.i18n.translator("learn")
TRACE_COLUMNS = {
    "layer": N_("layer"),
    "type": N_("type"),
    "output": N_("output"),
    "params": N_("params"),
    "MACs": N_("MACs"),
    "receptive field": N_("receptive field"),
}


@st.cache_data(show_spinner=False, max_entries=16)
def _trace(name: str, mistake: bool = False) -> networks.NetworkTrace:
    return networks.trace_network(name, mistake=mistake)


def _trace_frame(result: networks.NetworkTrace) -> pd.DataFrame:
    frame = pd.DataFrame(
        (
            {
                "layer": row.name,
                "type": row.kind,
                "output": "×".join(map(str, row.output_shape[1:])),
                "params": row.params,
                "MACs": row.macs,
                "receptive field": _("all")
                if row.receptive_field is None
                else "×".join(map(str, row.receptive_field)),
            }
            for row in result.trace.rows
        ),
        columns=list(TRACE_COLUMNS),
    )
    return frame.rename(columns={key: _(title) for key, title in TRACE_COLUMNS.items()})


def classic_networks() -> None:
    names = list(networks.NETWORKS)
    name = st.radio(
        _("Network"), names, format_func=_, horizontal=True, **ui.keep("learn-net", names[0], options=names)
    )
    network = networks.NETWORKS[name]
    st.markdown(_(network.idea))
    result = _trace(name)
    cols = st.columns(4)
    cols[0].metric(_("Input"), "×".join(map(str, network.input_shape)))
    cols[1].metric(_("Output"), "×".join(map(str, (result.output_shape or ())[1:])))
    cols[2].metric(_("Parameters"), f"{result.trace.total_params:,}")
    cols[3].metric(_("MACs"), f"{result.total_macs / 1e6:,.1f} M")
    st.caption(_(network.reference))
    st.dataframe(_trace_frame(result), hide_index=True, height=min(38 + 35 * len(result.trace.rows), 480))
    if network.correction:
        st.warning(
            _("**The tutorial's mistake.** {correction}", correction=_(network.correction)),
            icon=":material/rule:",
        )
    if network.mistake is not None:
        wrong = _trace(name, True).trace
        diagnosis = ui.phrase_text(wrong.why, "calculator") if wrong.why is not None else ""
        st.caption(_("Tracing the tutorial's version: {diagnosis}", diagnosis=diagnosis))
    if network.preset and st.button(
        _("Open in the layer-stack editor"), key="learn-net-open", icon=":material/open_in_new:"
    ):
        open_preset(network.preset)
        st.switch_page(ui.PAGES["calculator"])
    notice(
        _(
            "Read the output column top to bottom to see the map shrink while the channels grow; the params "
            "column shows where the weights live (mostly in the fully connected head, when there is one)."
        )
    )


def trained_network() -> None:
    runs = [run for run in list_runs(include_hidden=False) if run.has_checkpoint("best")]
    if not runs:
        st.info(
            _("No trained run yet: train one and come back to see its filters and feature maps."),
            icon=":material/info:",
        )
        st.page_link(ui.PAGES["training"], label=_("Train a model"), icon=":material/model_training:")
        return
    names = [run.name for run in runs]
    cols = st.columns(2)
    name = cols[0].selectbox(
        _("Run"),
        names,
        format_func=ui.plain,
        **ui.workspace.bind("run", "learn-run", default=names[0], options=names),
    )
    run = runs[names.index(name)]
    model = ui.load_model(run, "best")
    val = ui.run_dataset(run).val
    if st.session_state.get("learn-run-index", 0) >= len(val):
        st.session_state["learn-run-index"] = 0
    index = cols[1].number_input(
        _("Validation image (0–{last})", last=len(val) - 1),
        0,
        max(len(val) - 1, 0),
        **ui.keep("learn-run-index", 0),
    )
    image, _label = val[int(index)]
    conv_name, conv = features.first_conv(model)
    maps = features.feature_maps(model, conv_name, run.preprocess([image]))
    cols = st.columns([1, 2, 3])
    cols[0].image(plots_cam.model_view(image, run.image_size), caption=_("the image"), width=140)
    filters = plots_cam.filter_grid(features.filter_images(model), ncols=4, min_side=64)
    cols[1].image(
        filters,
        caption=_(
            "{layer}: {n} filters (colour = RGB weights)", layer=ui.text(conv_name), n=conv.out_channels
        ),
        width="stretch",
    )
    tiles = plots_cam.feature_map_grid(maps, ncols=6, min_side=64)
    cols[2].image(
        tiles,
        caption=_("{layer}: its feature maps for this image", layer=ui.text(conv_name)),
        width="stretch",
    )
    st.page_link(ui.PAGES["gradcam"], label=_("See where it looks in Grad-CAM"), icon=":material/visibility:")
    notice(
        _(
            "First-layer filters are small edge and colour detectors; each feature map lights up where its "
            "filter matches the image. Deeper layers combine these into parts and objects."
        )
    )
