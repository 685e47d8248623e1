"""Grad-CAM page: where a trained model looks, per class, per method and per layer.

Flow (``main``): pick a run (:class:`Subject`: its model, dataset and CAM layers), pick an image
(:class:`Picture`), set the controls (:class:`Settings`), then the main view and one "Explore" view.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

import ui
from cnndash.data import ImageSet
from cnndash.evaluate import metrics
from cnndash.explain import cam
from cnndash.explain import feature_maps as features
from cnndash.explain.target_layers import informative_layer
from cnndash.models import default_cam_layer
from cnndash.plots import gradcam as plots_cam
from cnndash.preprocess import open_image
from cnndash.runs import Run, list_runs, load_run

ui.route_guard()

SOURCES = ["Validation image", "Misclassified", "Upload"]
VIEWS = ["Compare methods", "Compare layers", "Confident mistakes", "Feature maps", "Filters", "Faithfulness"]
DEFAULT_METHOD = "gradcam"
COMPARED_METHODS = ["gradcam", "gradcam++", "xgradcam", "layercam"]  # "Compare methods" starts with these
DEFAULT_OPACITY = 0.5
LAYER_PICKS = 4  # layers compared by default, spread from early to late and ending with the last one
DEFAULT_LAYER_IMAGES = 8  # validation images the default layer's maps are checked on
VIEW_SIDE = 256  # px: the main images are enlarged by a whole factor to about this side
TILE_SIDE = 128  # px: the same for the confident-mistakes tiles
TOP_CLASSES = 5  # bars in the probability chart
MISTAKES_SHOWN = 16
GRID_COLUMNS = 4  # tiles per row on screen (mistakes) and in the downloaded grids
FEATURE_COLUMNS = 8  # feature-map and filter tiles per row
FEATURE_TILE_SIDE = 112  # px: smallest side of a feature-map tile
FILTER_TILE_SIDE = 112  # px: a first-layer filter (3×3 to 11×11 weights) enlarged so each weight is a block
MAX_CHANNELS = 64  # feature maps shown at most
DEFAULT_CHANNELS = 16


@dataclass
class Subject:
    """The chosen run with what every view needs: its model, dataset, classes and CAM layers."""

    run: Run
    fingerprint: str  # of the best checkpoint: the key of everything cached from its weights
    model: Any  # the trained torch module; the page only hands it to cnndash
    dataset: ImageSet
    classes: list[str]
    layers: dict[str, cam.LayerInfo]  # candidate CAM layers by name, in execution order
    default_layer: str
    default_reason: str = ""  # why the default layer was chosen

    @property
    def size(self) -> int:
        return self.run.image_size

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    def layer_picks(self) -> list[str]:
        names = self.layer_names
        return names[:: -max(1, len(names) // LAYER_PICKS)][:LAYER_PICKS][::-1]

    def layer_label(self, name: str) -> str:
        info = self.layers[name]
        shape = "×".join(map(str, info.output_shape))
        return f"{name}  ({info.kind}, {shape})" + ("  — default" if name == self.default_layer else "")


@dataclass
class Picture:
    """The image being explained, as the model takes it (``x``) and sees it (``seen``, RGB)."""

    image: Image.Image
    caption: str
    true_label: int | None
    x: Any  # the preprocessed (1, C, S, S) input; the page only hands it to cnndash
    seen: np.ndarray

    @property
    def stem(self) -> str:
        """The caption as a file-name part: letters, digits, '.', '_' and '-' only."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.caption).stem).strip("-.") or "image"


@dataclass
class Settings:
    method: str
    layer: str
    target: int  # the class the maps explain
    cmap: str
    alpha: float

    def overlay(self, seen: np.ndarray, cam_map: np.ndarray) -> np.ndarray:
        return plots_cam.overlay(seen, cam_map, self.cmap, self.alpha)


# --------------------------------------------------------------------------------------------------
# Cached engine calls, keyed by the checkpoint's fingerprint


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(run_path: str, fingerprint: str, input_shape: tuple[int, int, int], _model) -> list:
    return cam.candidate_layers(_model, input_shape)


@st.cache_data(show_spinner="Scoring the pointing game…", max_entries=16)
def _faithfulness_score(run_path: str, fingerprint: str, method: str, layer: str):
    return features.run_faithfulness(load_run(run_path), method=method, layer=layer)


# --------------------------------------------------------------------------------------------------
# The run


def _usable_runs() -> list[Run]:
    return [run for run in list_runs() if run.has_checkpoint("best")]


