"""cnndash.evaluate.metrics: pure metrics against scikit-learn, and predictions of a real trained run (cache, CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from cnndash.evaluate import metrics
from cnndash.evaluate.metrics import EvaluationError, Predictions

# A fixed 4-class set: class 3 ("d") never appears as a true label, class 2 is never predicted.
Y_TRUE = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 0, 1, 2, 0, 0])
Y_PRED = np.array([0, 1, 0, 1, 1, 0, 3, 1, 0, 0, 1, 1, 3, 0])
CLASSES = ["a", "b", "c", "d"]


@pytest.mark.parametrize("normalize", [None, "true", "pred"])
def test_confusion_matrix_equals_sklearn(normalize):
    ours = metrics.confusion_matrix(Y_TRUE, Y_PRED, 4, normalize=normalize)
    theirs = skm.confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2, 3], normalize=normalize)
    np.testing.assert_allclose(ours, theirs)
    if normalize is None:
        assert ours.dtype.kind == "i"
        assert ours.sum() == len(Y_TRUE)
        assert ours[1, 3] == 1  # one "b" predicted as "d"


def test_confusion_matrix_random_many_classes_equals_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 37, 2000)
    y_pred = np.where(rng.random(2000) < 0.6, y_true, rng.integers(0, 37, 2000))
    for normalize in (None, "true", "pred"):
        np.testing.assert_allclose(
            metrics.confusion_matrix(y_true, y_pred, 37, normalize),
            skm.confusion_matrix(y_true, y_pred, labels=range(37), normalize=normalize),
        )


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(EvaluationError, match=r"outside 0\.\.3"):
        metrics.confusion_matrix([0, 4], [0, 1], 4)
    with pytest.raises(EvaluationError, match="normalize"):
        metrics.confusion_matrix([0], [0], 4, normalize="all")
    with pytest.raises(EvaluationError, match="y_pred has 1"):
        metrics.confusion_matrix([0, 1], [0], 4)


def test_classification_report_equals_sklearn():
    frame = metrics.classification_report_frame(Y_TRUE, Y_PRED, CLASSES)
    expected = skm.classification_report(
        Y_TRUE, Y_PRED, labels=[0, 1, 2, 3], target_names=CLASSES, output_dict=True, zero_division=0
    )
    assert list(frame.index) == [*CLASSES, "accuracy", "macro avg", "weighted avg"]
    assert list(frame.columns) == ["precision", "recall", "f1-score", "support"]
    for name in [*CLASSES, "macro avg", "weighted avg"]:
        for col in ["precision", "recall", "f1-score", "support"]:
            assert frame.loc[name, col] == pytest.approx(expected[name][col]), (name, col)
    assert frame.loc["accuracy", "f1-score"] == pytest.approx(skm.accuracy_score(Y_TRUE, Y_PRED))
    assert frame.loc["accuracy", "support"] == len(Y_TRUE)
    assert np.isnan(frame.loc["accuracy", "precision"])
    # Hand check of class "a": 6 true "a" of which 4 predicted "a"; 6 predicted "a" of which 4 true "a".
    assert frame.loc["a", "precision"] == pytest.approx(4 / 6)
    assert frame.loc["a", "recall"] == pytest.approx(4 / 6)
    assert frame.loc["c", "recall"] == 0.0 and frame.loc["d", "precision"] == 0.0


def test_top_k_accuracy_equals_sklearn():
    rng = np.random.default_rng(1)
    probs = rng.random((300, 7))
    y_true = rng.integers(0, 7, 300)
    for k in (1, 2, 3, 5):
        assert metrics.top_k_accuracy(y_true, probs, k) == pytest.approx(
            skm.top_k_accuracy_score(y_true, probs, k=k, labels=range(7))
        )
    assert metrics.top_k_accuracy(y_true, probs, 1) == pytest.approx((probs.argmax(1) == y_true).mean())
    assert metrics.top_k_accuracy(y_true, probs, 99) == 1.0  # k capped at the number of classes
    with pytest.raises(EvaluationError, match="k must be"):
        metrics.top_k_accuracy(y_true, probs, 0)


def test_per_class_accuracy_is_recall():
    frame = metrics.per_class_accuracy(Y_TRUE, Y_PRED, CLASSES)
    recall = skm.recall_score(Y_TRUE, Y_PRED, labels=[0, 1, 2], average=None)
    np.testing.assert_allclose(frame["accuracy"][:3], recall)
    assert np.isnan(frame["accuracy"][3])  # "d" has no validation images
    assert list(frame["support"]) == [6, 5, 3, 0]


def test_most_confused_pairs():
    frame = metrics.most_confused(Y_TRUE, Y_PRED, CLASSES)
    cm = skm.confusion_matrix(Y_TRUE, Y_PRED, labels=range(4))
    off = {(i, j): cm[i, j] for i in range(4) for j in range(4) if i != j and cm[i, j]}
    assert len(frame) == len(off)
    assert list(frame["count"]) == sorted(off.values(), reverse=True)
    first = frame.iloc[0]
    assert (first["true"], first["predicted"], first["count"]) == ("c", "b", 2)
    assert first["fraction_of_true"] == pytest.approx(2 / 3)
    assert len(metrics.most_confused(Y_TRUE, Y_PRED, CLASSES, min_count=2)) == 1
    assert len(metrics.most_confused(Y_TRUE, Y_PRED, CLASSES, top=2)) == 2


def test_top_confused_classes_picks_the_classes_in_mistakes():
    cm = np.diag([50] * 6)
    cm[4, 1] = 9
    cm[1, 4] = 2
    cm[5, 0] = 1
    assert metrics.top_confused_classes(cm, 2) == [1, 4]
    assert metrics.top_confused_classes(cm, 4) == [0, 1, 4, 5]


def _predictions(logits, targets, classes=("x", "y", "z")) -> Predictions:
    return Predictions(np.asarray(logits, dtype=np.float32), np.asarray(targets), list(classes))


def test_losses_equal_torch_cross_entropy_and_top_losses_order():
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=4, size=(40, 3)).astype(np.float32)
    targets = rng.integers(0, 3, 40)
    pred = _predictions(logits, targets)
    expected = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(targets), reduction="none"
    )
    np.testing.assert_allclose(pred.losses, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.probs, torch.softmax(torch.from_numpy(logits), 1).numpy(), atol=1e-6)

    top = metrics.top_losses(pred, k=5)
    assert len(top) == 5
    assert list(top["loss"]) == sorted(pred.losses, reverse=True)[:5]
    row = top.iloc[0]
    assert row["prob_true"] == pytest.approx(np.exp(-row["loss"]), rel=1e-5)
    wrong = metrics.top_losses(pred, k=100, mistakes_only=True)
    assert len(wrong) == int((pred.preds != targets).sum())
    assert (wrong["true_index"] != wrong["pred_index"]).all()


def test_cell_indices_sorted_by_confidence():
    logits = [[0, 3, 0], [0, 1, 0], [5, 0, 0], [0, 9, 0], [0, 0, 1]]
    targets = [0, 0, 0, 2, 2]
    pred = _predictions(logits, targets)
    assert list(metrics.cell_indices(pred, 0, 1)) == [0, 1]
    assert list(metrics.cell_indices(pred, 2, 1)) == [3]
    assert list(metrics.cell_indices(pred, 1, 1)) == []
    with pytest.raises(EvaluationError, match="pred_class"):
        metrics.cell_indices(pred, 0, 3)


def test_top_k_table():
    tables = metrics.top_k_table(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), ["x", "y", "z"], k=2)
    assert list(tables[0]["class"]) == ["y", "z"]
    assert list(tables[1]["probability"]) == [0.5, 0.3]


def test_overfitting_hint():
    falling = pd.DataFrame(
        {"epoch": [1, 2, 3, 4], "train_loss": [1.0, 0.8, 0.6, 0.5], "val_loss": [1.1, 0.9, 0.8, 0.7]}
    )
    assert metrics.overfitting_hint(falling) is None
    overfit = pd.DataFrame(
        {
            "epoch": [1, 2, 3, 4, 5],
            "train_loss": [1.0, 0.7, 0.5, 0.3, 0.2],
            "val_loss": [1.0, 0.8, 0.85, 0.9, 1.0],
        }
    )
    hint = metrics.overfitting_hint(overfit)
    assert hint is not None and "epoch 2" in hint and "overfit" in hint
    assert metrics.overfitting_hint(overfit.head(2)) is None  # too few epochs to tell
    assert "add augmentation" in hint and "weight decay" in hint
    tailored = metrics.overfitting_hint(overfit, augmented=True, weight_decay=1e-4)
    assert "augmentation" not in tailored and "weight decay" not in tailored and "best checkpoint" in tailored
    # The newcomer's case: val loss 0.47 -> 0.51 (+9 %), still below the (label-smoothed) train loss: noise.
    noise = pd.DataFrame(
        {"epoch": [1, 2, 3, 4], "train_loss": [0.9, 0.7, 0.6, 0.55], "val_loss": [0.5, 0.47, 0.49, 0.51]}
    )
    assert metrics.overfitting_hint(noise) is None


# ---- figures (cnndash.plots.evaluation) ----------------------------------------------------------------------


def _cm_frame(normalize=None) -> pd.DataFrame:
    pred = _predictions(np.eye(4)[Y_PRED] * 5, Y_TRUE, CLASSES)
    return metrics.confusion_matrix_frame(pred, normalize)


def test_confusion_matrix_frame_labels():
    frame = _cm_frame()
    assert list(frame.index) == CLASSES and list(frame.columns) == CLASSES
    assert frame.loc["c", "b"] == 2  # true "c" predicted as "b" twice
    np.testing.assert_allclose(_cm_frame("true").loc["a"].sum(), 1.0)


def test_confusion_matrix_figure_cells_are_clickable_points():
    from cnndash.plots.evaluation import confusion_matrix_figure

    counts = _cm_frame()
    fig = confusion_matrix_figure(_cm_frame("true"), counts=counts, normalized=True)
    heatmap, cells = fig.data
    assert list(heatmap.x) == CLASSES and list(heatmap.y) == CLASSES
    assert heatmap.text[2][1] == "67%<br>2"  # fraction and count of true c -> predicted b
    assert fig.layout.yaxis.autorange == "reversed"  # first class on top, as in the tutorials
    assert len(cells.x) == 16
    k = [list(c[:2]) for c in cells.customdata].index([2, 1])
    assert list(cells.customdata[k][2:]) == [2, pytest.approx(2 / 3), "2 images"]
    assert (cells.y[k], cells.x[k]) == ("c", "b")
    # A top-N sub-matrix keeps the original class indices in the click data.
    sub = confusion_matrix_figure(counts.iloc[[1, 2], [1, 2]], class_indices=[1, 2])
    assert [list(c[:2]) for c in sub.data[1].customdata] == [[1, 1], [1, 2], [2, 1], [2, 2]]


def test_confusion_matrix_png_is_a_png():
    from cnndash.plots.evaluation import confusion_matrix_png

    data = confusion_matrix_png(_cm_frame())
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_per_class_and_learning_curve_figures():
    from cnndash.plots.evaluation import learning_curves_figure, per_class_accuracy_figure

    per_class = metrics.per_class_accuracy(Y_TRUE, Y_PRED, CLASSES)
    fig = per_class_accuracy_figure(per_class, overall=0.5)
    assert list(fig.data[0].x) == CLASSES
    history = pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [1.0, 0.5],
            "train_acc": [0.5, 0.8],
            "val_loss": [1.1, 0.7],
            "val_acc": [0.4, 0.7],
        }
    )
    curves = learning_curves_figure(history)
    assert sorted(trace.name for trace in curves.data) == ["train acc", "train loss", "val acc", "val loss"]


def test_style_report_and_thumbnail():
    from PIL import Image

    from cnndash.plots.evaluation import style_report, thumbnail

    report = metrics.classification_report_frame(Y_TRUE, Y_PRED, CLASSES)
    styles = style_report(report)._compute().ctx  # (row, col) -> CSS of each coloured cell
    acc_row = list(report.index).index("accuracy")
    assert (0, 0) in styles and (acc_row, 2) not in styles  # rows with an empty score stay uncoloured
    assert all(col < 3 for _, col in styles)  # support is not coloured
    small = thumbnail(Image.new("L", (8, 8)), 96)
    assert small.size == (96, 96)
    assert thumbnail(Image.new("RGB", (200, 100)), 50).size == (50, 25)


# ---- predictions of a real trained run (tiny_run: LeNet, 2 epochs on 300 32×32 shapes) ---------------


def test_summary_numbers_caps_k_below_the_class_count():
    logits = [[3, 1, 0], [0, 2, 1], [1, 0, 2], [2, 1, 0]]
    numbers = metrics.summary_numbers(_predictions(logits, [0, 2, 1, 1]), k=5)
    assert numbers["top_k"] == 2
    assert numbers["accuracy"] == 0.25
    assert numbers["top_k_accuracy"] == 0.75  # image 2's true class "y" is its lowest score
    assert numbers["images"] == 4


def test_misclassified_indices_are_the_wrong_predictions_in_index_order():
    pred = _predictions([[3, 1, 0], [0, 2, 1], [1, 0, 2], [2, 1, 0], [0, 1, 3]], [0, 2, 1, 0, 2])
    wrong = metrics.misclassified_indices(pred)
    assert wrong == [1, 2] and all(type(i) is int for i in wrong)
    assert metrics.misclassified_indices(_predictions([[3, 1, 0]], [0])) == []
