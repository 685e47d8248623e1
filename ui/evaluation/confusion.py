"""The Evaluation page's **Confusion matrix** tab: the heatmap (top-N classes when there are many), its
downloads, the images of one (true, predicted) cell chosen by clicking the heatmap or with the selectors,
and the most confused pairs. ``render_confusion(run, dataset, predictions)`` draws it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from cnndash.data import ImageSet
from cnndash.evaluate import metrics
from cnndash.plots import evaluation as plots_eval
from cnndash.runs import Run
from cnndash.tables import safe_frame
from cnndash.text import N_
from ui import i18n
from ui.evaluation.gallery import image_gallery

_ = i18n.translator("evaluation")
_engine = i18n.translator("engine")

GALLERY_LIMIT = 24  # images shown for one confusion-matrix cell
NORMALIZE_OPTIONS = {
    N_("counts"): None,
    N_("by true class (recall)"): "true",
    N_("by predicted class (precision)"): "pred",
}
BIG_MATRIX = 20  # above this many classes, offer the top-N confused classes view
CONFUSED_PAIRS = 20  # rows of the "Most confused pairs" table


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


def _heatmap(predictions: metrics.Predictions, selected: tuple[int, int]) -> tuple[pd.DataFrame, str | None]:
    """The confusion-matrix heatmap (top-N classes when there are many), the ``selected`` (true, predicted)
    cell outlined; returns the shown frame and the normalisation."""
    classes = predictions.classes
    k = len(classes)
    left, right = st.columns([2, 1])
    choice = left.radio(
        _("Normalise"),
        list(NORMALIZE_OPTIONS),
        format_func=_,
        horizontal=True,
        help=_(
            "Counts, or each row divided by its true-class total (recall on the diagonal), "
            "or each column by its predicted-class total (precision on the diagonal)."
        ),
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
            _("Classes shown (most confused first)"),
            min_value=2,
            max_value=k,
            help=_("Large matrices are unreadable: show the classes most involved in mistakes."),
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
        tr=_engine,
    )
    st.plotly_chart(fig, key="eval-cm-chart", on_select="rerun", selection_mode="points")
    st.caption(_("Click a cell (or pick it below) to see its images."))
    return shown, normalize


def _matrix_downloads(run: Run, shown: pd.DataFrame, normalize: str | None) -> None:
    label = "normalised" if normalize else "counts"
    d1, d2 = st.columns(2)
    d1.download_button(
        _("Confusion matrix (CSV)"),
        safe_frame(shown).to_csv(),  # class names as rows and columns: never spreadsheet formulas
        file_name=f"{run.name}-confusion-{label}.csv",
        mime="text/csv",
        key="eval-cm-csv",
        icon=":material/download:",
    )
    d2.download_button(
        _("Confusion matrix (PNG, seaborn)"),
        lambda: plots_eval.confusion_matrix_png(
            shown, normalized=normalize is not None, title=f"{run.name}", tr=_engine
        ),
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


def _cell_images(run: Run, dataset: ImageSet, predictions: metrics.Predictions) -> None:
    """The images of one (true, predicted) cell, chosen with the selectors or by clicking the heatmap."""
    classes = predictions.classes
    c1, c2 = st.columns(2)
    true_name = c1.selectbox(_("True class"), classes, **ui.keep("eval-true"))
    pred_name = c2.selectbox(_("Predicted class"), classes, **ui.keep("eval-pred", options=classes))
    true_idx, pred_idx = classes.index(true_name), classes.index(pred_name)
    indices = metrics.cell_indices(predictions, true_idx, pred_idx)
    kind = _("correctly classified") if true_idx == pred_idx else _("misclassified")
    st.markdown(
        _.plural("**{n:,} image** of **{true}** predicted as **{pred}** ({kind}).",
                 "**{n:,} images** of **{true}** predicted as **{pred}** ({kind}).", len(indices),
                 n=len(indices), true=ui.text(true_name), pred=ui.text(pred_name), kind=kind)
    )  # fmt: skip
    if len(indices) > GALLERY_LIMIT:
        st.caption(_("Showing the {shown} most confident of {n}.", shown=GALLERY_LIMIT, n=len(indices)))
    shown_idx = indices[:GALLERY_LIMIT]
    probs = predictions.probs
    captions = [
        _("#{i} · p({cls}) = {p:.0%}", i=int(i), cls=ui.text(pred_name), p=probs[i, pred_idx])
        for i in shown_idx
    ]
    image_gallery(run, dataset, predictions, shown_idx, captions, key="eval-cell")


def _confused_pairs(confused) -> None:
    if not len(confused):
        st.success(_("No mistakes on the validation split."), icon=":material/check_circle:")
        return
    st.dataframe(
        confused[["true", "predicted", "count", "fraction_of_true"]],
        hide_index=True,
        key="eval-confused-table",
        column_config={
            "true": st.column_config.TextColumn(_("true class")),
            "predicted": st.column_config.TextColumn(_("predicted class")),
            "count": st.column_config.NumberColumn(_("images")),
            "fraction_of_true": st.column_config.ProgressColumn(
                _("share of true class"), format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )


def render_confusion(run: Run, dataset: ImageSet, predictions: metrics.Predictions) -> None:
    """The Confusion matrix tab of ``run``'s ``predictions`` on ``dataset``'s validation split."""
    confused = metrics.most_confused(
        predictions.targets, predictions.preds, predictions.classes, top=CONFUSED_PAIRS
    )
    selected = _select_cell(run, predictions, confused)
    shown, normalize = _heatmap(predictions, selected)
    _matrix_downloads(run, shown, normalize)
    st.subheader(_("Images of one cell"))
    _cell_images(run, dataset, predictions)
    st.subheader(_("Most confused pairs"))

    _confused_pairs(confused)
