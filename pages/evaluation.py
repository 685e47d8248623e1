"""Evaluation page: confusion matrix, classification report and the images behind every mistake."""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from cnndash import metrics, plots_eval, predict
from cnndash.preprocess import open_image
from cnndash.runs import Run, list_runs, load_run

GALLERY_LIMIT = 24  # images shown for one confusion-matrix cell
THUMB = 96  # gallery thumbnail side in pixels
NORMALIZE_OPTIONS = {
    "counts": None,
    "by true class (recall)": "true",
    "by predicted class (precision)": "pred",
}
BIG_MATRIX = 20  # above this many classes, offer the top-N confused classes view


@st.cache_resource(show_spinner=False, max_entries=2)
def _dataset(run_path: str, dataset: str, seed: int, val_fraction: float):
    """The run's dataset (read-only, shared): the gallery needs the validation images."""
    return load_run(run_path).dataset()


@st.cache_resource(show_spinner=False, max_entries=2)
def _model(run_path: str, checkpoint: str, checkpoint_sha: str):
    return load_run(run_path).load_model(checkpoint, device="cpu")


def _remembered(key: str) -> str:
    """Restore a widget's value after its tab was hidden (Streamlit drops the state of widgets that
    were not drawn in a run); pair with :func:`_remember` after drawing it."""
    memory = f"{key}-memory"
    if key not in st.session_state and memory in st.session_state:
        st.session_state[key] = st.session_state[memory]
    return key


def _remember(key: str) -> None:
    st.session_state[f"{key}-memory"] = st.session_state[key]


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


def _compute_predictions(run: Run, checkpoint: str) -> metrics.Predictions:
    cached = predict.predictions_cache_path(run.path, checkpoint).is_file()
    bar = None if cached else st.progress(0.0, text="Predicting the validation images…")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.progress(done / max(total, 1), text=f"Predicting the validation images… {done}/{total}")

    predictions = predict.predict_run(run, checkpoint, on_progress=progress)
    if bar is not None:
        bar.empty()
    return predictions


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
    cols = st.columns(6)
    for n, (index, caption) in enumerate(zip(indices, captions, strict=True)):
        index = int(index)
        with cols[n % 6]:
            image, _ = dataset.val[index]
            st.image(plots_eval.thumbnail(image, THUMB), caption=caption)
            top = np.argsort(-probs[index])[:3]
            st.caption(" · ".join(f"{predictions.classes[c]} {probs[index, c]:.0%}" for c in top))
            if st.button("Grad-CAM", key=f"{key}-gradcam-{index}", icon=":material/visibility:"):
                st.session_state["gradcam-image"] = {"run": run.name, "index": index}
                st.switch_page(ui.PAGES["gradcam"])


def _confusion_section(run: Run, dataset, predictions: metrics.Predictions) -> None:
    classes = predictions.classes
    k = len(classes)
    left, right = st.columns([2, 1])
    with left:
        choice = st.radio(
            "Normalise",
            list(NORMALIZE_OPTIONS),
            horizontal=True,
            key=_remembered("eval-normalize"),
            help="Counts, or each row divided by its true-class total (recall on the diagonal), "
            "or each column by its predicted-class total (precision on the diagonal).",
        )
    _remember("eval-normalize")
    normalize = NORMALIZE_OPTIONS[choice]
    counts = metrics.confusion_matrix_frame(predictions)
    shown = metrics.confusion_matrix_frame(predictions, normalize)
    subset = list(range(k))
    if k > BIG_MATRIX:
        with right:
            st.session_state.setdefault(_remembered("eval-top-n"), BIG_MATRIX)
            top_n = st.number_input(
                "Classes shown (most confused first)",
                min_value=2,
                max_value=k,
                key="eval-top-n",
                help="Large matrices are unreadable: show the classes most involved in mistakes.",
            )
            _remember("eval-top-n")
        subset = metrics.top_confused_classes(counts.to_numpy(), int(top_n))
    names = [classes[i] for i in subset]
    fig = plots_eval.confusion_matrix_figure(
        shown.loc[names, names],
        counts=counts.loc[names, names],
        normalized=normalize is not None,
        class_indices=subset,
    )
    st.plotly_chart(fig, key="eval-cm-chart", on_select="rerun", selection_mode="points")
    st.caption("Click a cell (or pick it below) to see its images.")

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

    st.subheader("Images of one cell")
    confused = metrics.most_confused(predictions.targets, predictions.preds, classes, top=20)
    cell_owner = (run.name, predictions.checkpoint)
    for key in ("eval-true", "eval-pred"):
        _remembered(key)
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
    c1, c2 = st.columns(2)
    true_name = c1.selectbox("True class", classes, key="eval-true")
    pred_name = c2.selectbox("Predicted class", classes, key="eval-pred")
    for key in ("eval-true", "eval-pred"):
        _remember(key)
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

    st.subheader("Most confused pairs")
    if len(confused):
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
    else:
        st.success("No mistakes on the validation split.", icon=":material/check_circle:")


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
    st.session_state.setdefault(_remembered("eval-losses-mistakes"), True)
    mistakes_only = st.toggle("Mistakes only", key="eval-losses-mistakes")
    _remember("eval-losses-mistakes")
    top = metrics.top_losses(predictions, k=12, mistakes_only=mistakes_only)
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
    hint = metrics.overfitting_hint(history)
    if hint:
        st.warning(hint, icon=":material/trending_up:")
    else:
        st.caption("No sign of overfitting: validation loss has not risen while training loss fell.")


