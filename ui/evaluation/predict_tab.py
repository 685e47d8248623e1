"""The Evaluation page's **Predict** tab: classify uploaded images (or zips of images) with the chosen
checkpoint, flag what should not be trusted, list the predictions with their top-k classes (table and
CSV), show one image large, and export the model as a bundle.

Images go through the run's own preprocessing (:func:`cnndash.evaluate.predict.predict_images`); the
table's rows come from :func:`cnndash.evaluate.predict_files.predictions_table`.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import streamlit as st

import ui
from cnndash.evaluate import metrics, predict, predict_files
from cnndash.plots import evaluation as plots_eval
from cnndash.preprocess import convert_mode
from cnndash.runs import Run
from cnndash.tables import add_column
from cnndash.text import N_
from ui import export_panel, i18n
from ui.engine_text import engine_text

_ = i18n.translator("evaluation")
_engine = i18n.translator("engine")

TOP_K = 3  # classes listed per uploaded image, unless changed
PREDICT_THUMB = 128  # px: thumbnail of an uploaded image
PREDICT_TABLE_THUMB = 48  # px: thumbnail in the predictions table
PREDICT_LIMIT = 1000  # uploaded images classified at once
PREDICT_TYPES = [*ui.image_types(), "tif", "tiff", "zip"]
PREDICT_ORDERS = {
    N_("as uploaded"): None,
    N_("least confident first"): True,
    N_("most confident first"): False,
}


def _predict_controls(run: Run) -> tuple[list, int, float, str]:
    st.caption(
        _(
            "Images are converted exactly as in training: {mode}, resized to {side}×{side}, normalised with "
            "the dataset statistics — the same answers as `python -m cnndash predict` and an exported "
            "bundle's `predict.py`.",
            mode=_("grayscale") if run.in_channels == 1 else "RGB",
            side=run.image_size,
        )
    )
    files = st.file_uploader(
        _("Images (or zips of images) to classify"),
        type=PREDICT_TYPES,
        accept_multiple_files=True,
        key="eval-upload",
    )
    num_classes = max(1, len(run.classes))
    if st.session_state.get("eval-topk", 0) > num_classes:  # a run with fewer classes than the last one
        st.session_state["eval-topk"] = num_classes
    c1, c2, c3 = st.columns(3)
    k = c1.number_input(
        _("Top-k"), min_value=1, max_value=num_classes, **ui.keep("eval-topk", min(TOP_K, num_classes))
    )
    threshold = c2.slider(
        _("Flag below confidence"),
        0.0,
        1.0,
        step=0.05,
        help=_(
            "Predictions whose top probability is lower are flagged: the image may be unlike every class."
        ),
        **ui.keep("eval-threshold", predict_files.LOW_CONFIDENCE),
    )
    order = c3.selectbox(
        _("Order"), list(PREDICT_ORDERS), format_func=_, **ui.keep("eval-predict-order", "as uploaded")
    )
    return files or [], int(k), float(threshold), order


def _decode_uploads(files) -> list[tuple[str, object]]:
    """(name, PIL image) for every uploaded image and every image inside an uploaded zip; errors shown."""
    sources = []
    with ui.user_errors():
        sources = predict_files.upload_sources([(f.name, f.getvalue()) for f in files])
    if len(sources) > PREDICT_LIMIT:
        st.warning(
            _("{n:,} images: the first {limit:,} are classified.", n=len(sources), limit=PREDICT_LIMIT),
            icon=":material/info:",
        )
        sources = sources[:PREDICT_LIMIT]
    images = []
    for source in sources:
        with ui.user_errors():
            images.append((source.name, source.open()))
    return images


def _thumbnail_uri(image) -> str:
    buffer = io.BytesIO()
    plots_eval.thumbnail(convert_mode(image, "RGB"), PREDICT_TABLE_THUMB).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _predictions_frame(
    images, probs: np.ndarray, classes: list[str], k: int, flags: list[str]
) -> pd.DataFrame:
    """The engine's predictions table with a thumbnail column first; file and class names as plain text
    (made plain before the engine puts "name (p%)" together, so a right-to-left name stays isolated)."""
    names = [ui.plain(name) for name, _ in images]
    frame = predict_files.predictions_table(names, probs, [ui.plain(c) for c in classes], k, flags)
    frame.insert(0, "image", [_thumbnail_uri(image) for _, image in images])
    return frame


def render_predict(run: Run, checkpoint: str) -> None:
    """The Predict tab for ``run``'s ``checkpoint``: uploads, predictions, and the export panel."""
    files, k, threshold, order = _predict_controls(run)
    if files:
        _predictions(run, checkpoint, files, k, threshold, order)
    st.subheader(_("Use this model outside cnndash"))
    st.caption(
        _(
            "A bundle with TorchScript and ONNX files and a predict.py that needs only Pillow, NumPy and "
            "onnxruntime gives the same answers as this page (checked when it is built)."
        )
    )
    export_panel.render_export(run, checkpoint, key="eval-export")