def _apply_handoff(run_names: list[str]) -> None:
    """The Evaluation page sends {"run", "index"}: preselect that run and validation image once."""
    handoff = st.session_state.pop("gradcam-image", None)
    if isinstance(handoff, dict) and handoff.get("run") in run_names:
        st.session_state["cam-run"] = handoff["run"]
        st.session_state["cam-source"] = SOURCES[0]
        st.session_state["cam-index"] = int(handoff.get("index", 0))


@st.cache_resource(show_spinner="Choosing an informative layer…", max_entries=8)
def _default_layer(run_path: str, fingerprint: str, _run: Run, _model, _dataset, _layers: tuple) -> tuple:
    """The last spatial layer whose Grad-CAM for the predicted class is not flat on a few validation
    images, and why; computed once per checkpoint (a handful of forward/backward passes)."""
    try:
        preferred = default_cam_layer(_run.config.get("model", ""))
    except ValueError:  # a model this version does not know: no preference
        preferred = ""
    count = min(DEFAULT_LAYER_IMAGES, len(_dataset.val))
    batch = _run.preprocess([_dataset.val[i][0] for i in range(count)])

    def flat_share(name: str) -> float:
        return float(cam.compute_cam_result(_model, name, batch, None, DEFAULT_METHOD).flat.mean())

    return informative_layer(list(_layers), flat_share, preferred)


def _load_subject(run: Run) -> Subject:
    model = ui.load_model(run, "best")
    dataset = ui.run_dataset(run)
    fingerprint = run.fingerprint("best")
    input_shape = (run.in_channels, run.image_size, run.image_size)
    layers = {info.name: info for info in _layers(str(run.path), fingerprint, input_shape, model)}
    default, reason = _default_layer(str(run.path), fingerprint, run, model, dataset, tuple(layers.values()))
    return Subject(
        run=run,
        fingerprint=fingerprint,
        model=model,
        dataset=dataset,
        classes=list(run.classes or dataset.classes),
        layers=layers,
        default_layer=default,
        default_reason=reason,
    )


# --------------------------------------------------------------------------------------------------
# The image


def _picture(subject: Subject, image: Image.Image, caption: str, true_label: int | None = None) -> Picture:
    x = subject.run.preprocess([image])
    return Picture(
        image, caption, true_label, x, plots_cam.model_view(image, subject.size, subject.run.in_channels)
    )


def _validation_image(subject: Subject) -> Picture:
    val = subject.dataset.val
    if st.session_state.get("cam-index", 0) >= len(val):  # a kept index from a larger dataset
        st.session_state["cam-index"] = 0
    index = st.number_input(
        f"Validation image index (0–{len(val) - 1})",
        min_value=0,
        max_value=len(val) - 1,
        step=1,
        **ui.keep("cam-index", 0),
    )
    image, label = val[int(index)]
    return _picture(subject, image, f"validation #{int(index)}", label)


def _misclassified_image(subject: Subject) -> Picture | None:
    predictions = ui.predictions(subject.run, "best", progress=False)
    wrong = [int(i) for i in np.flatnonzero(predictions.preds != predictions.targets)]
    if not wrong:
        st.success("The run classifies every validation image correctly: nothing to show here.")
        return None
    classes, probs = subject.classes, predictions.probs

    def label(i: int) -> str:
        true, pred = predictions.targets[i], predictions.preds[i]
        return f"#{i}: true {classes[true]}, predicted {classes[pred]} ({probs[i, pred]:.0%})"

    index = st.selectbox(
        f"Misclassified validation image ({len(wrong)} in all)",
        wrong,
        format_func=label,
        **ui.keep("cam-mistake", options=wrong),
    )
    image, true_label = subject.dataset.val[int(index)]
    return _picture(subject, image, f"validation #{index}", true_label)


def _uploaded_image(subject: Subject) -> Picture | None:
    upload = st.file_uploader("Upload an image", type=ui.image_types(), key="cam-upload")
    if upload is None:
        st.info("Upload an image to see where the model looks.", icon=":material/upload:")
        return None
    return _picture(subject, open_image(upload.getvalue(), upload.name), upload.name)


def _choose_image(subject: Subject) -> Picture | None:
    source = st.radio(
        "Image",
        SOURCES,
        horizontal=True,
        help="Misclassified lists the validation images the run gets wrong (as on the Evaluation page).",
        **ui.keep("cam-source", SOURCES[0]),
    )
    if source == "Validation image":
        return _validation_image(subject)
    if source == "Misclassified":
        return _misclassified_image(subject)
    return _uploaded_image(subject)


