"""Two runs compared (cnndash.evaluate.compare, cnndash.plots.compare): constructed predictions with known deltas,
per-class numbers against scikit-learn, refusals, the runs table's hyperparameters and the default pair."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_recall_fscore_support

from cnndash.evaluate import compare
from cnndash.evaluate.metrics import Predictions
from cnndash.plots import compare as plots_compare
from cnndash.plots import training as plots_train
from cnndash.runs import Run, load_run

CLASSES = ["cat", "dog", "fox"]


def _predictions(targets: list[int], preds: list[int], classes: list[str] = CLASSES) -> Predictions:
    """Predictions whose argmax is ``preds``: a logit of 5 on the predicted class, 0 elsewhere."""
    logits = np.zeros((len(preds), len(classes)), dtype=np.float32)
    logits[np.arange(len(preds)), preds] = 5.0
    return Predictions(logits=logits, targets=np.array(targets, dtype=np.int64), classes=list(classes))


# A: 10 images, 6 right. B: the same 10 images, 8 right (two dog→cat mistakes fixed).
TARGETS = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
PREDS_A = [0, 0, 1, 0, 0, 1, 1, 2, 2, 0]
PREDS_B = [0, 0, 1, 1, 1, 1, 1, 2, 2, 0]


def test_accuracy_and_confusion_difference_are_b_minus_a():
    result = compare.compare_predictions(_predictions(TARGETS, PREDS_A), _predictions(TARGETS, PREDS_B))
    assert (result.accuracy_a, result.accuracy_b) == (0.6, 0.8)
    assert result.accuracy_change == pytest.approx(0.2)
    assert (result.images_a, result.images_b) == (10, 10)
    change = result.confusion_change()
    expected = np.zeros((3, 3), dtype=np.int64)
    expected[1, 0], expected[1, 1] = -2, +2  # two dogs no longer called cats
    np.testing.assert_array_equal(change, expected)
    assert change.sum() == 0  # the same images, only moved between cells
    # By true class: dog's recall rose from 2/4 to 4/4.
    np.testing.assert_allclose(result.confusion_change("true")[1], [-0.5, 0.5, 0.0])


def test_per_class_table_matches_scikit_learn():
    a, b = _predictions(TARGETS, PREDS_A), _predictions(TARGETS, PREDS_B)
    table = compare.compare_predictions(a, b).per_class
    assert list(table.index) == CLASSES
    for side, preds in (("a", PREDS_A), ("b", PREDS_B)):
        p, r, f, s = precision_recall_fscore_support(TARGETS, preds, labels=[0, 1, 2], zero_division=0)
        np.testing.assert_allclose(table[f"precision_{side}"], p)
        np.testing.assert_allclose(table[f"recall_{side}"], r)
        np.testing.assert_allclose(table[f"f1-score_{side}"], f)
        np.testing.assert_array_equal(table[f"support_{side}"], s)
    np.testing.assert_allclose(table["recall_change"], [0.0, 0.5, 0.0])
    np.testing.assert_allclose(table["f1-score_change"], table["f1-score_b"] - table["f1-score_a"])


def test_different_validation_sets_and_class_order():
    """B evaluated on other images (a version: one image removed) with its classes in another order:
    B is put in A's class order, and fractions still compare."""
    order_b = ["fox", "cat", "dog"]
    to_b = [order_b.index(c) for c in CLASSES]
    targets_b = [to_b[t] for t in TARGETS[:-1]]
    preds_b = [to_b[p] for p in PREDS_B[:-1]]
    result = compare.compare_predictions(
        _predictions(TARGETS, PREDS_A), _predictions(targets_b, preds_b, order_b)
    )
    assert result.classes == CLASSES and (result.images_a, result.images_b) == (10, 9)
    assert result.accuracy_b == pytest.approx(8 / 9)
    assert result.confusion_b[1, 1] == 4 and result.confusion_b[2, 2] == 2  # dog, fox in A's order
    np.testing.assert_allclose(result.confusion_change("true")[2], [-1 / 3, 0.0, 1 / 3])  # fox fixed


def test_different_class_sets_are_refused_by_name():
    a = _predictions(TARGETS, PREDS_A)
    b = _predictions([0, 1], [0, 1], ["cat", "wolf"])
    with pytest.raises(
        compare.CompareError, match=r"different classes.*only in 'old': dog, fox.*'new': wolf"
    ):
        compare.compare_predictions(a, b, names=("old", "new"))
    with pytest.raises(ValueError, match="no validation images"):
        compare.compare_predictions(a, _predictions([], [], CLASSES))


def test_confusion_change_figure_is_diverging_and_symmetric():
    result = compare.compare_predictions(_predictions(TARGETS, PREDS_A), _predictions(TARGETS, PREDS_B))
    fig = plots_compare.confusion_change_figure(result.confusion_change(), CLASSES)
    heat = fig.data[0]
    assert list(heat.x) == list(heat.y) == CLASSES  # the same class order on both axes
    assert (heat.zmin, heat.zmid, heat.zmax) == (-2, 0, 2)
    assert heat.text[1][0] == "-2" and heat.text[1][1] == "+2" and heat.text[0][0] == "0"
    shares = plots_compare.confusion_change_figure(result.confusion_change("true"), CLASSES, fraction=True)
    assert shares.data[0].text[1][1] == "+50%"
    with pytest.raises(ValueError, match="3×3"):
        plots_compare.confusion_change_figure(np.zeros((2, 2)), CLASSES)


