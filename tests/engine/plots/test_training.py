"""The Training page's figures (cnndash.plots.training): smoothing, the live per-batch chart, the per-epoch
curves and the run comparison -- checked on the data each trace draws and on the axes."""

from __future__ import annotations

import pandas as pd
import pytest

from cnndash.plots import training as plots_train

EPOCHS = [
    {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4},
    {"epoch": 2, "train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.7, "val_acc": 0.7},
]


def batch_points(n: int) -> list[dict]:
    return [{"step": i + 1, "epoch": 1, "loss": 1.0 / (i + 1), "acc": i / n, "lr": 0.01} for i in range(n)]


def test_smooth_is_a_bias_corrected_moving_average():
    assert plots_train.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # no damping at the start
    assert plots_train.smooth([0.0, 1.0], weight=0.0) == [0.0, 1.0]
    # weight 0.5: averages 0.5 * 0 + 0.5 * 1 = 0.5 / (1 - 0.25) = 2/3 after [0, 1]
    assert plots_train.smooth([0.0, 1.0], weight=0.5) == pytest.approx([0.0, 2 / 3])
    assert plots_train.smooth([]) == []
    for weight in (-0.1, 1.0):
        with pytest.raises(ValueError, match="smoothing weight"):
            plots_train.smooth([1.0], weight)


def test_batch_curves_figure_raw_and_smoothed_traces_on_two_panels():
    points = batch_points(10)
    fig = plots_train.batch_curves_figure(points, smoothing=0.5, steps_per_epoch=4)
    names = [t.name for t in fig.data]
    assert names == ["loss (raw)", "loss (smoothed)", "accuracy (raw)", "accuracy (smoothed)"]
    raw_loss, smooth_loss, raw_acc, smooth_acc = fig.data
    assert list(raw_loss.x) == list(range(1, 11))
    assert list(raw_loss.y) == [p["loss"] for p in points]
    assert list(smooth_loss.y) == pytest.approx(plots_train.smooth([p["loss"] for p in points], 0.5))
    assert list(raw_acc.y) == [p["acc"] for p in points]
    assert (raw_loss.xaxis, raw_loss.yaxis, smooth_acc.xaxis, smooth_acc.yaxis) == ("x", "y", "x2", "y2")
    assert [t.showlegend for t in fig.data] == [True, True, False, False]  # one legend entry per style
    # Panel titles and axes: batch on x, accuracy as a percentage from 0 to just above 1.
    assert [a.text for a in fig.layout.annotations] == [
        "Training loss (per batch)",
        "Training accuracy (per batch)",
    ]
    assert fig.layout.xaxis.title.text == "batch" and fig.layout.xaxis2.title.text == "batch"
    assert fig.layout.yaxis2.tickformat == ".0%" and tuple(fig.layout.yaxis2.range) == (0, 1.02)
    # Epoch boundaries after batches 4 and 8, a dotted line on each panel.
    boundaries = sorted((s.x0, s.xref) for s in fig.layout.shapes)
    assert boundaries == [(4.5, "x"), (4.5, "x2"), (8.5, "x"), (8.5, "x2")]
    assert plots_train.batch_curves_figure(points).layout.shapes == ()  # no epoch length, no lines


def test_batch_curves_figure_thins_long_runs_to_the_point_limit():
    n = plots_train.MAX_POINTS * 3 + 1
    points = batch_points(n)
    fig = plots_train.batch_curves_figure(points)
    raw = fig.data[0]
    assert len(raw.x) <= plots_train.MAX_POINTS
    step = raw.x[1] - raw.x[0]
    assert list(raw.x) == list(range(1, n + 1, step))  # evenly thinned, starting at the first batch
    # Smoothing used every point: the drawn smoothed value at a kept step is the full-series value.
    full = plots_train.smooth([p["loss"] for p in points], 0.9)
    assert fig.data[1].y[-1] == pytest.approx(full[raw.x[-1] - 1])


def test_epoch_curves_figure_train_and_val_per_metric():
    fig = plots_train.epoch_curves_figure(EPOCHS)
    traces = [(t.name, t.xaxis, list(t.x), list(t.y)) for t in fig.data]
    assert traces == [
        ("train", "x", [1, 2], [1.0, 0.5]),
        ("val", "x", [1, 2], [1.1, 0.7]),
        ("train", "x2", [1, 2], [0.5, 0.8]),
        ("val", "x2", [1, 2], [0.4, 0.7]),
    ]
    assert (
        fig.data[0].line.color == plots_train.TRAIN_COLOUR
        and fig.data[1].line.color == plots_train.VAL_COLOUR
    )
    assert [a.text for a in fig.layout.annotations] == ["Loss per epoch", "Accuracy per epoch"]
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.xaxis.dtick == 1  # whole epochs
    # A DataFrame works the same; an empty history gives empty panels, not an error.
    assert len(plots_train.epoch_curves_figure(pd.DataFrame(EPOCHS)).data) == 4
    assert plots_train.epoch_curves_figure([]).data == ()


def test_compare_runs_figure_one_line_per_run():
    runs = {
        "alpha": pd.DataFrame(EPOCHS),
        "beta": pd.DataFrame([{**EPOCHS[0], "val_acc": 0.9}]),
        "empty": pd.DataFrame(columns=list(EPOCHS[0])),
    }
    fig = plots_train.compare_runs_figure(runs, "val_acc")
    assert [(t.name, list(t.x), list(t.y)) for t in fig.data] == [
        ("alpha", [1, 2], [0.4, 0.7]),
        ("beta", [1], [0.9]),
    ]  # a run without epochs yet draws nothing
    assert fig.layout.title.text == "Validation accuracy by epoch"
    assert fig.layout.xaxis.title.text == "epoch" and fig.layout.yaxis.title.text == "validation accuracy"
    assert fig.layout.yaxis.tickformat == ".0%"
    loss = plots_train.compare_runs_figure(runs, "train_loss")
    assert list(loss.data[0].y) == [1.0, 0.5] and loss.layout.yaxis.tickformat is None
    with pytest.raises(ValueError, match="metric"):
        plots_train.compare_runs_figure(runs, "f1")


def test_loss_spiked_by_a_rise_over_the_start_or_a_span_of_decades():
    assert not plots_train.loss_spiked([2.3, 1.5, 0.9, 0.4])  # a healthy fall within 1.5 decades
    assert plots_train.loss_spiked([2.3, 7.5, 1.0])  # above 3x where it started
    assert plots_train.loss_spiked([2.3, 0.05])  # a fall over 1.6 decades: a log axis reads it better
    assert plots_train.loss_spiked([1.0, 900.0, 0.3], reference=1.0)
    assert not plots_train.loss_spiked([float("nan"), float("inf"), 1.0])  # non-finite points ignored
    assert not plots_train.loss_spiked([])


def test_compare_runs_figure_puts_every_loss_on_a_log_axis_when_one_run_spiked():
    calm = pd.DataFrame(EPOCHS)
    spiky = pd.DataFrame(
        [
            {"epoch": 1, "train_loss": 1.1, "train_acc": 0.3, "val_loss": 1170.0, "val_acc": 0.33},
            {"epoch": 2, "train_loss": 0.9, "train_acc": 0.6, "val_loss": 0.8, "val_acc": 0.66},
        ]
    )
    fig = plots_train.compare_runs_figure({"calm": calm, "spiky": spiky}, "val_loss")
    assert fig.layout.yaxis.type == "log" and "log scale" in fig.layout.yaxis.title.text
    assert plots_train.compare_runs_figure({"calm": calm}, "val_loss").layout.yaxis.type in (None, "linear")
    # Accuracy is never drawn on a log axis, however the loss behaved.
    assert plots_train.compare_runs_figure({"spiky": spiky}, "val_acc").layout.yaxis.type in (None, "linear")
