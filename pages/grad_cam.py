"""Grad-CAM page: where a trained model looks, per class, per method and per layer."""

from __future__ import annotations

import pickle
from pathlib import Path

import streamlit as st
from PIL import Image

import ui
from cnndash import cam, features, plots_cam
from cnndash.runs import Run, list_runs, load_run

st.title("Grad-CAM")
st.caption(
    "Pick a trained run and an image: the map shows which regions raised the score of the chosen class "
    "at the chosen layer. Red = strong evidence for the class, blue = none."
)


# -- cached loaders (keyed by the run folder and its checkpoint's modification time) ----------------------
@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _model(run_path: str, mtime: float):
    run = load_run(run_path)
    try:
        return run.load_model("best")
    except (RuntimeError, KeyError, EOFError, pickle.UnpicklingError) as exc:  # corrupt or mismatched
        raise ValueError(
            f"The best checkpoint of run {run.name!r} cannot be loaded ({str(exc).splitlines()[0]}); "
            "retrain the run."
        ) from exc


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def _dataset(run_path: str, mtime: float):
    return load_run(run_path).dataset()


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(run_path: str, mtime: float, input_shape: tuple[int, int, int]):
    return cam.candidate_layers(_model(run_path, mtime), input_shape)


@st.cache_data(show_spinner="Predicting the validation set…", max_entries=4)
def _predictions(run_path: str, mtime: float):
    from cnndash.predict import predict_run

    return predict_run(run_path)


@st.cache_data(show_spinner="Scoring the pointing game…", max_entries=16)
def _faithfulness(run_path: str, mtime: float, method: str, layer: str):
    return features.run_faithfulness(load_run(run_path), method=method, layer=layer)


def _download_grid(tiles: list, file_name: str, what: str) -> None:
    if tiles:
        st.download_button(
            "Download these overlays as one PNG",
            plots_cam.png_bytes(plots_cam.image_grid(tiles, ncols=4)),
            file_name=file_name,
            mime="image/png",
            key=f"cam-download-{what}",
            icon=":material/download:",
        )


def _usable_runs() -> list[Run]:
    usable = []
    for run in list_runs():
        if (run.path / "best.pt").is_file():
            usable.append(run)
    return usable


def _default_layer(run: Run, layers: list[cam.LayerInfo]) -> str:
    from cnndash.models import default_cam_layer

    names = [info.name for info in layers]
    try:
        preferred = default_cam_layer(run.config.get("model", ""))
    except ValueError:
        preferred = ""
    suggested = cam.suggest_layer(layers)
    by_name = {info.name: info for info in layers}
    if preferred in by_name and by_name[preferred].cells >= 4:
        return preferred
    return suggested if suggested in names else names[-1]


def _apply_handoff(run_names: list[str]) -> None:
    """The Evaluation page sends {"run", "index"}: preselect that run and validation image once."""
    handoff = st.session_state.pop("gradcam-image", None)
    if isinstance(handoff, dict) and handoff.get("run") in run_names:
        st.session_state["cam-run"] = handoff["run"]
        st.session_state["cam-source"] = "Validation image"
        st.session_state["cam-index"] = int(handoff.get("index", 0))