def test_per_class_change_figure_bars_a_and_b():
    table = compare.compare_predictions(
        _predictions(TARGETS, PREDS_A), _predictions(TARGETS, PREDS_B)
    ).per_class
    fig = plots_compare.per_class_change_figure(table, "recall", names=("old", "new"))
    assert [t.name for t in fig.data] == ["old", "new"]
    assert list(fig.data[0].x) == CLASSES
    assert list(fig.data[1].y) == pytest.approx([2 / 3, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="metric"):
        plots_compare.per_class_change_figure(table, "accuracy")


def test_compare_runs_figure_smoothing_and_time_axis():
    frame = pd.DataFrame(
        {"epoch": [1, 2, 3], "val_acc": [0.5, 0.9, 0.7], "seconds": [2.0, 3.0, 5.0]}
        | {k: [0.0] * 3 for k in ("train_loss", "train_acc", "val_loss")}
    )
    old = frame.drop(columns="seconds")
    raw = plots_train.compare_runs_figure({"r": frame}, "val_acc")
    assert [t.name for t in raw.data] == ["r"] and list(raw.data[0].y) == [0.5, 0.9, 0.7]
    smoothed = plots_train.compare_runs_figure({"r": frame}, "val_acc", smoothing=0.5)
    assert [t.name for t in smoothed.data] == ["r (raw)", "r"]
    assert list(smoothed.data[0].y) == [0.5, 0.9, 0.7]
    # TensorBoard's debiased EMA: m_t = 0.5 m_{t-1} + 0.5 x_t, shown as m_t / (1 - 0.5^t).
    assert list(smoothed.data[1].y) == pytest.approx([0.25 / 0.5, 0.575 / 0.75, 0.6375 / 0.875])
    timed = plots_train.compare_runs_figure({"r": frame, "old": old}, "val_acc", x="time")
    assert [t.name for t in timed.data] == ["r"] and list(timed.data[0].x) == [2.0, 5.0, 10.0]
    assert timed.layout.meta["no_time"] == ["old"] and timed.layout.xaxis.title.text == "wall-clock time (s)"
    # With the per-batch log's clock for every epoch, the axis is that wall time, not the training-time sum.
    clocked = plots_train.compare_runs_figure(
        {"r": frame.assign(clock=[4.0, 9.0, 20.0])}, "val_acc", x="time"
    )
    assert list(clocked.data[0].x) == [4.0, 9.0, 20.0]
    gap = frame.assign(clock=[4.0, float("nan"), 20.0])  # an epoch the log lacks: fall back to the sum
    fallback = plots_train.compare_runs_figure({"r": gap}, "val_acc", x="time")
    assert list(fallback.data[0].x) == [2.0, 5.0, 10.0]
    with pytest.raises(ValueError, match="x must be"):
        plots_train.compare_runs_figure({"r": frame}, x="step")


# --------------------------------------------------------------------------------------------------
# The runs table and the default pair (on copies of a real run)


def _copy(tiny_run: Path, root: Path, name: str, **config) -> Run:
    shutil.copytree(tiny_run, root / name)
    path = root / name / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | config))
    return load_run(root / name)


def test_runs_table_has_hyperparameters_and_blanks_for_missing(tiny_run, tmp_path):
    full = _copy(tiny_run, tmp_path, "full", pipeline="flip", lr=0.01)
    bare = _copy(tiny_run, tmp_path, "bare")
    (bare.path / "summary.json").unlink()
    bare = load_run(bare.path)
    bare.config.pop("batch_size")
    bare.dataset_info.clear()
    table = compare.runs_table([full, bare]).set_index("run")
    row = table.loc["full"]
    assert (row["LR"], row["batch size"], row["pipeline"], row["model"]) == (0.01, 32, "flip", "lenet")
    assert row["image size"] == full.summary["image_size"] and row["world size"] == 1
    assert math.isnan(table.loc["bare", "batch size"]) and math.isnan(table.loc["bare", "world size"])
    assert math.isnan(table.loc["bare", "val accuracy"]) and table.loc["bare", "pipeline"] == "(none)"
    assert list(compare.runs_table([]).columns) == compare.RUN_COLUMNS


def test_default_pair_prefers_a_retrain_and_its_parent(tiny_run, tmp_path):
    parent = _copy(tiny_run, tmp_path, "parent")
    other = _copy(tiny_run, tmp_path, "other", lr=0.1)
    retrain = _copy(tiny_run, tmp_path, "retrain", dataset="shapes-v1")
    parents = {"shapes-v1": parent.config["dataset"]}
    assert compare.default_pair([retrain, other, parent], parents.get) == ("parent", "retrain")
    # Not a retrain: the two newest with the same number of classes.
    assert compare.default_pair([other, parent], parents.get) == ("parent", "other")
    fewer = _copy(tiny_run, tmp_path, "fewer")
    fewer.classes = fewer.classes[:2]
    assert compare.default_pair([fewer, other, parent], parents.get) == ("parent", "other")
    assert compare.default_pair([other], parents.get) is None
