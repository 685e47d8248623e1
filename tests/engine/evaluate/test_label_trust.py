"""How far suspicious-label suggestions can be trusted, and how long a K-fold check takes (label_trust)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cnndash.evaluate.label_issues import run_label_issues
from cnndash.evaluate.label_trust import (
    BULK_ACCEPT_MIN_ACCURACY,
    FOLD_OVERHEAD_SECONDS,
    duration_text,
    label_check_seconds,
    suggestion_trust,
)
from cnndash.evaluate.predict import predict_run
from cnndash.runs import load_run


def test_trust_is_the_out_of_sample_accuracy_of_the_suggestions(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "tiny")  # predicting writes caches: never into the shared run
    issues = run_label_issues(run)
    trust = suggestion_trust(issues.given, issues.pred_probs)
    predictions = predict_run(run)  # the run's own validation accuracy: the same images, never trained on
    assert trust.images == len(predictions) and trust.accuracy == pytest.approx(predictions.accuracy)


def test_bulk_accept_needs_an_accurate_model_and_unscored_images_are_left_out():
    given = np.array([0, 1, 1, 0, 2])
    probs = np.eye(3)[[0, 1, 0, 0, 2]].astype(float)  # 4 of 5 agree with the label
    weak = suggestion_trust(given, probs)
    assert weak.accuracy == pytest.approx(0.8) and weak.images == 5 and not weak.bulk_ok
    assert "80%" in weak.sentence() and f"{BULK_ACCEPT_MIN_ACCURACY:.0%}" in weak.sentence()
    probs[2] = np.nan  # an image no fold predicted (a stopped check)
    strong = suggestion_trust(given, probs)
    assert strong.images == 4 and strong.accuracy == 1.0 and strong.bulk_ok
    assert suggestion_trust(given, np.full((5, 3), np.nan)).images == 0
    with pytest.raises(ValueError):
        suggestion_trust(given, probs[:3])


def test_time_estimate_scales_with_the_measured_speed(tiny_run):
    summary = load_run(tiny_run).summary
    images = summary["train_images"] + summary["val_images"]
    per_image_epoch = summary["seconds"] / (summary["epochs"] * summary["train_images"])
    five = label_check_seconds(images, 5, 10, summary)
    assert five == pytest.approx(5 * (10 * images * 4 / 5 * per_image_epoch + FOLD_OVERHEAD_SECONDS))
    assert label_check_seconds(images, 5, 20, summary) > five > label_check_seconds(images, 2, 10, summary)
    # Without a measured speed: the run's images/sec, else a typical speed for the device.
    assert label_check_seconds(1000, 5, 10, {"images_per_sec": 800.0}) == pytest.approx(
        5 * (10 * 800 / 800 + 3)
    )
    assert label_check_seconds(1000, 5, 10, None, "cuda") < label_check_seconds(1000, 5, 10, None, "cpu")
    with pytest.raises(ValueError):
        label_check_seconds(100, 1, 10)


def test_durations_read_as_people_say_them():
    assert [duration_text(s) for s in (5, 49, 50, 240, 3599, 4800)] == [
        "under a minute", "under a minute", "about 1 min", "about 4 min", "about 1 h", "about 1 h 20 min"
    ]  # fmt: skip