with ui.user_errors():
    runs = _usable_runs()
    if not runs:
        st.info(
            "No trained run with a checkpoint yet. Train one on the **Training** page, then come back.",
            icon=":material/info:",
        )
        st.page_link(ui.PAGES["training"], label="Go to Training", icon=":material/model_training:")
        st.stop()
    names = [run.name for run in runs]
    _apply_handoff(names)
    run_col, image_col = st.columns([2, 3])
    run_name = run_col.selectbox("Run", names, key="cam-run")
    run = load_run(run_name)
    run_path = str(run.path)
    mtime = (run.path / "best.pt").stat().st_mtime
    model = _model(run_path, mtime)
    dataset = _dataset(run_path, mtime)
    classes = list(run.classes or dataset.classes)
    size = run.image_size
    layers = _layers(run_path, mtime, (run.in_channels, size, size))
    layer_names = [info.name for info in layers]
    layer_by_name = {info.name: info for info in layers}
    default_layer = _default_layer(run, layers)
    # up to four layers spread from early to late, ending with the last one
    layer_picks = layer_names[:: -max(1, len(layer_names) // 4)][:4][::-1]

    # -- image choice -------------------------------------------------------------------------------------
    with image_col:
        source = st.radio(
            "Image",
            ["Validation image", "Misclassified", "Upload"],
            key="cam-source",
            horizontal=True,
            help="Misclassified lists the validation images the run gets wrong (as on the Evaluation page).",
        )
        image: Image.Image | None = None
        true_label: int | None = None
        caption = ""
        if source == "Validation image":
            if st.session_state.get("cam-index", 0) >= len(dataset.val):
                st.session_state["cam-index"] = 0
            index = int(
                st.number_input(
                    f"Validation image index (0–{len(dataset.val) - 1})",
                    min_value=0,
                    max_value=len(dataset.val) - 1,
                    step=1,
                    key="cam-index",
                )
            )
            image, true_label = dataset.val[index]
            caption = f"validation #{index}"
        elif source == "Misclassified":
            predictions = _predictions(run_path, mtime)
            wrong = [int(i) for i in (predictions.preds != predictions.targets).nonzero()[0]]
            if not wrong:
                st.success("The run classifies every validation image correctly: nothing to show here.")
                st.stop()
            probs = predictions.probs
            index = st.selectbox(
                f"Misclassified validation image ({len(wrong)} in all)",
                wrong,
                key="cam-mistake",
                format_func=lambda i: (
                    f"#{i}: true {classes[predictions.targets[i]]}, predicted {classes[predictions.preds[i]]} "
                    f"({probs[i, predictions.preds[i]]:.0%})"
                ),
            )
            image, true_label = dataset.val[int(index)]
            caption = f"validation #{index}"
        else:
            upload = st.file_uploader(
                "Upload an image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="cam-upload"
            )
            if upload is None:
                st.info("Upload an image to see where the model looks.", icon=":material/upload:")
                st.stop()
            from cnndash.preprocess import open_image

            image = open_image(upload.getvalue(), upload.name)
            caption = upload.name

    x = run.preprocess([image])
    probs = cam.predict_probabilities(model, x)[0]
    predicted = int(probs.argmax())

    # -- controls -------------------------------------------------------------------------------------------
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Method",
        list(cam.CAM_METHODS),
        key="cam-method",
        format_func=lambda m: cam.METHOD_LABELS[m],
        help="Grad-CAM: gradient-averaged channel weights (the standard). Grad-CAM++ handles several "
        "objects better. Layer-CAM keeps per-location weights (sharper at early layers). Eigen-CAM ignores "
        "the class. Score-CAM needs no gradients but runs the model once per channel.",
    )
    if st.session_state.get("cam-layer") not in layer_names:
        st.session_state["cam-layer"] = default_layer
    # another run has other layers: drop remembered choices that no longer exist
    if "cam-compare-layers" in st.session_state:
        kept = [n for n in st.session_state["cam-compare-layers"] if n in layer_names]
        st.session_state["cam-compare-layers"] = kept or layer_picks
    if st.session_state.get("cam-feature-layer", layer_names[0]) not in layer_names:
        del st.session_state["cam-feature-layer"]
    layer = c2.selectbox(
        "Layer",
        layer_names,
        key="cam-layer",
        format_func=lambda n: (
            f"{n}  ({layer_by_name[n].kind}, {'×'.join(map(str, layer_by_name[n].output_shape))})"
            + ("  — default" if n == default_layer else "")
        ),
        help="Late layers: semantic but coarse. Early layers: sharp but low-level (edges, colours).",
    )
    target_options = list(range(len(classes)))
    if st.session_state.get("cam-target-image") != (run_name, caption):
        # a new image: go back to explaining its prediction
        st.session_state["cam-target-image"] = (run_name, caption)
        st.session_state["cam-target"] = predicted
    target = c3.selectbox(
        "Explain class",
        target_options,
        key="cam-target",
        format_func=lambda i: f"{classes[i]}" + (" (predicted)" if i == predicted else ""),
    )
    c4, c5 = st.columns(2)
    cmap = c4.selectbox("Colour map", list(plots_cam.COLORMAPS), key="cam-cmap")
    alpha = c5.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="cam-opacity")

    # -- prediction and the main view ---------------------------------------------------------------------
    info_col, fig_col = st.columns([1, 2])
    with info_col:
        verdict = f"**Prediction:** {classes[predicted]} ({probs[predicted]:.1%})"
        if true_label is not None:
            verdict += f"  \n**True class:** {classes[true_label]}" + (
                " ✓" if true_label == predicted else " ✗"
            )
        st.markdown(verdict)
        st.caption(cam.layer_advice(layer_by_name[layer], (size, size)))
    fig_col.plotly_chart(
        plots_cam.probability_figure(classes, probs, top=5), key="cam-probabilities", width="stretch"
    )

    result = cam.compute_cam_result(model, layer, x, target, method)
    seen = plots_cam.model_view(image, size)
    heat = plots_cam.heatmap_rgb(result.maps[0], cmap)
    blended = plots_cam.overlay(seen, result.maps[0], cmap, alpha)
    if result.flat[0]:
        st.warning(result.notes[0], icon=":material/blur_on:")
    zoom = max(1, 256 // size)
    cols = st.columns(3)
    cols[0].image(
        plots_cam.upscale(seen, zoom),
        output_format="PNG",
        caption=f"What the model sees ({caption}, {size}×{size})",
    )
    cols[1].image(
        plots_cam.upscale(heat, zoom),
        output_format="PNG",
        caption=f"{cam.METHOD_LABELS[method]} for '{classes[target]}'",
    )
    cols[2].image(plots_cam.upscale(blended, zoom), output_format="PNG", caption=f"Overlay at {layer}")
    st.download_button(
        "Download overlay PNG",
        plots_cam.png_bytes(plots_cam.upscale(blended, zoom)),
        file_name=f"{run_name}-{Path(caption).stem or 'image'}-{method}-{layer}.png",
        mime="image/png",
        key="cam-download",
        icon=":material/download:",
    )

    # -- further views --------------------------------------------------------------------------------------
    st.divider()
    view = st.radio(
        "Explore",
        [
            "Compare methods",
            "Compare layers",
            "Confident mistakes",
            "Feature maps",
            "Filters",
            "Faithfulness",
        ],
        key="cam-explore",
        horizontal=True,
    )
    if view == "Compare methods":
        chosen = st.multiselect(
            "Methods",
            list(cam.CAM_METHODS),
            default=["gradcam", "gradcam++", "xgradcam", "layercam"],
            format_func=lambda m: cam.METHOD_LABELS[m],
            key="cam-compare-methods",
        )
        cols = st.columns(max(len(chosen), 1))
        tiles = []
        for col, name in zip(cols, chosen, strict=False):
            r = cam.compute_cam_result(model, layer, x, target, name)
            tiles.append(plots_cam.upscale(plots_cam.overlay(seen, r.maps[0], cmap, alpha), zoom))
            col.image(
                tiles[-1],
                output_format="PNG",
                caption=cam.METHOD_LABELS[name] + (" — flat" if r.flat[0] else ""),
            )
        _download_grid(tiles, f"{run_name}-{Path(caption).stem or 'image'}-methods-{layer}.png", "methods")
    elif view == "Compare layers":
        chosen = st.multiselect("Layers", layer_names, default=layer_picks, key="cam-compare-layers")
        cols = st.columns(max(len(chosen), 1))
        tiles = []
        for col, name in zip(cols, chosen, strict=False):
            r = cam.compute_cam_result(model, name, x, target, method)
            shape = "×".join(map(str, layer_by_name[name].output_shape[1:]))
            tiles.append(plots_cam.upscale(plots_cam.overlay(seen, r.maps[0], cmap, alpha), zoom))
            col.image(
                tiles[-1],
                output_format="PNG",
                caption=f"{name} ({shape})" + (" — flat" if r.flat[0] else ""),
            )
        _download_grid(tiles, f"{run_name}-{Path(caption).stem or 'image'}-{method}-layers.png", "layers")
        st.caption(
            "Late layers are class-specific but coarse (few cells); early layers are sharp but respond to "
            "edges and colours whatever the class."
        )
    elif view == "Confident mistakes":
        from cnndash.metrics import top_losses

        predictions = _predictions(run_path, mtime)
        worst = top_losses(predictions, k=16, mistakes_only=True)
        if worst.empty:
            st.success("No validation mistakes to show.")
        else:
            st.caption(
                f"The {len(worst)} validation images the run gets most confidently wrong, with the "
                f"{cam.METHOD_LABELS[method]} map of the (wrong) predicted class at {layer}."
            )
            idx = [int(i) for i in worst["index"]]
            batch = run.preprocess([dataset.val[i][0] for i in idx])
            r = cam.compute_cam_result(model, layer, batch, [int(p) for p in worst["pred_index"]], method)
            cols = st.columns(4)
            tiles = []
            for k, (row, cam_map) in enumerate(zip(worst.itertuples(), r.maps, strict=True)):
                tile = plots_cam.overlay(
                    plots_cam.model_view(dataset.val[int(row.index)][0], size), cam_map, cmap, alpha
                )
                tiles.append(plots_cam.upscale(tile, max(1, 128 // size)))
                cols[k % 4].image(
                    tiles[-1],
                    output_format="PNG",
                    caption=f"#{row.index}: {row.true} → {row.predicted} ({row.prob_pred:.0%})",
                )
            _download_grid(tiles, f"{run_name}-confident-mistakes-{method}-{layer}.png", "mistakes")
    elif view == "Feature maps":
        fcol1, fcol2 = st.columns(2)
        flayer = fcol1.selectbox(
            "Layer", layer_names, index=layer_names.index(layer), key="cam-feature-layer"
        )
        maps = features.feature_maps(model, flayer, x)
        count = fcol2.slider(
            "Channels (strongest first)", 1, min(64, len(maps)), min(16, len(maps)), key="cam-feature-count"
        )
        top = features.strongest_channels(maps, count)
        st.image(
            plots_cam.feature_map_grid(maps[top], ncols=8, min_side=96),
            output_format="PNG",
            caption=f"{flayer}: channels {top}",
        )
        st.caption("Each tile is one channel's output for this image, scaled on its own (bright = strong).")
    elif view == "Filters":
        conv_name, conv = features.first_conv(model)
        st.image(
            plots_cam.filter_grid(features.filter_images(model), ncols=8),
            output_format="PNG",
            caption=f"{conv_name}: {conv.out_channels} filters of {conv.kernel_size[0]}×{conv.kernel_size[1]}",
        )
        st.caption(
            "The first layer's filters, each scaled on its own. Trained filters often look like edge, "
            "colour-blob or stripe detectors; random-looking ones mean the layer learned little."
        )
    else:
        if dataset.val.masks is None:
            st.info(
                "The pointing game needs object masks, which only the built-in **shapes** dataset has. "
                "Train a run on `shapes` to score how faithfully the maps point at the object.",
                icon=":material/info:",
            )
        else:
            score = _faithfulness(run_path, mtime, method, layer)
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
                f"{cam.METHOD_LABELS[method]} at {layer}, explaining the true class, on {score.n_images} "
                f"validation images ({int(score.flat.sum())} flat maps count as misses)."
            )
            st.markdown("**Which layer's maps point at the object?**")
            rows = []
            for name in dict.fromkeys([*layer_picks, layer]):
                other = _faithfulness(run_path, mtime, method, name)
                rows.append(
                    {
                        "layer": name,
                        "map size": "×".join(map(str, layer_by_name[name].output_shape[1:])),
                        "pointing game": other.pointing_accuracy,
                        "energy inside": other.energy_share,
                        "times chance": other.lift,
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
            st.caption(
                "A model that has not learned the task, or that decides from the background, points near "
                "chance: then its maps are not evidence of where the object is."
            )
