"""The Grad-CAM page's **Explore** views, one at a time under the main view: compare methods, compare
layers, the run's confident mistakes, feature maps, the first layer's filters, and faithfulness (the
pointing game on ``shapes``). ``EXPLORE[view](subject, picture, settings)`` draws one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

import ui
from cnndash.evaluate import metrics
from cnndash.explain import cam
from cnndash.explain import feature_maps as features
from cnndash.plots import gradcam as plots_cam
from cnndash.runs import load_run
from cnndash.text import N_
from ui import i18n
from ui.gradcam.subject import Picture, Settings, Subject
from ui.gradcam.views import VIEW_SIDE, zoom

_ = i18n.translator("gradcam")
_engine = i18n.translator("engine")

COMPARED_METHODS = ["gradcam", "gradcam++", "xgradcam", "layercam"]  # "Compare methods" starts with these
TILE_SIDE = 128  # px: the confident-mistakes tiles are enlarged by a whole factor to about this side
MISTAKES_SHOWN = 16
GRID_COLUMNS = 4  # tiles per row on screen (mistakes) and in the downloaded grids
FEATURE_COLUMNS = 8  # feature-map and filter tiles per row
FEATURE_TILE_SIDE = 112  # px: smallest side of a feature-map tile
FILTER_TILE_SIDE = 112  # px: a first-layer filter (3×3 to 11×11 weights) enlarged so each weight is a block
MAX_CHANNELS = 64  # feature maps shown at most
DEFAULT_CHANNELS = 16


@st.cache_data(show_spinner=False, max_entries=16)  # the spinner is the callers', in the reader's language
def _faithfulness_score(run_path: str, fingerprint: str, method: str, layer: str):
    return features.run_faithfulness(load_run(run_path), method=method, layer=layer)


def _download_grid(
    tiles: list[np.ndarray], file_name: str, what: str, labels: list[str] | None = None
) -> None:
    if tiles:
        st.download_button(
            _("Download these overlays as one PNG"),
            plots_cam.png_bytes(plots_cam.image_grid(tiles, ncols=GRID_COLUMNS, labels=labels)),
            file_name=file_name,
            mime="image/png",
            key=f"cam-download-{what}",
            icon=":material/download:",
        )


def _compare_methods(subject: Subject, picture: Picture, settings: Settings) -> None:
    chosen = st.multiselect(
        _("Methods"),
        list(cam.CAM_METHODS),
        format_func=lambda method: _engine(cam.METHOD_LABELS[method]),
        **ui.keep("cam-compare-methods", COMPARED_METHODS),
    )
    factor, tiles = zoom(subject.size, VIEW_SIDE), []
    for col, method in zip(st.columns(max(len(chosen), 1)), chosen, strict=False):
        result = cam.compute_cam_result(subject.model, settings.layer, picture.x, settings.target, method)
        tiles.append(plots_cam.upscale(settings.overlay(picture.seen, result.maps[0]), factor))
        caption = _engine(cam.METHOD_LABELS[method]) + (" — " + _("flat") if result.flat[0] else "")
        col.image(tiles[-1], output_format="PNG", caption=caption)
    file_name = f"{subject.run.name}-{picture.stem}-methods-{settings.layer}.png"
    _download_grid(tiles, file_name, "methods", labels=[cam.METHOD_LABELS[m] for m in chosen])


def _compare_layers(subject: Subject, picture: Picture, settings: Settings) -> None:
    kept = st.session_state.get("cam-compare-layers")
    if kept is not None:  # another run has other layers: drop the ones it lacks
        st.session_state["cam-compare-layers"] = [
            n for n in kept if n in subject.layers
        ] or subject.layer_picks()
    chosen = st.multiselect(
        _("Layers"), subject.layer_names, **ui.keep("cam-compare-layers", subject.layer_picks())
    )
    factor, tiles = zoom(subject.size, VIEW_SIDE), []
    for col, layer in zip(st.columns(max(len(chosen), 1)), chosen, strict=False):
        result = cam.compute_cam_result(subject.model, layer, picture.x, settings.target, settings.method)
        tiles.append(plots_cam.upscale(settings.overlay(picture.seen, result.maps[0]), factor))
        shape = "×".join(map(str, subject.layers[layer].output_shape[1:]))
        col.image(
            tiles[-1],
            output_format="PNG",
            caption=ui.text(f"{layer} ({shape})") + (" — " + _("flat") if result.flat[0] else ""),
        )
    _download_grid(
        tiles,
        f"{subject.run.name}-{picture.stem}-{settings.method}-layers.png",
        "layers",
        labels=list(chosen),
    )
    st.caption(
        _(
            "Late layers are class-specific but coarse (few cells); early layers are sharp but respond to "
            "edges and colours whatever the class."
        )
    )


def _confident_mistakes(subject: Subject, picture: Picture, settings: Settings) -> None:
    predictions = ui.predictions(subject.run, "best", progress=False)
    worst = metrics.top_losses(predictions, k=MISTAKES_SHOWN, mistakes_only=True)
    if worst.empty:
        st.success(_("No validation mistakes to show."))
        return
    st.caption(
        _(
            "The {n} validation images the run gets most confidently wrong, with the {method} map of the "
            "(wrong) predicted class at {layer}.",
            n=len(worst),
            method=_engine(cam.METHOD_LABELS[settings.method]),
            layer=ui.text(settings.layer),
        )
    )
    images = [subject.dataset.val[int(i)][0] for i in worst["index"]]
    batch = subject.run.preprocess(images)
    targets = [int(p) for p in worst["pred_index"]]
    result = cam.compute_cam_result(subject.model, settings.layer, batch, targets, settings.method)
    cols, tiles = st.columns(GRID_COLUMNS), []
    for k, (row, image, cam_map) in enumerate(zip(worst.itertuples(), images, result.maps, strict=True)):
        tile = settings.overlay(plots_cam.model_view(image, subject.size, subject.run.in_channels), cam_map)
        tiles.append(plots_cam.upscale(tile, zoom(subject.size, TILE_SIDE)))
        caption = _("#{i}: {true} → {pred} ({p:.0%})", i=row.index, true=ui.text(row.true),
                    pred=ui.text(row.predicted), p=row.prob_pred)  # fmt: skip

        cols[k % GRID_COLUMNS].image(tiles[-1], output_format="PNG", caption=caption)
    _download_grid(
        tiles, f"{subject.run.name}-confident-mistakes-{settings.method}-{settings.layer}.png", "mistakes"
    )


def _feature_maps(subject: Subject, picture: Picture, settings: Settings) -> None:
    fcol1, fcol2 = st.columns(2)
    layer = fcol1.selectbox(
        _("Layer"),
        subject.layer_names,
        **ui.keep("cam-feature-layer", settings.layer, options=subject.layer_names),
    )
    maps = features.feature_maps(subject.model, layer, picture.x)
    most = min(MAX_CHANNELS, len(maps))
    if st.session_state.get("cam-feature-count", 0) > most:  # a kept count from a wider layer
        st.session_state["cam-feature-count"] = most
    count = fcol2.slider(
        _("Channels (strongest first)"), 1, most, **ui.keep("cam-feature-count", min(DEFAULT_CHANNELS, most))
    )
    top = features.strongest_channels(maps, count)
    grid = plots_cam.feature_map_grid(maps[top], ncols=FEATURE_COLUMNS, min_side=FEATURE_TILE_SIDE)
    st.image(
        grid,
        output_format="PNG",
        caption=_("{layer}: channels {channels}", layer=ui.text(layer), channels=top),
    )
    st.caption(_("Each tile is one channel's output for this image, scaled on its own (bright = strong)."))


def _filters(subject: Subject, picture: Picture, settings: Settings) -> None:
    conv_name, conv = features.first_conv(subject.model)
    kernel = "×".join(map(str, conv.kernel_size))
    filters = features.filter_images(subject.model)
    st.image(
        plots_cam.filter_grid(
            filters,
            ncols=FEATURE_COLUMNS,
            min_side=FILTER_TILE_SIDE,
            labels=[f"#{i}" for i in range(len(filters))],
        ),
        output_format="PNG",
        caption=_(
            "{layer}: {n} filters of {kernel}", layer=ui.text(conv_name), n=conv.out_channels, kernel=kernel
        ),
    )
    st.caption(
        _(
            "The first layer's filters, each scaled on its own. Trained filters often look like edge, "
            "colour-blob or stripe detectors; random-looking ones mean the layer learned little."
        )
    )


def _faithfulness_by_layer(subject: Subject, settings: Settings) -> None:
    rows = []
    for layer in dict.fromkeys([*subject.layer_picks(), settings.layer]):
        with st.spinner(_("Scoring the pointing game…")):
            score = _faithfulness_score(str(subject.run.path), subject.fingerprint, settings.method, layer)
        rows.append(
            {
                "layer": layer,
                "map size": "×".join(map(str, subject.layers[layer].output_shape[1:])),
                "pointing game": score.pointing_accuracy,
                "energy inside": score.energy_share,
                "times chance": score.lift,
            }
        )
    st.dataframe(
        rows,
        key="cam-faithfulness-layers",
        hide_index=True,
        column_config={
            "layer": st.column_config.TextColumn(_("layer")),
            "map size": st.column_config.TextColumn(_("map size")),
            "pointing game": st.column_config.NumberColumn(_("pointing game"), format="percent"),
            "energy inside": st.column_config.NumberColumn(_("energy inside"), format="percent"),
            "times chance": st.column_config.NumberColumn(_("times chance"), format="%.1f×"),
        },
    )


def _faithfulness(subject: Subject, picture: Picture, settings: Settings) -> None:
    if subject.dataset.val.masks is None:
        st.info(
            _(
                "The pointing game needs object masks, which only the built-in **shapes** dataset has. "
                "Train a run on `shapes` to score how faithfully the maps point at the object."
            ),
            icon=":material/info:",
        )
        return
    with st.spinner(_("Scoring the pointing game…")):
        score = _faithfulness_score(
            str(subject.run.path), subject.fingerprint, settings.method, settings.layer
        )
    m1, m2, m3 = st.columns(3)
    m1.metric(
        _("Pointing game"),
        f"{score.pointing_accuracy:.0%}",
        _("{change:+.0%} vs chance", change=score.pointing_accuracy - score.chance),
        help=_("Share of validation images whose map maximum falls inside the object."),
    )
    m2.metric(
        _("Energy inside the object"),
        f"{score.energy_share:.0%}",
        _("{change:+.0%} vs chance", change=score.energy_share - score.chance),
    )
    m3.metric(_("Chance level (object area)"), f"{score.chance:.0%}")
    st.caption(
        _(
            "{method} at {layer}, explaining the true class, on {n} validation images ({flat} flat maps "
            "count as misses).",
            method=_engine(cam.METHOD_LABELS[settings.method]),
            layer=ui.text(settings.layer),
            n=score.n_images,
            flat=int(score.flat.sum()),
        )
    )
    st.markdown(_("**Which layer's maps point at the object?**"))
    _faithfulness_by_layer(subject, settings)
    st.caption(
        _(
            "A model that has not learned the task, or that decides from the background, points near "
            "chance: then its maps are not evidence of where the object is."
        )
    )


EXPLORE: dict[str, Callable[[Subject, Picture, Settings], None]] = {
    N_("Compare methods"): _compare_methods,
    N_("Compare layers"): _compare_layers,
    N_("Confident mistakes"): _confident_mistakes,
    N_("Feature maps"): _feature_maps,
    N_("Filters"): _filters,
    N_("Faithfulness"): _faithfulness,
}
VIEWS = list(EXPLORE)  # the "Explore" radio's options, in this order