def _predictions(run: Run, checkpoint: str, files, k: int, threshold: float, order: str) -> None:
    images = _decode_uploads(files)
    if not images:
        return
    model = ui.load_model(run, checkpoint)
    probs = predict.predict_images(run, [img for _, img in images], checkpoint=checkpoint, model=model)
    flags = predict_files.prediction_flags(probs, [img.mode for _, img in images], run.in_channels, threshold)
    frame = _predictions_frame(images, probs, run.classes, k, [engine_text(f) if f else "" for f in flags])
    if PREDICT_ORDERS[order] is not None:
        frame = frame.sort_values("confidence", ascending=PREDICT_ORDERS[order], kind="stable")
    flagged = sum(bool(f) for f in flags)
    if flagged:
        st.warning(
            _.plural(
                "{flagged} of {n:,} prediction is flagged (see the flag column): low confidence or an image "
                "unlike the training images. Check them before trusting the label.",
                "{flagged} of {n:,} predictions are flagged (see the flag column): low confidence or an image "
                "unlike the training images. Check them before trusting the label.",
                len(flags),
                flagged=flagged,
                n=len(flags),
            ),
            icon=":material/flag:",
        )
    # The flag next to the confidence it qualifies, before the runners-up: in view without scrolling.
    order = ["image", "file", "predicted", "confidence", "flag"]
    st.dataframe(
        frame,
        hide_index=True,
        key="eval-predictions",
        column_order=[*order, *(c for c in frame.columns if c not in order)],
        column_config={
            "image": st.column_config.ImageColumn(_("image"), width="small"),
            "file": st.column_config.TextColumn(_("file"), width="medium"),
            "predicted": st.column_config.TextColumn(_engine("predicted")),
            "confidence": st.column_config.ProgressColumn(
                _engine("confidence"), format="percent", min_value=0.0, max_value=1.0
            ),
            # Wide enough for its longest reason ("low confidence (< 50%); colour image, grayscale model").
            "flag": st.column_config.TextColumn(_("flag"), width="large"),
        },
    )
    names = [name for name, _ in images]
    csv_text = add_column(predict_files.predictions_csv(names, probs, run.classes, k), "flag", flags)
    st.download_button(
        _("Download CSV"),
        csv_text,
        file_name=f"{run.name}-predictions.csv",
        mime="text/csv",
        key="eval-predictions-csv",
        icon=":material/download:",
    )
    _prediction_detail(images, probs, run.classes, k)


def _prediction_detail(images, probs: np.ndarray, classes: list[str], k: int) -> None:
    """One image large, with its top-k table."""
    names = [name for name, _ in images]
    chosen = st.selectbox(
        _("Details for"),
        names,
        format_func=ui.plain,
        **ui.keep("eval-predict-detail", names[0], options=names),
    )
    index = names.index(chosen)
    c1, c2 = st.columns([1, 3])
    c1.image(
        plots_eval.thumbnail(convert_mode(images[index][1], "RGB"), PREDICT_THUMB), caption=ui.text(chosen)
    )
    c2.dataframe(
        metrics.top_k_table(probs[index : index + 1], [ui.plain(c) for c in classes], k)[0],
        hide_index=True,
        column_config={
            "class": st.column_config.TextColumn(_engine("class")),
            "probability": st.column_config.ProgressColumn(
                _engine("probability"), format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )
