"""A run's health: a learning rate far too high ends with a "diverged" note (a real run), a validation spike
that comes back down is "unstable", and healthy or merely hard runs say nothing; the loss charts switch to a
log axis for a spike."""

from __future__ import annotations

import math

import pandas as pd

from cnndash.plots import evaluation as plots_eval
from cnndash.plots import training as plots_train
from cnndash.training.health import run_health
from cnndash.training.loops import TrainConfig, train

# ResNet-18 on 240 texture photos before the precise-BN fix (docs/training.md): validation loss 6.7 -> 67 -> 5.7.
SPIKY = [
    {"epoch": 1, "train_loss": 1.257, "train_acc": 0.31, "val_loss": 6.673, "val_acc": 0.33},
    {"epoch": 2, "train_loss": 1.581, "train_acc": 0.36, "val_loss": 67.35, "val_acc": 0.33},
    {"epoch": 3, "train_loss": 1.290, "train_acc": 0.35, "val_loss": 5.726, "val_acc": 0.37},
    {"epoch": 4, "train_loss": 1.105, "train_acc": 0.53, "val_loss": 1.796, "val_acc": 0.55},
    {"epoch": 5, "train_loss": 0.976, "train_acc": 0.66, "val_loss": 0.840, "val_acc": 0.70},
]
HEALTHY = [
    {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 0.8, "val_acc": 0.6},
    {"epoch": 2, "train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.6, "val_acc": 0.75},
]


def test_a_learning_rate_far_too_high_ends_with_a_diverged_note(tmp_path):
    config = TrainConfig(
        dataset="shapes:count=120,size=32", model="lenet", epochs=2, batch_size=16, lr=10.0, tensorboard=False
    )
    summary = train(config, tmp_path / "run")
    assert summary["status"] == "finished"  # the loss stayed finite: nothing stopped the run
    health = summary["health"]
    assert health["status"] == "diverged"
    assert "learning rate 10 is too high" in health["note"] and "0.003" in health["note"]


def test_a_spike_that_comes_back_down_is_unstable_and_healthy_runs_are_ok():
    spiky = run_health(SPIKY, num_classes=3, lr=3e-3)
    assert spiky.status == "unstable" and spiky.epoch == 1
    assert "spiked to 6.67" in spiky.note and "log axis" in spiky.note
    assert run_health(HEALTHY, num_classes=3, lr=3e-3).ok
    # Random labels sit at chance without any blow-up: hard data, not a diverged run.
    at_chance = [
        {"epoch": e, "train_loss": 0.69, "train_acc": 0.5, "val_loss": 0.7, "val_acc": 0.5} for e in (1, 2)
    ]
    assert run_health(at_chance, num_classes=2, lr=3e-3).ok
    # ... but the same numbers with a learning rate far above the usual range are a diverged run.
    assert run_health(at_chance, num_classes=2, lr=5.0).status == "diverged"
    assert run_health([{"epoch": 1, "train_loss": math.nan}], num_classes=3, lr=1.0).ok  # nothing to judge


def test_loss_charts_use_a_log_axis_for_a_spike_only():
    spiky = plots_train.epoch_curves_figure(SPIKY)
    assert spiky.layout.yaxis.type == "log"
    assert plots_train.epoch_curves_figure(HEALTHY).layout.yaxis.type in (None, "linear")
    points = [{"step": i + 1, "loss": 2.3 if i != 3 else 4e4, "acc": 0.1} for i in range(10)]
    assert plots_train.batch_curves_figure(points).layout.yaxis.type == "log"
    assert plots_eval.learning_curves_figure(pd.DataFrame(SPIKY)).layout.yaxis.type == "log"
    assert plots_eval.learning_curves_figure(pd.DataFrame(HEALTHY)).layout.yaxis.type in (None, "linear")
