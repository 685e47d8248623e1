"""The Training page's Runs tab (ui.training.runs_tab) through AppTest: hyperparameter columns, smoothing and the time
axis, and two runs compared on their own validation images (real checkpoints, real predictions)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cnndash import paths
from cnndash.data import versions
from cnndash.evaluate import compare, predict
from cnndash.jobs import registry as jobs
from cnndash.jobs.registry import get_registry
from cnndash.runs import load_run
from cnndash.training.loops import TrainConfig, train
from tests.conftest import plotly_array
from tests.pages.test_pages import run_page

PAGE = "pages/training.py"


@pytest.fixture(autouse=True)
def _no_job_left_running():
    yield
    get_registry().stop_all(timeout=60)


def _copy(tiny_run: Path, name: str, when: float, **config) -> Path:
    """A copy of the tiny run named ``name`` (config changed as given), started at ``when`` (list order)."""
    target = paths.runs_dir() / name
    shutil.copytree(tiny_run, target)
    path = target / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | config))
    if "dataset" in config:  # another dataset: the copy names it without a pin (loads it by name)
        info = json.loads((target / "dataset.json").read_text())
        info.pop("dataset_ref", None)
        (target / "dataset.json").write_text(json.dumps(info))
    os.utime(path, (when, when))
    return target


def _chart(at, key: str) -> dict:
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key)]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_table_has_hyperparameters_and_curves_smooth_and_use_time(tiny_run):
    _copy(tiny_run, "alpha", 1_000, lr=0.01, pipeline="flip")
    _copy(tiny_run, "beta", 2_000)
    at = run_page(PAGE)
    _ok(at)
    table = at.dataframe[0].value.set_index("run")
    for column in ("LR", "batch size", "pipeline", "image size", "model", "world size"):
        assert column in table.columns
    assert table.loc["alpha", "LR"] == 0.01 and table.loc["alpha", "pipeline"] == "flip"
    assert table.loc["beta", "batch size"] == 32 and table.loc["beta", "world size"] == 1
    assert any("tensorboard --logdir" in c.value for c in at.caption)
    # Issue 23: "val accuracy" was cut to "val a…" in a narrow column.
    assert json.loads(at.dataframe[0].proto.columns)["val accuracy"]["width"] == "medium"

    raw = _chart(at, "runs-compare-chart")
    assert raw["layout"]["xaxis"]["dtick"] == 1  # whole epochs only, never 1.5
    assert sorted(t["name"] for t in raw["data"]) == ["alpha", "beta"]
    # A run that appears later (a retrain finishing) joins the chosen runs; the user's choice stays.
    at.multiselect(key="runs-compare").unselect("alpha").run()
    _copy(tiny_run, "gamma", 3_000)
    at.run()
    assert at.multiselect(key="runs-compare").value == ["gamma", "beta"]
    at.multiselect(key="runs-compare").select("alpha").run()
    at.slider(key="runs-smoothing").set_value(0.5).run()
    smoothed = _chart(at, "runs-compare-chart")
    names = sorted(t["name"] for t in smoothed["data"])
    assert names == ["alpha", "alpha (raw)", "beta", "beta (raw)", "gamma", "gamma (raw)"]
    at.radio(key="runs-x-axis").set_value("time").run()
    _ok(at)
    timed = _chart(at, "runs-compare-chart")
    assert timed["layout"]["xaxis"]["title"]["text"] == "wall-clock time (s)"
    beta_run = load_run("beta")
    clock = beta_run.metrics_with_clock()["clock"]
    # The wall clock at each epoch's end comes from the run's per-batch log and is never less than the
    # training time alone (it also counts validation and checkpoints).
    assert not clock.isna().any()
    assert (clock.to_numpy() >= beta_run.metrics()["seconds"].cumsum().to_numpy() - 1e-6).all()
    beta = next(t for t in timed["data"] if t["name"] == "beta")
    assert plotly_array(beta["x"]).tolist() == pytest.approx(clock.tolist())


def test_a_retrain_is_compared_with_its_parent_by_default(tiny_run):
    """The newest run trained on a version of an older run's dataset: that pair is the default, and the
    numbers are each run's best checkpoint on its own validation images."""
    parent = _copy(tiny_run, "parent", 1_000)
    dataset = load_run(parent).config["dataset"]
    version = versions.create_version(dataset)
    first = sorted(versions.base_manifest(dataset)[1])[0]
    other_class = next(c for c in load_run(parent).classes if not first.startswith(c + "/"))
    versions.relabel(version, first, other_class)
    _copy(tiny_run, "other", 2_000, lr=0.1)
    retrain = _copy(tiny_run, "retrain", 3_000, dataset=version)
    at = run_page(PAGE)
    _ok(at)
    assert (at.selectbox(key="runs-a").value, at.selectbox(key="runs-b").value) == ("parent", "retrain")
    expected = compare.compare_predictions(predict.predict_run(parent), predict.predict_run(retrain))
    shown = {m.label: m.value for m in at.metric}
    assert shown["Accuracy A · parent"] == f"{expected.accuracy_a:.1%}"
    assert shown["Accuracy B · retrain"] == f"{expected.accuracy_b:.1%}"
    delta = next(m.delta for m in at.metric if m.label == "Accuracy B · retrain")
    assert delta == f"{expected.accuracy_change * 100:+.1f} points vs A"
    assert shown["Validation images (A · B)"] == f"{expected.images_a} · {expected.images_b}"
    assert any("validation sets differ" in w.value and "edited version" in w.value for w in at.warning)
    heat = _chart(at, "runs-diff-chart")["data"][0]
    z = np.array(
        [plotly_array(row) if isinstance(row, dict) else row for row in plotly_array(heat["z"])], dtype=float
    )
    np.testing.assert_allclose(z, expected.confusion_change("true"))
    assert list(heat["x"]) == list(heat["y"]) == expected.classes
    bars = _chart(at, "runs-per-class-chart")["data"]
    assert [b["name"] for b in bars] == ["A: parent", "B: retrain"]
    np.testing.assert_allclose(plotly_array(bars[1]["y"]), expected.per_class["f1-score_b"])
    table = next(d.value for d in at.dataframe if "Δ recall" in d.value.columns)
    np.testing.assert_allclose(table["Δ recall"], expected.per_class["recall_change"] * 100)  # points
    np.testing.assert_allclose(table["F1 B"], expected.per_class["f1-score_b"])
    assert list(table["class"]) == expected.classes

    at.radio(key="runs-diff-normalize").set_value("images").run()
    heat = _chart(at, "runs-diff-chart")["data"][0]
    z = np.array(
        [plotly_array(row) if isinstance(row, dict) else row for row in plotly_array(heat["z"])], dtype=float
    )
    np.testing.assert_array_equal(z, expected.confusion_change())

    at.selectbox(key="runs-b").set_value("other").run()  # the same dataset: no warning
    _ok(at)
    assert not any("validation sets differ" in w.value for w in at.warning)
    assert any("same validation images" in c.value for c in at.caption)


