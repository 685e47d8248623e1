"""The Evaluation page's figures (cnndash.plots.evaluation): the data they draw, their axes and their PNGs.

Tables are built by hand here so that a figure test fails only when the figure is wrong (the numbers
behind them are tested in test_metrics.py).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnndash.plots.evaluation import (
    MAX_ANNOTATED_CLASSES,
    SELECTED_CELL_COLOUR,
    confusion_matrix_figure,
    confusion_matrix_png,
    learning_curves_figure,
    per_class_accuracy_figure,
    style_report,
    thumbnail,
)

CLASSES = ["cat", "dog", "owl"]
COUNTS = pd.DataFrame([[5, 1, 0], [2, 3, 1], [0, 0, 4]], index=CLASSES, columns=CLASSES)


def test_confusion_matrix_figure_draws_counts_with_true_class_rows():
    fig = confusion_matrix_figure(COUNTS, title="Confusion")
    heatmap, cells = fig.data
    assert heatmap.type == "heatmap" and cells.type == "scatter"
    assert np.asarray(heatmap.z).tolist() == COUNTS.to_numpy(dtype=float).tolist()
    assert list(heatmap.x) == CLASSES and list(heatmap.y) == CLASSES
    assert heatmap.text[1][0] == "2"  # true dog predicted as cat
    assert (heatmap.zmin, heatmap.zmax) == (0, 5.0)
    assert heatmap.colorbar.title.text == "images"
    assert fig.layout.xaxis.title.text == "predicted class" and fig.layout.yaxis.title.text == "true class"
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.title.text == "Confusion"
    # one selectable marker per cell carrying [true index, predicted index, count, value]
    data = {(c[0], c[1]): (c[2], c[3]) for c in cells.customdata}
    assert len(data) == 9 and data[(1, 0)] == (2, 2.0) and data[(2, 2)] == (4, 4.0)
    assert cells.marker.opacity == 0


def test_confusion_matrix_figure_normalized_shows_fraction_and_count():
    fractions = COUNTS.div(COUNTS.sum(axis=1), axis=0)
    fig = confusion_matrix_figure(fractions, counts=COUNTS, normalized=True, class_indices=[4, 7, 9])
    heatmap, cells = fig.data
    assert heatmap.zmax == 1 and heatmap.colorbar.title.text == "fraction"
    assert heatmap.text[1][1] == "50%<br>3"  # 3 of 6 dogs
    assert "%{customdata[3]:.1%}" in cells.hovertemplate
    # A sub-matrix keeps the original class indices in its click data.
    assert sorted({c[0] for c in cells.customdata}) == [4, 7, 9]


def test_confusion_matrix_figure_drops_cell_texts_for_many_classes_and_refuses_non_square():
    n = MAX_ANNOTATED_CLASSES + 1
    names = [f"c{i}" for i in range(n)]
    big = pd.DataFrame(np.eye(n, dtype=int), index=names, columns=names)
    heatmap = confusion_matrix_figure(big).data[0]
    assert heatmap.text is None and heatmap.texttemplate is None
    with pytest.raises(ValueError, match="square"):
        confusion_matrix_figure(COUNTS.iloc[:2])


def test_confusion_matrix_png_decodes_at_200_dpi():
    data = confusion_matrix_png(COUNTS, title="Counts")
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    dpi = image.info.get("dpi")
    assert dpi is not None and round(dpi[0]) == 200
    side = max(4.0, min(24.0, 1.5 + 0.45 * 3))  # inches, as the builder sizes a 3-class matrix
    assert image.size == (round(side * 1.15 * 200), round(side * 200))


def test_per_class_accuracy_figure_bars_hover_and_overall_line():
    frame = pd.DataFrame(
        {"class": CLASSES, "accuracy": [5 / 6, 0.5, 1.0], "correct": [5, 3, 1], "support": [6, 6, 1]}
    )
    fig = per_class_accuracy_figure(frame, overall=0.75)
    bar = fig.data[0]
    assert list(bar.x) == CLASSES and list(bar.y) == pytest.approx([5 / 6, 0.5, 1.0])
    # "1 of 1 image", never "1 images": the count and its noun come worded from the builder
    assert [list(c) for c in bar.customdata] == [[5, "6 images"], [3, "6 images"], [1, "1 image"]]
    assert "%{customdata[0]} of %{customdata[1]}" in bar.hovertemplate
    line = fig.layout.shapes[0]
    assert (line.y0, line.y1) == (0.75, 0.75)
    assert fig.layout.annotations[0].text == "overall 75.0%"
    assert fig.layout.yaxis.title.text == "accuracy (recall)" and fig.layout.yaxis.tickformat == ".0%"
    # Without counts there is no per-image hover line, and no overall line without an overall value.
    bare = per_class_accuracy_figure(frame[["class", "accuracy"]])
    assert bare.data[0].customdata is None and not bare.layout.shapes


def test_learning_curves_figure_plots_each_metric_per_epoch():
    history = pd.DataFrame(
        {"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "train_acc": [0.5, 0.7, 0.8],
         "val_loss": [1.1, 0.8, 0.9], "val_acc": [0.4, 0.6, 0.65]}
    )  # fmt: skip
    fig = learning_curves_figure(history)
    traces = {t.name: t for t in fig.data}
    assert sorted(traces) == ["train acc", "train loss", "val acc", "val loss"]
    assert list(traces["val loss"].y) == [1.1, 0.8, 0.9] and list(traces["val loss"].x) == [1, 2, 3]
    assert (
        traces["train loss"].xaxis == "x" and traces["train acc"].xaxis == "x2"
    )  # loss left, accuracy right
    assert [a.text for a in fig.layout.annotations] == ["loss", "accuracy"]
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.xaxis.dtick == 1
    assert fig.layout.yaxis2.tickformat == ".0%"
    # Only the columns present are drawn.
    assert [t.name for t in learning_curves_figure(history[["epoch", "val_acc"]]).data] == ["val acc"]


def test_style_report_colours_complete_score_rows_only():
    report = pd.DataFrame(
        {"precision": [0.9, 0.2, np.nan], "recall": [0.8, 0.1, np.nan], "f1-score": [0.85, 0.15, 0.7],
         "support": [10, 10, 20]},
        index=["cat", "dog", "accuracy"],
    )  # fmt: skip
    styled = style_report(report)
    styles = styled._compute().ctx
    assert {(r, c) for r, c in styles} == {(r, c) for r in (0, 1) for c in (0, 1, 2)}
    good, bad = dict(styles[(0, 0)]), dict(styles[(1, 0)])
    assert good["background-color"] != bad["background-color"]
    html = styled.to_html()
    assert "0.850" in html and "0.700" in html  # scores to three decimals


def test_thumbnail_enlarges_crisply_and_shrinks_to_the_longer_side():
    checker = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    big = thumbnail(checker, 8)
    assert big.size == (8, 8)
    assert set(np.unique(np.asarray(big)).tolist()) == {0, 255}  # nearest-neighbour: no blurred greys
    assert thumbnail(Image.new("RGB", (300, 100)), 60).size == (60, 20)
    assert thumbnail(Image.new("RGB", (1, 500)), 50).size == (1, 50)


def test_the_selected_cell_is_outlined_also_in_a_top_n_view():
    fig = confusion_matrix_figure(COUNTS, selected=(1, 0))  # true dog, predicted cat
    (outline,) = fig.layout.shapes
    assert (outline.x0, outline.x1, outline.y0, outline.y1) == (-0.5, 0.5, 0.5, 1.5)
    assert outline.line.width >= 2 and outline.line.color == SELECTED_CELL_COLOUR
    assert not confusion_matrix_figure(COUNTS).layout.shapes
    # A sub-matrix of the original classes 2 and 1: the cell (true 1, predicted 2) sits at row 1, column 0.
    sub = COUNTS.iloc[[2, 1], [2, 1]]
    (outline,) = confusion_matrix_figure(sub, class_indices=[2, 1], selected=(1, 2)).layout.shapes
    assert (outline.x0, outline.y0) == (-0.5, 0.5)
    assert not confusion_matrix_figure(sub, class_indices=[2, 1], selected=(0, 0)).layout.shapes  # not shown
