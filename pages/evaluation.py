"""Evaluation page: confusion matrix, classification report and the images behind every mistake.

The tabs' parts live in :mod:`ui.evaluation`: ``confusion`` (the heatmap and the images of a cell),
``report`` (report, top losses, learning curves), ``predict_tab`` (new images, export) and ``data_view``.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.data import ImageSet
from cnndash.evaluate import metrics, predict
from cnndash.runs import Run, list_runs
from cnndash.text import N_
from ui import i18n
from ui.evaluation import confusion, data_view, predict_tab, report

ui.route_guard()
_ = i18n.translator("evaluation")

SUMMARY_TOP_K = 5  # the "Top-k accuracy" metric
CHECKPOINTS = ["best", "last"]
CHECKPOINT_LABELS = {"best": N_("best"), "last": N_("last")}
STATUSES = {"stopped": N_("stopped"), "failed": N_("failed"), "interrupted": N_("interrupted")}
TABS = [
    N_("Confusion matrix"),
    N_("Report"),
    N_("Top losses"),
    N_("Learning curves"),
    N_("Predict"),
    N_("Data"),
]


def _run_label(run: Run) -> str:
    acc = (run.summary or {}).get("val_accuracy")
    text = ui.plain(run.name)  # a selectbox option: plain text, its controls shown
    if run.status == "running":
        text += " — ⏳ " + _("still training")
    elif run.status != "finished":
        text += " — " + (_(STATUSES[run.status]) if run.status in STATUSES else ui.plain(run.status))
    if acc is not None and run.status != "running":
        text += " " + _("(val acc {acc:.1%})", acc=acc)
    return text


def _choose_run(runs: list[Run]) -> tuple[Run, str]:
    """The workspace's run (the one just trained, or last chosen on any page), else the newest finished
    one; and its checkpoint, "best" or "last"."""
    by_name = {r.name: r for r in runs}
    finished = [r.name for r in runs if r.status == "finished"]
    top_left, top_right = st.columns([3, 1])
    run_name = top_left.selectbox(
        _("Run"),
        list(by_name),
        format_func=lambda name: _run_label(by_name[name]),
        **ui.workspace.bind("run", "eval-run", default=(finished or list(by_name))[0], options=by_name),
    )
    checkpoint = top_right.radio(
        _("Checkpoint"),
        CHECKPOINTS,
        format_func=lambda checkpoint: _(CHECKPOINT_LABELS[checkpoint]),
        horizontal=True,
        help=_("best: the epoch with the highest validation accuracy; last: the final epoch."),
        **ui.keep("eval-checkpoint"),
    )
    return by_name[run_name], checkpoint


def _load_results(run: Run, checkpoint: str) -> tuple[ImageSet, metrics.Predictions]:
    predictions = ui.predictions(run, checkpoint)
    dataset = ui.run_dataset(run)
    predict.check_predictions_match(run, dataset, predictions)
    return dataset, predictions


def _summary(predictions: metrics.Predictions) -> None:
    numbers = metrics.summary_numbers(predictions, k=SUMMARY_TOP_K)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(_("Validation images"), f"{numbers['images']}")
    m2.metric(_("Accuracy"), f"{numbers['accuracy']:.1%}")
    if numbers["top_k"] >= 2:  # with 2 classes top-1 would only repeat the accuracy
        m3.metric(_("Top-{k} accuracy", k=numbers["top_k"]), f"{numbers['top_k_accuracy']:.1%}")
    m4.metric(_("Mean loss"), f"{numbers['mean_loss']:.3f}")


def _tab(label: str, run: Run, checkpoint: str, results) -> None:
    if label == "Learning curves":
        report.render_learning_curves(run)
    elif label == "Predict":
        predict_tab.render_predict(run, checkpoint)
    elif label == "Data":
        data_view.render_data_view(run)
    elif results is None:
        st.info(_("Nothing to show until the problem above is fixed."), icon=":material/block:")
    elif label == "Confusion matrix":
        confusion.render_confusion(run, *results)
    elif label == "Report":
        report.render_report(run, results[1])
    elif label == "Top losses":
        report.render_top_losses(run, *results)


def main() -> None:
    st.title(_("Evaluation"))
    st.caption(
        _("Which classes does the model confuse, and why? Click any cell to see the images behind it.")
    )
    runs = list_runs(include_hidden=False)  # a label check's fold runs are listed under it (Runs tab)
    if not runs:
        st.info(_("No training runs yet. Train a model first, then come back here."), icon=":material/info:")
        st.page_link(ui.PAGES["training"], label=_("Go to Training"), icon=":material/model_training:")
        return
    run, checkpoint = _choose_run(runs)
    if run.status == "running":
        st.info(
            _("This run is still training: results reflect its latest saved checkpoint."),
            icon=":material/hourglass_top:",
        )
    results = None  # (dataset, predictions) once both load
    with ui.user_errors():
        results = _load_results(run, checkpoint)
    if results is not None:
        _summary(results[1])
    # Only the open tab runs: the galleries and charts of hidden tabs cost nothing. It stays open across a
    # language switch (ui.kept_tabs).
    tabs = ui.kept_tabs(TABS, "eval-tab", _)

    for label, tab in zip(TABS, tabs, strict=True):
        if tab.open is not False:
            with tab, ui.user_errors():
                _tab(label, run, checkpoint, results)


main()