def test_runs_with_different_classes_are_refused_clearly(tiny_run):
    _copy(tiny_run, "shapes-run", 1_000)
    config = TrainConfig(
        dataset="digits", model="lenet", epochs=1, image_size=16, tensorboard=False, threads=1
    )
    train(config, paths.runs_dir() / "digits-run")
    at = run_page(PAGE)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("different classes" in e and "Pick two runs with the same classes" in e for e in errors), (
        errors
    )
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("runs-diff-chart")]


def test_large_validation_sets_are_evaluated_when_asked(tiny_run, monkeypatch):
    at = run_page(PAGE)  # loads ui.training.runs_tab inside a script run, as the app does
    ui_runs = sys.modules["ui.training.runs_tab"]
    monkeypatch.setattr(ui_runs, "AUTO_COMPARE_IMAGES", 10)  # the tiny run has 60 validation images
    for name, when in (("one", 1_000), ("two", 2_000)):
        for cache in _copy(tiny_run, name, when).glob("predictions_*.npz"):
            cache.unlink()
    at.run()
    _ok(at)
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("runs-diff-chart")]
    at.button(key="runs-evaluate").click().run()
    _ok(at)
    _chart(at, "runs-diff-chart")
    at.run()  # the pair stays evaluated (and its predictions are now cached on disk)
    _chart(at, "runs-diff-chart")
    assert (paths.runs_dir() / "one" / "predictions_best.npz").is_file()


def test_a_loss_spike_puts_the_results_and_the_comparison_on_a_log_axis(tiny_run, monkeypatch):
    # A restarted server (no job of an earlier test in this process): the results are the newest run on disk.
    monkeypatch.setattr(jobs, "_REGISTRY", jobs.JobRegistry())
    _copy(tiny_run, "calm", 1_000)
    spiky = _copy(tiny_run, "spiky", 2_000)
    metrics = pd.read_csv(spiky / "metrics.csv")
    metrics.loc[0, "val_loss"] = 900.0  # ResNet-18's unstable first epoch before the precise-BN fix
    metrics.to_csv(spiky / "metrics.csv", index=False)
    at = run_page(PAGE)  # the newest run on disk: spiky's results
    _ok(at)
    assert _chart(at, "final-epoch-chart")["layout"]["yaxis"]["type"] == "log"
    at.selectbox(key="runs-metric").set_value("val_loss").run()
    _ok(at)
    layout = _chart(at, "runs-compare-chart")["layout"]
    assert layout["yaxis"]["type"] == "log" and "log scale" in layout["yaxis"]["title"]["text"]
    at.multiselect(key="runs-compare").set_value(["calm"]).run()  # the calm run alone: a linear axis
    assert _chart(at, "runs-compare-chart")["layout"]["yaxis"].get("type") in (None, "linear")