# --------------------------------------------------------------------------------------------------
# Controls and the main view


def _controls(subject: Subject, picture: Picture, predicted: int) -> Settings:
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Method",
        list(cam.CAM_METHODS),
        format_func=cam.METHOD_LABELS.__getitem__,
        help="Grad-CAM: gradient-averaged channel weights (the standard). Grad-CAM++ handles several "
        "objects better. Layer-CAM keeps per-location weights (sharper at early layers). Eigen-CAM ignores "
        "the class. Score-CAM needs no gradients but runs the model once per channel.",
        **ui.keep("cam-method", DEFAULT_METHOD),
    )
    layer = c2.selectbox(
        "Layer",
        subject.layer_names,
        format_func=subject.layer_label,
        help="Late layers: semantic but coarse. Early layers: sharp but low-level (edges, colours).",
        **ui.keep("cam-layer", subject.default_layer, options=subject.layer_names),
    )
    if layer == subject.default_layer and subject.default_reason:
        c2.caption(f"Default: {subject.default_reason}")
    image_id = (subject.run.name, picture.caption)
    if st.session_state.get("cam-target-image") != image_id:  # a new image: explain its prediction
        st.session_state["cam-target-image"] = image_id
        st.session_state["cam-target"] = predicted
    target = c3.selectbox(
        "Explain class",
        range(len(subject.classes)),
        format_func=lambda i: subject.classes[i] + (" (predicted)" if i == predicted else ""),
        **ui.keep("cam-target"),
    )
    c4, c5 = st.columns(2)
    cmap = c4.selectbox("Colour map", plots_cam.COLORMAPS, **ui.keep("cam-cmap", options=plots_cam.COLORMAPS))
    alpha = c5.slider("Heatmap opacity", 0.0, 1.0, step=0.05, **ui.keep("cam-opacity", DEFAULT_OPACITY))
    return Settings(method, layer, int(target), cmap, float(alpha))


def _verdict(classes: list[str], probs: np.ndarray, true_label: int | None) -> str:
    predicted = int(probs.argmax())
    text = f"**Prediction:** {ui.text(classes[predicted])} ({probs[predicted]:.1%})"
    if true_label is not None:
        mark = " ✓" if true_label == predicted else " ✗"
        text += f"  \n**True class:** {ui.text(classes[true_label])}{mark}"
    return text