def _predict_section(run: Run, checkpoint: str) -> None:
    st.caption(
        f"Images are converted exactly as in training: {'grayscale' if run.in_channels == 1 else 'RGB'}, "
        f"resized to {run.image_size}×{run.image_size}, normalised with the dataset statistics."
    )
    files = st.file_uploader(
        "Images to classify",
        type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
        accept_multiple_files=True,
        key="eval-upload",
    )
    num_classes = max(1, len(run.classes))
    st.session_state.setdefault(_remembered("eval-topk"), min(3, num_classes))
    if st.session_state["eval-topk"] > num_classes:  # a run with fewer classes than the last one
        st.session_state["eval-topk"] = num_classes
    k = st.number_input("Top-k", min_value=1, max_value=num_classes, key="eval-topk")
    _remember("eval-topk")
    if not files:
        return
    sha = run.fingerprint(checkpoint)
    model = _model(str(run.path), checkpoint, sha)
    images = []
    for file in files:
        with ui.user_errors():
            images.append((file.name, open_image(file.getvalue(), file.name)))
    if not images:
        return
    probs = predict.predict_images(run, [img for _, img in images], checkpoint=checkpoint, model=model)
    tables = metrics.top_k_table(probs, run.classes, int(k))
    for (name, image), table in zip(images, tables, strict=True):
        c1, c2 = st.columns([1, 3])
        c1.image(plots_eval.thumbnail(image.convert("RGB"), 128), caption=name)
        c2.dataframe(
            table,
            hide_index=True,
            column_config={
                "probability": st.column_config.ProgressColumn(
                    "probability", format="percent", min_value=0.0, max_value=1.0
                )
            },
        )


st.title("Evaluation")
st.caption("Which classes does the model confuse, and why? Click any cell to see the images behind it.")

runs = list_runs()
if not runs:
    st.info("No training runs yet. Train a model first, then come back here.", icon=":material/info:")
    st.page_link(ui.PAGES["training"], label="Go to Training", icon=":material/model_training:")
    st.stop()

by_name = {r.name: r for r in runs}
finished = [i for i, r in enumerate(runs) if r.status == "finished"]
top_left, top_right = st.columns([3, 1])
run_name = top_left.selectbox(
    "Run",
    list(by_name),
    index=finished[0] if finished else 0,
    format_func=lambda name: _run_label(by_name[name]),
    key="eval-run",
)
run = by_name[run_name]
checkpoint = top_right.radio(
    "Checkpoint",
    ["best", "last"],
    horizontal=True,
    key="eval-checkpoint",
    help="best: the epoch with the highest validation accuracy; last: the final epoch.",
)
if run.status == "running":
    st.info(
        "This run is still training: results reflect its latest saved checkpoint.",
        icon=":material/hourglass_top:",
    )

predictions = dataset = None
with ui.user_errors():
    predictions = _compute_predictions(run, checkpoint)
    cfg = run.config
    dataset = _dataset(
        str(run.path), str(cfg.get("dataset")), int(cfg.get("seed", 0)), float(cfg.get("val_fraction", 0.2))
    )
    if len(dataset.val) != len(predictions):
        raise metrics.EvaluationError(
            f"The dataset of run {run.name!r} now has {len(dataset.val)} validation images but the "
            f"predictions cover {len(predictions)}; the dataset changed since training."
        )

if predictions is not None and dataset is not None:
    numbers = metrics.summary_numbers(predictions, k=5)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Validation images", f"{numbers['images']}")
    m2.metric("Accuracy", f"{numbers['accuracy']:.1%}")
    m3.metric(f"Top-{numbers['top_k']} accuracy", f"{numbers['top_k_accuracy']:.1%}")
    m4.metric("Mean loss", f"{numbers['mean_loss']:.3f}")

TABS = ["Confusion matrix", "Report", "Top losses", "Learning curves", "Predict"]
# Only the open tab runs (on_change="rerun"): the galleries and charts of hidden tabs cost nothing.
tabs = st.tabs(TABS, key="eval-tab", on_change="rerun")
ready = predictions is not None and dataset is not None
for label, tab in zip(TABS, tabs, strict=True):
    if tab.open is False:
        continue
    with tab, ui.user_errors():
        if label == "Learning curves":
            _curves_section(run)
        elif label == "Predict":
            _predict_section(run, checkpoint)
        elif not ready:
            st.info("Nothing to show until the problem above is fixed.", icon=":material/block:")
        elif label == "Confusion matrix":
            _confusion_section(run, dataset, predictions)
        elif label == "Report":
            _report_section(run, predictions)
        elif label == "Top losses":
            _top_losses_section(run, dataset, predictions)
