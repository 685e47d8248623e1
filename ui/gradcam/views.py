"""The Grad-CAM page's controls (method, layer, class, colour map, opacity: :func:`controls`) and its main
view (:func:`main_view`): the prediction, what the model sees, the map and the overlay, with a download.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from cnndash.explain import cam
from cnndash.plots import gradcam as plots_cam
from ui import i18n
from ui.engine_text import engine_text
from ui.gradcam.subject import Picture, Settings, Subject

_ = i18n.translator("gradcam")
_engine = i18n.translator("engine")

DEFAULT_METHOD = "gradcam"
DEFAULT_OPACITY = 0.5
VIEW_SIDE = 256  # px: the main images are enlarged by a whole factor to about this side
TOP_CLASSES = 5  # bars in the probability chart


def controls(subject: Subject, picture: Picture, predicted: int) -> Settings:
    """The controls' values; the class to explain starts on ``predicted`` for every new image."""
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        _("Method"),
        list(cam.CAM_METHODS),
        format_func=lambda method: _engine(cam.METHOD_LABELS[method]),
        help=_(
            "Grad-CAM: gradient-averaged channel weights (the standard). Grad-CAM++ handles several "
            "objects better. Layer-CAM keeps per-location weights (sharper at early layers). Eigen-CAM "
            "ignores the class. Score-CAM needs no gradients but runs the model once per channel."
        ),
        **ui.keep("cam-method", DEFAULT_METHOD),
    )
    layer = c2.selectbox(
        _("Layer"),
        subject.layer_names,
        format_func=subject.layer_label,
        help=_("Late layers: semantic but coarse. Early layers: sharp but low-level (edges, colours)."),
        **ui.keep("cam-layer", subject.default_layer, options=subject.layer_names),
    )
    if layer == subject.default_layer and subject.default_reason:
        c2.caption(_("Default: {reason}", reason=ui.text(engine_text(subject.default_reason))))
    image_id = (subject.run.name, picture.caption)
    if st.session_state.get("cam-target-image") != image_id:  # a new image: explain its prediction
        st.session_state["cam-target-image"] = image_id
        st.session_state["cam-target"] = predicted
    target = c3.selectbox(
        _("Explain class"),
        range(len(subject.classes)),
        format_func=lambda i: (
            ui.plain(subject.classes[i]) + (" " + _("(predicted)") if i == predicted else "")
        ),
        **ui.keep("cam-target"),
    )
    c4, c5 = st.columns(2)
    cmap = c4.selectbox(
        _("Colour map"), plots_cam.COLORMAPS, **ui.keep("cam-cmap", options=plots_cam.COLORMAPS)
    )
    alpha = c5.slider(_("Heatmap opacity"), 0.0, 1.0, step=0.05, **ui.keep("cam-opacity", DEFAULT_OPACITY))
    return Settings(method, layer, int(target), cmap, float(alpha))


def _verdict(classes: list[str], probs: np.ndarray, true_label: int | None) -> str:
    predicted = int(probs.argmax())
    text = _("**Prediction:** {cls} ({p:.1%})", cls=ui.text(classes[predicted]), p=probs[predicted])
    if true_label is not None:
        mark = " ✓" if true_label == predicted else " ✗"
        text += "  \n" + _("**True class:** {cls}", cls=ui.text(classes[true_label])) + mark
    return text


def zoom(size: int, side: int) -> int:
    """The whole factor that enlarges a ``size`` image to about ``side`` pixels (at least 1)."""
    return max(1, side // size)


def main_view(subject: Subject, picture: Picture, probs: np.ndarray, settings: Settings) -> None:
    """The prediction and the layer's advice, the probability chart, then the image, map and overlay."""
    info_col, fig_col = st.columns([1, 2])
    with info_col:
        st.markdown(_verdict(subject.classes, probs, picture.true_label))
        advice = cam.layer_advice(subject.layers[settings.layer], (subject.size, subject.size))
        st.caption(ui.text(engine_text(advice)))
    figure = plots_cam.probability_figure(subject.classes, probs, top=TOP_CLASSES, tr=_engine)
    fig_col.plotly_chart(figure, key="cam-probabilities", width="stretch")

    result = cam.compute_cam_result(
        subject.model, settings.layer, picture.x, settings.target, settings.method
    )
    if result.flat[0]:
        st.warning(ui.text(engine_text(result.notes[0])), icon=":material/blur_on:")
    factor = zoom(subject.size, VIEW_SIDE)
    blended = plots_cam.upscale(settings.overlay(picture.seen, result.maps[0]), factor)
    heat = plots_cam.heatmap_rgb(result.maps[0], settings.cmap)
    size = subject.size
    cols = st.columns(3)
    seen_caption = _("What the model sees ({image}, {size}×{size})", image=picture.shown, size=size)
    cols[0].image(plots_cam.upscale(picture.seen, factor), output_format="PNG", caption=seen_caption)
    cam_caption = _(
        "{method} for '{cls}'",
        method=_engine(cam.METHOD_LABELS[settings.method]),
        cls=ui.text(subject.classes[settings.target]),
    )
    cols[1].image(plots_cam.upscale(heat, factor), output_format="PNG", caption=cam_caption)
    cols[2].image(
        blended, output_format="PNG", caption=_("Overlay at {layer}", layer=ui.text(settings.layer))
    )
    st.download_button(
        _("Download overlay PNG"),
        plots_cam.png_bytes(blended),
        file_name=f"{subject.run.name}-{picture.stem}-{settings.method}-{settings.layer}.png",
        mime="image/png",
        key="cam-download",
        icon=":material/download:",
    )
