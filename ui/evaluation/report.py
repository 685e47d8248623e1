"""The Evaluation page's **Report**, **Top losses** and **Learning curves** tabs: the classification
report with per-class accuracy, the images the model got most wrong, and the run's curves with the
overfitting hint.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.data import ImageSet
from cnndash.evaluate import metrics
from cnndash.plots import evaluation as plots_eval
from cnndash.runs import Run
from cnndash.tables import safe_frame
from cnndash.training.health import run_health
from ui import i18n
from ui.engine_text import engine_text
from ui.evaluation.gallery import image_gallery

_ = i18n.translator("evaluation")
_engine = i18n.translator("engine")

TOP_LOSSES = 12  # images in the top-losses gallery


def render_report(run: Run, predictions: metrics.Predictions) -> None:
    """The classification report (table, sentence, CSV) and the per-class accuracy chart."""
    report = metrics.classification_report_frame(predictions.targets, predictions.preds, predictions.classes)
    accuracy = report.loc["accuracy"]
    # The accuracy row has no precision/recall: show it as a sentence, the rest as a sortable table.
    st.dataframe(
        plots_eval.style_report(report.drop(index="accuracy")),
        key="eval-report-table",
        column_config={
            col: st.column_config.NumberColumn(_engine(col), format="%.3f")
            for col in ("precision", "recall", "f1-score")
        }
        | {"support": st.column_config.NumberColumn(_engine("support"))},
    )
    st.caption(
        _(
            "Accuracy {accuracy:.3f} on {n} validation images. "
            "Precision: of the images predicted as a class, the share that truly are; recall: of the images "
            "of a class, the share found; F1: their harmonic mean; support: images of the class.",
            accuracy=accuracy["f1-score"],
            n=int(accuracy["support"]),
        )
    )
    st.download_button(
        _("Classification report (CSV)"),
        safe_frame(report).to_csv(),  # class names as rows: never spreadsheet formulas
        file_name=f"{run.name}-classification_report.csv",
        mime="text/csv",
        key="eval-report-csv",
        icon=":material/download:",
    )
    st.subheader(_("Per-class accuracy"))
    per_class = metrics.per_class_accuracy(predictions.targets, predictions.preds, predictions.classes)
    st.plotly_chart(
        plots_eval.per_class_accuracy_figure(per_class, predictions.accuracy, tr=_engine),
        key="eval-per-class",
    )


def render_top_losses(run: Run, dataset: ImageSet, predictions: metrics.Predictions) -> None:
    """The validation images with the highest loss (mistakes only, unless switched off)."""
    st.caption(
        _("The images the model got most wrong (highest cross-entropy): often mislabelled or ambiguous.")
    )
    mistakes_only = st.toggle(_("Mistakes only"), **ui.keep("eval-losses-mistakes", True))
    top = metrics.top_losses(predictions, k=TOP_LOSSES, mistakes_only=mistakes_only)
    if top.empty:
        st.success(_("No mistakes on the validation split."), icon=":material/check_circle:")
        return
    captions = [
        _(
            "#{i} · {true} → {pred} · loss {loss:.2f}",
            i=int(r.index),
            true=ui.text(r.true),
            pred=ui.text(r.predicted),
            loss=r.loss,
        )
        for r in top.itertuples(index=False)
    ]
    image_gallery(run, dataset, predictions, top["index"], captions, key="eval-losses")


def render_learning_curves(run: Run) -> None:
    """The run's loss and accuracy per epoch, and a warning when validation loss rose (overfitting)."""
    history = run.metrics()
    if history.empty:
        st.info(_("No finished epoch yet."), icon=":material/hourglass_empty:")
        return
    st.plotly_chart(plots_eval.learning_curves_figure(history, tr=_engine), key="eval-curves")
    hint = metrics.overfitting_hint(
        history,
        augmented=bool(run.config.get("augment")),
        weight_decay=float(run.config.get("weight_decay") or 0.0),
    )
    health = run_health(
        history.to_dict("records"),
        num_classes=len(run.classes),
        lr=float(run.config.get("lr") or 0.0),
        optimizer=str(run.config.get("optimizer") or "adam"),
    )
    if hint:
        st.warning(engine_text(hint), icon=":material/trending_up:")
    if not health.ok:  # a spike or a blow-up is not "no sign of overfitting"
        st.warning(engine_text(health.note), icon=":material/ssid_chart:")
    elif not hint:
        st.caption(_("No sign of overfitting: validation loss has not risen while training loss fell."))
