"""Evaluation page: confusion matrix, classification report and the images behind every mistake."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import streamlit as st

import ui
from cnndash.data import ImageSet
from cnndash.evaluate import metrics, predict, predict_files
from cnndash.plots import evaluation as plots_eval
from cnndash.preprocess import convert_mode
from cnndash.runs import Run, list_runs
from ui import export_panel
from ui.evaluation import data_view

ui.route_guard()

GALLERY_LIMIT = 24  # images shown for one confusion-matrix cell
THUMB = 96  # gallery thumbnail side in pixels
NORMALIZE_OPTIONS = {
    "counts": None,
    "by true class (recall)": "true",
    "by predicted class (precision)": "pred",
}
BIG_MATRIX = 20  # above this many classes, offer the top-N confused classes view
TOP_K = 3  # classes listed per uploaded image, unless changed
TOP_LOSSES = 12  # images in the top-losses gallery
SUMMARY_TOP_K = 5  # the "Top-k accuracy" metric
GALLERY_COLUMNS = 6
GALLERY_TOP = 3  # class probabilities listed under each gallery image
CONFUSED_PAIRS = 20  # rows of the "Most confused pairs" table
PREDICT_THUMB = 128  # px: thumbnail of an uploaded image
PREDICT_TABLE_THUMB = 48  # px: thumbnail in the predictions table
PREDICT_LIMIT = 1000  # uploaded images classified at once
PREDICT_TYPES = [*ui.image_types(), "tif", "tiff", "zip"]
PREDICT_ORDERS = {"as uploaded": None, "least confident first": True, "most confident first": False}
CHECKPOINTS = ["best", "last"]
TABS = ["Confusion matrix", "Report", "Top losses", "Learning curves", "Predict", "Data"]


def _run_label(run: Run) -> str:
    acc = (run.summary or {}).get("val_accuracy")
    text = run.name
    if run.status == "running":
        text += " — ⏳ still training"
    elif run.status != "finished":
        text += f" — {run.status}"
    if acc is not None and run.status != "running":
        text += f" (val acc {acc:.1%})"
    return text


def _apply_heatmap_click(classes: list[str]) -> None:
    """Copy a clicked heatmap cell into the true/predicted selectors (before they are drawn)."""
    event = st.session_state.get("eval-cm-chart")
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    if not points:  # nothing selected (or the selection was cleared): the next click counts again
        st.session_state.pop("eval-last-click", None)
        return
    point = points[0]
    custom = point.get("customdata")
    if isinstance(custom, list | tuple) and len(custom) >= 2:
        true_idx, pred_idx = int(custom[0]), int(custom[1])
    elif str(point.get("y")) in classes and str(point.get("x")) in classes:
        true_idx, pred_idx = classes.index(str(point["y"])), classes.index(str(point["x"]))
    else:
        return
    click = (true_idx, pred_idx)
    if st.session_state.get("eval-last-click") != click:  # a new click wins over the selectors once
        st.session_state["eval-last-click"] = click
        st.session_state["eval-true"] = classes[true_idx]
        st.session_state["eval-pred"] = classes[pred_idx]


def _image_gallery(run: Run, dataset, predictions: metrics.Predictions, indices, captions, key: str) -> None:
    probs = predictions.probs
    cols = st.columns(GALLERY_COLUMNS)
    for n, (index, caption) in enumerate(zip(indices, captions, strict=True)):
        index = int(index)
        with cols[n % GALLERY_COLUMNS]:
            image, _ = dataset.val[index]
            st.image(plots_eval.thumbnail(image, THUMB), caption=caption)
            top = np.argsort(-probs[index])[:GALLERY_TOP]
            st.caption(" · ".join(f"{predictions.classes[c]} {probs[index, c]:.0%}" for c in top))
            if st.button("Grad-CAM", key=f"{key}-gradcam-{index}", icon=":material/visibility:"):
                st.session_state["gradcam-image"] = {"run": run.name, "index": index}
                st.switch_page(ui.PAGES["gradcam"])
            predicted = predictions.classes[int(predictions.preds[index])]
            data_view.render_label_actions(run, index, predicted, key=f"{key}-label-{index}")


def _heatmap(predictions: metrics.Predictions, selected: tuple[int, int]) -> tuple[pd.DataFrame, str | None]:
    """The confusion-matrix heatmap (top-N classes when there are many), the ``selected`` (true, predicted)
    cell outlined; returns the shown frame and the normalisation."""
    classes = predictions.classes
    k = len(classes)
    left, right = st.columns([2, 1])
    choice = left.radio(
        "Normalise",
        list(NORMALIZE_OPTIONS),
        horizontal=True,
        help="Counts, or each row divided by its true-class total (recall on the diagonal), "
        "or each column by its predicted-class total (precision on the diagonal).",
        **ui.keep("eval-normalize"),
    )
    normalize = NORMALIZE_OPTIONS[choice]
    counts = metrics.confusion_matrix_frame(predictions)
    shown = metrics.confusion_matrix_frame(predictions, normalize)
    subset = list(range(k))
    if k > BIG_MATRIX:
        if st.session_state.get("eval-top-n", 0) > k:  # kept from a run with more classes
            st.session_state["eval-top-n"] = k
        top_n = right.number_input(
            "Classes shown (most confused first)",
            min_value=2,
            max_value=k,
            help="Large matrices are unreadable: show the classes most involved in mistakes.",
            **ui.keep("eval-top-n", BIG_MATRIX),
        )
        subset = metrics.top_confused_classes(counts.to_numpy(), int(top_n))
    names = [classes[i] for i in subset]
    fig = plots_eval.confusion_matrix_figure(
        shown.loc[names, names],
        counts=counts.loc[names, names],
        normalized=normalize is not None,
        class_indices=subset,
        selected=selected,
    )
    st.plotly_chart(fig, key="eval-cm-chart", on_select="rerun", selection_mode="points")
    st.caption("Click a cell (or pick it below) to see its images.")
    return shown, normalize


def _matrix_downloads(run: Run, shown: pd.DataFrame, normalize: str | None) -> None:
    label = "normalised" if normalize else "counts"
    d1, d2 = st.columns(2)
    d1.download_button(
        "Confusion matrix (CSV)",
        shown.to_csv(),
        file_name=f"{run.name}-confusion-{label}.csv",
        mime="text/csv",
        key="eval-cm-csv",
        icon=":material/download:",
    )
    d2.download_button(
        "Confusion matrix (PNG, seaborn)",
        lambda: plots_eval.confusion_matrix_png(shown, normalized=normalize is not None, title=f"{run.name}"),
        file_name=f"{run.name}-confusion-{label}.png",
        mime="image/png",
        key="eval-cm-png",
        icon=":material/image:",
    )


def _select_cell(run: Run, predictions: metrics.Predictions, confused) -> tuple[int, int]:
    """The (true, predicted) cell whose images are shown: the selectors' values, after a new click on the
    heatmap (read before the heatmap is drawn, so that it can outline the cell)."""
    classes = predictions.classes
    cell_owner = (run.name, predictions.checkpoint)
    if (
        st.session_state.get("eval-cell-owner") != cell_owner
        or st.session_state.get("eval-true") not in classes
    ):
        # A new run or checkpoint: start on its most confused pair (or the first class).
        st.session_state["eval-cell-owner"] = cell_owner
        st.session_state["eval-true"] = confused["true"].iloc[0] if len(confused) else classes[0]
        st.session_state["eval-pred"] = confused["predicted"].iloc[0] if len(confused) else classes[0]
        st.session_state.pop("eval-last-click", None)
    _apply_heatmap_click(classes)
    pred = st.session_state.get("eval-pred")
    return classes.index(st.session_state["eval-true"]), classes.index(pred) if pred in classes else 0


def _cell_images(run: Run, dataset, predictions: metrics.Predictions) -> None:
    """The images of one (true, predicted) cell, chosen with the selectors or by clicking the heatmap."""
    classes = predictions.classes
    c1, c2 = st.columns(2)
    true_name = c1.selectbox("True class", classes, **ui.keep("eval-true"))
    pred_name = c2.selectbox("Predicted class", classes, **ui.keep("eval-pred", options=classes))
    true_idx, pred_idx = classes.index(true_name), classes.index(pred_name)
    indices = metrics.cell_indices(predictions, true_idx, pred_idx)
    kind = "correctly classified" if true_idx == pred_idx else "misclassified"
    st.markdown(f"**{len(indices)}** images of **{true_name}** predicted as **{pred_name}** ({kind}).")
    if len(indices) > GALLERY_LIMIT:
        st.caption(f"Showing the {GALLERY_LIMIT} most confident of {len(indices)}.")
    shown_idx = indices[:GALLERY_LIMIT]
    probs = predictions.probs
    captions = [f"#{i} · p({pred_name}) = {probs[i, pred_idx]:.0%}" for i in shown_idx]
    _image_gallery(run, dataset, predictions, shown_idx, captions, key="eval-cell")


def _confused_pairs(confused) -> None:
    if not len(confused):
        st.success("No mistakes on the validation split.", icon=":material/check_circle:")
        return
    st.dataframe(
        confused[["true", "predicted", "count", "fraction_of_true"]],
        hide_index=True,
        key="eval-confused-table",
        column_config={
            "fraction_of_true": st.column_config.ProgressColumn(
                "share of true class", format="percent", min_value=0.0, max_value=1.0
            )
        },
    )


def _confusion_section(run: Run, dataset, predictions: metrics.Predictions) -> None:
    confused = metrics.most_confused(
        predictions.targets, predictions.preds, predictions.classes, top=CONFUSED_PAIRS
    )
    selected = _select_cell(run, predictions, confused)
    shown, normalize = _heatmap(predictions, selected)
    _matrix_downloads(run, shown, normalize)
    st.subheader("Images of one cell")
    _cell_images(run, dataset, predictions)
    st.subheader("Most confused pairs")
    _confused_pairs(confused)


def _report_section(run: Run, predictions: metrics.Predictions) -> None:
    report = metrics.classification_report_frame(predictions.targets, predictions.preds, predictions.classes)
    accuracy = report.loc["accuracy"]
    # The accuracy row has no precision/recall: show it as a sentence, the rest as a sortable table.
    st.dataframe(
        plots_eval.style_report(report.drop(index="accuracy")),
        key="eval-report-table",
        column_config={
            col: st.column_config.NumberColumn(col, format="%.3f")
            for col in ("precision", "recall", "f1-score")
        },
    )
    st.caption(
        f"Accuracy {accuracy['f1-score']:.3f} on {int(accuracy['support'])} validation images. "
        "Precision: of the images predicted as a class, the share that truly are; recall: of the images "
        "of a class, the share found; F1: their harmonic mean; support: images of the class."
    )
    st.download_button(
        "Classification report (CSV)",
        report.to_csv(),
        file_name=f"{run.name}-classification_report.csv",
        mime="text/csv",
        key="eval-report-csv",
        icon=":material/download:",
    )
    st.subheader("Per-class accuracy")
    per_class = metrics.per_class_accuracy(predictions.targets, predictions.preds, predictions.classes)
    st.plotly_chart(
        plots_eval.per_class_accuracy_figure(per_class, predictions.accuracy), key="eval-per-class"
    )


def _top_losses_section(run: Run, dataset, predictions: metrics.Predictions) -> None:
    st.caption("The images the model got most wrong (highest cross-entropy): often mislabelled or ambiguous.")
    mistakes_only = st.toggle("Mistakes only", **ui.keep("eval-losses-mistakes", True))
    top = metrics.top_losses(predictions, k=TOP_LOSSES, mistakes_only=mistakes_only)
    if top.empty:
        st.success("No mistakes on the validation split.", icon=":material/check_circle:")
        return
    captions = [
        f"#{r.index} · {r.true} → {r.predicted} · loss {r.loss:.2f}" for r in top.itertuples(index=False)
    ]
    _image_gallery(run, dataset, predictions, top["index"], captions, key="eval-losses")


def _curves_section(run: Run) -> None:
    history = run.metrics()
    if history.empty:
        st.info("No finished epoch yet.", icon=":material/hourglass_empty:")
        return
    st.plotly_chart(plots_eval.learning_curves_figure(history), key="eval-curves")
    hint = metrics.overfitting_hint(
        history,
        augmented=bool(run.config.get("augment")),
        weight_decay=float(run.config.get("weight_decay") or 0.0),
    )
    if hint:
        st.warning(hint, icon=":material/trending_up:")
    else:
        st.caption("No sign of overfitting: validation loss has not risen while training loss fell.")


def _predict_controls(run: Run) -> tuple[list, int, float, str]:
    st.caption(
        f"Images are converted exactly as in training: {'grayscale' if run.in_channels == 1 else 'RGB'}, "
        f"resized to {run.image_size}×{run.image_size}, normalised with the dataset statistics — the same "
        "answers as `python -m cnndash predict` and an exported bundle's `predict.py`."
    )
    files = st.file_uploader(
        "Images (or zips of images) to classify",
        type=PREDICT_TYPES,
        accept_multiple_files=True,
        key="eval-upload",
    )
    num_classes = max(1, len(run.classes))
    if st.session_state.get("eval-topk", 0) > num_classes:  # a run with fewer classes than the last one
        st.session_state["eval-topk"] = num_classes
    c1, c2, c3 = st.columns(3)
    k = c1.number_input(
        "Top-k", min_value=1, max_value=num_classes, **ui.keep("eval-topk", min(TOP_K, num_classes))
    )
    threshold = c2.slider(
        "Flag below confidence",
        0.0,
        1.0,
        step=0.05,
        help="Predictions whose top probability is lower are flagged: the image may be unlike every class.",
        **ui.keep("eval-threshold", predict_files.LOW_CONFIDENCE),
    )
    order = c3.selectbox("Order", list(PREDICT_ORDERS), **ui.keep("eval-predict-order", "as uploaded"))
    return files or [], int(k), float(threshold), order


def _decode_uploads(files) -> list[tuple[str, object]]:
    """(name, PIL image) for every uploaded image and every image inside an uploaded zip; errors shown."""
    sources = []
    with ui.user_errors():
        sources = predict_files.upload_sources([(f.name, f.getvalue()) for f in files])
    if len(sources) > PREDICT_LIMIT:
        st.warning(
            f"{len(sources)} images: the first {PREDICT_LIMIT} are classified.", icon=":material/info:"
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
    ranked = np.argsort(-probs, axis=1, kind="stable")
    frame = pd.DataFrame(
        {
            "image": [_thumbnail_uri(image) for _, image in images],
            "file": [name for name, _ in images],
            "predicted": [classes[row[0]] for row in ranked],
            "confidence": probs.max(axis=1).astype(float),
        }
    )
    for rank in range(2, k + 1):
        frame[f"#{rank}"] = [
            f"{classes[row[rank - 1]]} ({p[row[rank - 1]]:.1%})" for row, p in zip(ranked, probs, strict=True)
        ]
    frame["flag"] = flags
    return frame


def _predict_section(run: Run, checkpoint: str) -> None:
    files, k, threshold, order = _predict_controls(run)
    if files:
        _predictions(run, checkpoint, files, k, threshold, order)
    st.subheader("Use this model outside cnndash")
    st.caption(
        "A bundle with TorchScript and ONNX files and a predict.py that needs only Pillow, NumPy and "
        "onnxruntime gives the same answers as this page (checked when it is built)."
    )
    export_panel.render_export(run, checkpoint, key="eval-export")


def _predictions(run: Run, checkpoint: str, files, k: int, threshold: float, order: str) -> None:
    images = _decode_uploads(files)
    if not images:
        return
    model = ui.load_model(run, checkpoint)
    probs = predict.predict_images(run, [img for _, img in images], checkpoint=checkpoint, model=model)
    flags = predict_files.prediction_flags(probs, [img.mode for _, img in images], run.in_channels, threshold)
    frame = _predictions_frame(images, probs, run.classes, k, flags)
    if PREDICT_ORDERS[order] is not None:
        frame = frame.sort_values("confidence", ascending=PREDICT_ORDERS[order], kind="stable")
    flagged = sum(bool(f) for f in flags)
    if flagged:
        st.warning(
            f"{flagged} of {len(flags)} predictions are flagged (see the flag column): low confidence or "
            "an image unlike the training images. Check them before trusting the label.",
            icon=":material/flag:",
        )
    st.dataframe(
        frame,
        hide_index=True,
        key="eval-predictions",
        column_config={
            "image": st.column_config.ImageColumn("image", width="small"),
            "confidence": st.column_config.ProgressColumn(
                "confidence", format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )
    csv_text = predict_files.predictions_csv([name for name, _ in images], probs, run.classes, k)
    st.download_button(
        "Download CSV",
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
    chosen = st.selectbox("Details for", names, **ui.keep("eval-predict-detail", names[0], options=names))
    index = names.index(chosen)
    c1, c2 = st.columns([1, 3])
    c1.image(plots_eval.thumbnail(convert_mode(images[index][1], "RGB"), PREDICT_THUMB), caption=chosen)
    c2.dataframe(
        metrics.top_k_table(probs[index : index + 1], classes, k)[0],
        hide_index=True,
        column_config={
            "probability": st.column_config.ProgressColumn(
                "probability", format="percent", min_value=0.0, max_value=1.0
            )
        },
    )


def _choose_run(runs: list[Run]) -> tuple[Run, str]:
    """The run (a finished one first) and its checkpoint, "best" or "last"."""
    by_name = {r.name: r for r in runs}
    finished = [r.name for r in runs if r.status == "finished"]
    top_left, top_right = st.columns([3, 1])
    run_name = top_left.selectbox(
        "Run",
        list(by_name),
        format_func=lambda name: _run_label(by_name[name]),
        **ui.keep("eval-run", (finished or list(by_name))[0], options=by_name),
    )
    checkpoint = top_right.radio(
        "Checkpoint",
        CHECKPOINTS,
        horizontal=True,
        help="best: the epoch with the highest validation accuracy; last: the final epoch.",
        **ui.keep("eval-checkpoint"),
    )
    return by_name[run_name], checkpoint


def _load_results(run: Run, checkpoint: str) -> tuple[ImageSet, metrics.Predictions]:
    predictions = ui.predictions(run, checkpoint)
    dataset = ui.run_dataset(run)
    if len(dataset.val) != len(predictions):
        raise metrics.EvaluationError(
            f"The dataset of run {run.name!r} now has {len(dataset.val)} validation images but the "
            f"predictions cover {len(predictions)}; the dataset changed since training."
        )
    return dataset, predictions


def _summary(predictions: metrics.Predictions) -> None:
    numbers = metrics.summary_numbers(predictions, k=SUMMARY_TOP_K)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Validation images", f"{numbers['images']}")
    m2.metric("Accuracy", f"{numbers['accuracy']:.1%}")
    if numbers["top_k"] >= 2:  # with 2 classes top-1 would only repeat the accuracy
        m3.metric(f"Top-{numbers['top_k']} accuracy", f"{numbers['top_k_accuracy']:.1%}")
    m4.metric("Mean loss", f"{numbers['mean_loss']:.3f}")


def _tab(label: str, run: Run, checkpoint: str, results) -> None:
    if label == "Learning curves":
        _curves_section(run)
    elif label == "Predict":
        _predict_section(run, checkpoint)
    elif label == "Data":
        data_view.render_data_view(run)
    elif results is None:
        st.info("Nothing to show until the problem above is fixed.", icon=":material/block:")
    elif label == "Confusion matrix":
        _confusion_section(run, *results)
    elif label == "Report":
        _report_section(run, results[1])
    elif label == "Top losses":
        _top_losses_section(run, *results)


def main() -> None:
    st.title("Evaluation")
    st.caption("Which classes does the model confuse, and why? Click any cell to see the images behind it.")
    runs = list_runs()
    if not runs:
        st.info("No training runs yet. Train a model first, then come back here.", icon=":material/info:")
        st.page_link(ui.PAGES["training"], label="Go to Training", icon=":material/model_training:")
        return
    run, checkpoint = _choose_run(runs)
    if run.status == "running":
        st.info(
            "This run is still training: results reflect its latest saved checkpoint.",
            icon=":material/hourglass_top:",
        )
    results = None  # (dataset, predictions) once both load
    with ui.user_errors():
        results = _load_results(run, checkpoint)
    if results is not None:
        _summary(results[1])
    # Only the open tab runs (on_change="rerun"): the galleries and charts of hidden tabs cost nothing.
    tabs = st.tabs(TABS, key="eval-tab", on_change="rerun")
    for label, tab in zip(TABS, tabs, strict=True):
        if tab.open is not False:
            with tab, ui.user_errors():
                _tab(label, run, checkpoint, results)


main()