def _zoom(size: int, side: int) -> int:
    """The whole factor that enlarges a ``size`` image to about ``side`` pixels (at least 1)."""
    return max(1, side // size)


def _main_view(subject: Subject, picture: Picture, probs: np.ndarray, settings: Settings) -> None:
    info_col, fig_col = st.columns([1, 2])
    with info_col:
        st.markdown(_verdict(subject.classes, probs, picture.true_label))
        st.caption(cam.layer_advice(subject.layers[settings.layer], (subject.size, subject.size)))
    figure = plots_cam.probability_figure(subject.classes, probs, top=TOP_CLASSES)
    fig_col.plotly_chart(figure, key="cam-probabilities", width="stretch")

    result = cam.compute_cam_result(
        subject.model, settings.layer, picture.x, settings.target, settings.method
    )
    if result.flat[0]:
        st.warning(result.notes[0], icon=":material/blur_on:")
    zoom = _zoom(subject.size, VIEW_SIDE)
    blended = plots_cam.upscale(settings.overlay(picture.seen, result.maps[0]), zoom)
    heat = plots_cam.heatmap_rgb(result.maps[0], settings.cmap)
    size = subject.size
    cols = st.columns(3)
    seen_caption = f"What the model sees ({ui.text(picture.caption)}, {size}×{size})"
    cols[0].image(plots_cam.upscale(picture.seen, zoom), output_format="PNG", caption=seen_caption)
    cam_caption = f"{cam.METHOD_LABELS[settings.method]} for '{ui.text(subject.classes[settings.target])}'"
    cols[1].image(plots_cam.upscale(heat, zoom), output_format="PNG", caption=cam_caption)
    cols[2].image(blended, output_format="PNG", caption=f"Overlay at {settings.layer}")
    st.download_button(
        "Download overlay PNG",
        plots_cam.png_bytes(blended),
        file_name=f"{subject.run.name}-{picture.stem}-{settings.method}-{settings.layer}.png",
        mime="image/png",
        key="cam-download",
        icon=":material/download:",
    )


# --------------------------------------------------------------------------------------------------
# Explore: one view at a time


def _download_grid(
    tiles: list[np.ndarray], file_name: str, what: str, labels: list[str] | None = None
) -> None:
    if tiles:
        st.download_button(
            "Download these overlays as one PNG",
            plots_cam.png_bytes(plots_cam.image_grid(tiles, ncols=GRID_COLUMNS, labels=labels)),
            file_name=file_name,
            mime="image/png",
            key=f"cam-download-{what}",
            icon=":material/download:",
        )


def _compare_methods(subject: Subject, picture: Picture, settings: Settings) -> None:
    chosen = st.multiselect(
        "Methods",
        list(cam.CAM_METHODS),
        format_func=cam.METHOD_LABELS.__getitem__,
        **ui.keep("cam-compare-methods", COMPARED_METHODS),
    )
    zoom, tiles = _zoom(subject.size, VIEW_SIDE), []
    for col, method in zip(st.columns(max(len(chosen), 1)), chosen, strict=False):
        result = cam.compute_cam_result(subject.model, settings.layer, picture.x, settings.target, method)
        tiles.append(plots_cam.upscale(settings.overlay(picture.seen, result.maps[0]), zoom))
        caption = cam.METHOD_LABELS[method] + (" — flat" if result.flat[0] else "")
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
        "Layers", subject.layer_names, **ui.keep("cam-compare-layers", subject.layer_picks())
    )
    zoom, tiles = _zoom(subject.size, VIEW_SIDE), []
    for col, layer in zip(st.columns(max(len(chosen), 1)), chosen, strict=False):
        result = cam.compute_cam_result(subject.model, layer, picture.x, settings.target, settings.method)
        tiles.append(plots_cam.upscale(settings.overlay(picture.seen, result.maps[0]), zoom))
        shape = "×".join(map(str, subject.layers[layer].output_shape[1:]))
        col.image(
            tiles[-1],
            output_format="PNG",
            caption=f"{layer} ({shape})" + (" — flat" if result.flat[0] else ""),
        )
    _download_grid(
        tiles,
        f"{subject.run.name}-{picture.stem}-{settings.method}-layers.png",
        "layers",
        labels=list(chosen),
    )
    st.caption(
        "Late layers are class-specific but coarse (few cells); early layers are sharp but respond to "
        "edges and colours whatever the class."
    )


def _confident_mistakes(subject: Subject, picture: Picture, settings: Settings) -> None:
    predictions = ui.predictions(subject.run, "best", progress=False)
    worst = metrics.top_losses(predictions, k=MISTAKES_SHOWN, mistakes_only=True)
    if worst.empty:
        st.success("No validation mistakes to show.")
        return
    st.caption(
        f"The {len(worst)} validation images the run gets most confidently wrong, with the "
        f"{cam.METHOD_LABELS[settings.method]} map of the (wrong) predicted class at {settings.layer}."
    )
    images = [subject.dataset.val[int(i)][0] for i in worst["index"]]
    batch = subject.run.preprocess(images)
    targets = [int(p) for p in worst["pred_index"]]
    result = cam.compute_cam_result(subject.model, settings.layer, batch, targets, settings.method)
    cols, tiles = st.columns(GRID_COLUMNS), []
    for k, (row, image, cam_map) in enumerate(zip(worst.itertuples(), images, result.maps, strict=True)):
        tile = settings.overlay(plots_cam.model_view(image, subject.size, subject.run.in_channels), cam_map)
        tiles.append(plots_cam.upscale(tile, _zoom(subject.size, TILE_SIDE)))
        caption = f"#{row.index}: {ui.text(row.true)} → {ui.text(row.predicted)} ({row.prob_pred:.0%})"
        cols[k % GRID_COLUMNS].image(tiles[-1], output_format="PNG", caption=caption)
    _download_grid(
        tiles, f"{subject.run.name}-confident-mistakes-{settings.method}-{settings.layer}.png", "mistakes"
    )


def _feature_maps(subject: Subject, picture: Picture, settings: Settings) -> None:
    fcol1, fcol2 = st.columns(2)
    layer = fcol1.selectbox(
        "Layer",
        subject.layer_names,
        **ui.keep("cam-feature-layer", settings.layer, options=subject.layer_names),
    )
    maps = features.feature_maps(subject.model, layer, picture.x)
    most = min(MAX_CHANNELS, len(maps))
    if st.session_state.get("cam-feature-count", 0) > most:  # a kept count from a wider layer
        st.session_state["cam-feature-count"] = most
    count = fcol2.slider(
        "Channels (strongest first)", 1, most, **ui.keep("cam-feature-count", min(DEFAULT_CHANNELS, most))
    )
    top = features.strongest_channels(maps, count)
    grid = plots_cam.feature_map_grid(maps[top], ncols=FEATURE_COLUMNS, min_side=FEATURE_TILE_SIDE)
    st.image(grid, output_format="PNG", caption=f"{layer}: channels {top}")
    st.caption("Each tile is one channel's output for this image, scaled on its own (bright = strong).")


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
        caption=f"{conv_name}: {conv.out_channels} filters of {kernel}",
    )
    st.caption(
        "The first layer's filters, each scaled on its own. Trained filters often look like edge, "
        "colour-blob or stripe detectors; random-looking ones mean the layer learned little."
    )


def _faithfulness_by_layer(subject: Subject, settings: Settings) -> None:
    rows = []
    for layer in dict.fromkeys([*subject.layer_picks(), settings.layer]):
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
            "pointing game": st.column_config.NumberColumn(format="percent"),
            "energy inside": st.column_config.NumberColumn(format="percent"),
            "times chance": st.column_config.NumberColumn(format="%.1f×"),
        },
    )


def _faithfulness(subject: Subject, picture: Picture, settings: Settings) -> None:
    if subject.dataset.val.masks is None:
        st.info(
            "The pointing game needs object masks, which only the built-in **shapes** dataset has. "
            "Train a run on `shapes` to score how faithfully the maps point at the object.",
            icon=":material/info:",
        )
        return
    score = _faithfulness_score(str(subject.run.path), subject.fingerprint, settings.method, settings.layer)
    m1, m2, m3 = st.columns(3)
    m1.metric(
        "Pointing game",
        f"{score.pointing_accuracy:.0%}",
        f"{score.pointing_accuracy - score.chance:+.0%} vs chance",
        help="Share of validation images whose map maximum falls inside the object.",
    )
    m2.metric(
        "Energy inside the object",
        f"{score.energy_share:.0%}",
        f"{score.energy_share - score.chance:+.0%} vs chance",
    )
    m3.metric("Chance level (object area)", f"{score.chance:.0%}")
    st.caption(
        f"{cam.METHOD_LABELS[settings.method]} at {settings.layer}, explaining the true class, on "
        f"{score.n_images} validation images ({int(score.flat.sum())} flat maps count as misses)."
    )
    st.markdown("**Which layer's maps point at the object?**")
    _faithfulness_by_layer(subject, settings)
    st.caption(
        "A model that has not learned the task, or that decides from the background, points near "
        "chance: then its maps are not evidence of where the object is."
    )


EXPLORE: dict[str, Callable[[Subject, Picture, Settings], None]] = {
    "Compare methods": _compare_methods,
    "Compare layers": _compare_layers,
    "Confident mistakes": _confident_mistakes,
    "Feature maps": _feature_maps,
    "Filters": _filters,
    "Faithfulness": _faithfulness,
}


# --------------------------------------------------------------------------------------------------
# The page


def _no_runs() -> None:
    st.info(
        "No trained run with a checkpoint yet. Train one on the **Training** page, then come back.",
        icon=":material/info:",
    )
    st.page_link(ui.PAGES["training"], label="Go to Training", icon=":material/model_training:")


def main() -> None:
    st.title("Grad-CAM")
    st.caption(
        "Pick a trained run and an image: the map shows which regions raised the score of the chosen class "
        "at the chosen layer. Red = strong evidence for the class, blue = none."
    )
    runs = {run.name: run for run in _usable_runs()}
    if not runs:
        _no_runs()
        return
    _apply_handoff(list(runs))
    run_col, image_col = st.columns([2, 3])
    run_name = run_col.selectbox("Run", list(runs), **ui.keep("cam-run", options=runs))
    subject = _load_subject(runs[run_name])
    with image_col:
        picture = _choose_image(subject)
    if picture is None:
        return
    probs = cam.predict_probabilities(subject.model, picture.x)[0]
    settings = _controls(subject, picture, int(probs.argmax()))
    _main_view(subject, picture, probs, settings)
    st.divider()
    view = st.radio("Explore", VIEWS, horizontal=True, **ui.keep("cam-explore", VIEWS[0]))
    EXPLORE[view](subject, picture, settings)


with ui.user_errors():
    main()
