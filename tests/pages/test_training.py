"""Training page through Streamlit's AppTest: start a run, see charts and results, stop, manage runs."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from cnndash.device import max_processes
from cnndash.jobs.registry import ProcessJob, get_registry
from cnndash.training.auto import auto_config
from cnndash.training.loops import TrainConfig
from tests.pages.test_pages import run_page

PAGE = "pages/training.py"


@pytest.fixture(autouse=True)
def _no_job_left_running():
    yield
    get_registry().stop_all(timeout=60)


def test_defaults_render_with_train_enabled_and_stop_disabled():
    at = run_page(PAGE)
    assert not at.exception
    assert at.selectbox(key="train-dataset").value == "digits"
    # The one-click suggestion for digits (cnndash.training.auto, the CLI's --model auto): LeNet.
    assert at.selectbox(key="train-model").value == "lenet"
    assert (
        at.number_input(key="train-epochs").value == auto_config(TrainConfig(dataset="digits")).config.epochs
    )
    assert not at.button(key="train-start").disabled
    assert at.button(key="train-stop").disabled


def test_changing_the_optimizer_suggests_its_learning_rate():
    at = run_page(PAGE)
    at.selectbox(key="train-optimizer").set_value("sgd").run()
    assert at.number_input(key="train-lr").value == pytest.approx(0.05)


def test_start_a_run_and_see_the_charts_and_summary():
    at = run_page(PAGE)
    at.number_input(key="train-epochs").set_value(2).run()
    at.button(key="train-start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = get_registry().latest()
    assert job is not None and job.config.dataset == "digits" and job.config.epochs == 2
    assert job.wait(120)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    chart_ids = [c.proto.id for c in at.get("plotly_chart")]
    assert any(i.endswith("final-batch-chart") for i in chart_ids)  # per-batch curves
    assert any(i.endswith("final-epoch-chart") for i in chart_ids)  # per-epoch train vs val
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Best epoch"].endswith("of 2")
    assert metrics["Best val accuracy"].endswith("%")
    assert (Path(os.environ["CNNDASH_RUNS_DIR"]) / job.run_name / "best.pt").is_file()
    assert at.button(key="train-goto-evaluation") is not None
    assert job.run_name in at.dataframe[0].value["run"].tolist()


def test_a_live_run_shows_progress_and_stop_ends_it():
    registry = get_registry()
    job = registry.start(TrainConfig(dataset="shapes:count=120,size=32", epochs=500, batch_size=8))
    deadline = time.monotonic() + 60
    while not job.snapshot().batch_points and time.monotonic() < deadline:
        time.sleep(0.05)
    at = run_page(PAGE)  # a second browser session sees the same run
    assert not at.exception
    assert at.button(key="train-start").disabled
    assert any(job.run_name in s.value for s in at.subheader)
    assert at.get("progress")
    at.button(key="train-stop").click().run()
    assert job.wait(30)
    at.run()
    assert job.snapshot().status == "stopped"
    assert any("Stopped by the user" in w.value for w in at.warning)
    assert not at.button(key="train-start").disabled


def test_runs_tab_compares_and_deletes(tiny_run):
    runs_dir = Path(os.environ["CNNDASH_RUNS_DIR"])
    runs_dir.mkdir(parents=True, exist_ok=True)
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_run, runs_dir / name)
    at = run_page(PAGE)
    assert sorted(at.dataframe[0].value["run"]) == ["alpha", "beta"]
    assert sorted(at.multiselect(key="runs-compare").value) == ["alpha", "beta"]
    compare = [c for c in at.get("plotly_chart") if c.proto.id.endswith("runs-compare-chart")]
    assert len(compare) == 1
    figure = json.loads(compare[0].proto.spec)
    assert sorted(trace["name"] for trace in figure["data"]) == ["alpha", "beta"]
    at.selectbox(key="runs-target").set_value("alpha").run()
    assert at.button(key="runs-delete").disabled
    at.checkbox(key="runs-delete-confirm").check().run()
    at.button(key="runs-delete").click().run()
    assert not at.exception
    assert not (runs_dir / "alpha").exists() and (runs_dir / "beta").exists()


def test_figure_builders():
    from cnndash.plots import training as plots_train

    assert plots_train.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # bias-corrected
    assert plots_train.smooth([0.0, 1.0], weight=0.0) == [0.0, 1.0]
    points = [{"step": i + 1, "epoch": 1, "loss": 1.0 / (i + 1), "acc": 0.5, "lr": 0.01} for i in range(10)]
    batch = plots_train.batch_curves_figure(points, steps_per_epoch=5)
    assert [t.name for t in batch.data] == [
        "loss (raw)",
        "loss (smoothed)",
        "accuracy (raw)",
        "accuracy (smoothed)",
    ]
    assert list(batch.data[0].y) == [p["loss"] for p in points]
    rows = [
        {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4},
        {"epoch": 2, "train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.7, "val_acc": 0.7},
    ]
    epoch = plots_train.epoch_curves_figure(rows)
    assert len(epoch.data) == 4 and list(epoch.data[3].y) == [0.4, 0.7]
    with pytest.raises(ValueError, match="metric"):
        plots_train.compare_runs_figure({}, "f1")


def test_sidebar_shows_the_active_run_on_every_page():
    job = get_registry().start(TrainConfig(dataset="shapes:count=120,size=32", epochs=500, batch_size=8))
    deadline = time.monotonic() + 60
    while not job.snapshot().batch_points and time.monotonic() < deadline:
        time.sleep(0.05)
    at = run_page("pages/home.py")
    assert "Active training run" in [c.value for c in at.sidebar.caption]
    assert any(job.run_name in m.value and "epoch" in m.value for m in at.sidebar.markdown)
    job.stop()
    assert job.wait(30)
    at.run()
    assert "Active training run" not in [c.value for c in at.sidebar.caption]


def test_a_saved_pipeline_is_used_for_training():
    from cnndash.augment import save_pipeline

    spec = [{"op": "RandomHorizontalFlip", "p": 0.5}]
    save_pipeline("flip", spec)
    at = run_page(PAGE)
    assert at.selectbox(key="train-pipeline").options == ["(none)", "flip"]
    at.selectbox(key="train-pipeline").set_value("flip")
    at.number_input(key="train-epochs").set_value(1).run()
    at.button(key="train-start").click().run()
    job = get_registry().latest()
    assert job.config.pipeline == "flip" and job.config.augment == spec
    assert job.wait(120) and job.snapshot().status == "finished", job.snapshot().error


def test_the_page_says_what_the_model_will_see_before_train():
    at = run_page(PAGE)
    seen = [m.value for m in at.markdown if "The model will see" in m.value]
    assert (
        seen and "28×28 px · grayscale, 1 channel" in seen[0] and "8 px" in seen[0] and "upsampled" in seen[0]
    )
    assert at.get("imgs") or at.get("image")  # the training batch strip
    at.selectbox(key="train-dataset").set_value("shapes").run()
    seen = [m.value for m in at.markdown if "The model will see" in m.value]
    assert "RGB, 3 channels" in seen[0]
    # The one-click suggestion chose a model for colour images; a model picked by hand that suits them
    # less gets the preflight's suggestion and its button.
    assert at.selectbox(key="train-model").value != "lenet"
    at.selectbox(key="train-model").set_value("lenet").run()
    assert any("Suggested model" in c.value for c in at.caption)
    suggested = at.button(key="train-use-suggested").label.removeprefix("Use ")
    assert suggested != "lenet"
    at.button(key="train-use-suggested").click().run()
    assert at.selectbox(key="train-model").value == suggested


def test_settings_that_cannot_work_disable_train_or_warn():
    at = run_page(PAGE)
    at.number_input(key="train-batch-size").set_value(4096).run()
    assert any("Batch size 4096" in w.value for w in at.warning)
    assert not at.button(key="train-start").disabled  # it can train, badly: a warning
    at.number_input(key="train-batch-size").set_value(64).run()
    at.number_input(key="train-image-size").set_value(8).run()
    assert at.button(key="train-start").disabled
    assert any("Train is disabled" in e.value and "at least 12" in e.value for e in at.error)
    at.number_input(key="train-image-size").set_value(0).run()
    at.slider(key="train-val-fraction").set_value(0.05).run()
    assert not any("validation images" in w.value for w in at.warning)  # 90 images: fine
    at.selectbox(key="train-dataset").set_value("shapes").run()
    assert not at.button(key="train-start").disabled


def test_a_reload_mid_run_shows_the_runs_settings():
    config = TrainConfig(dataset="shapes:count=120,size=32", model="simplecnn", epochs=500, batch_size=8)
    job = get_registry().start(config)
    at = run_page(PAGE)  # a reload: a new session while the run trains
    assert at.selectbox(key="train-model").value == "simplecnn"
    assert at.number_input(key="train-epochs").value == 500
    assert at.number_input(key="train-batch-size").value == 8
    job.stop()
    assert job.wait(30)


def test_stop_then_resume_in_place_and_results_after_a_restart(monkeypatch):
    from cnndash.jobs import registry as jobs

    job = get_registry().start(TrainConfig(dataset="shapes:count=120,size=32", epochs=500, batch_size=8))
    deadline = time.monotonic() + 60
    while not job.snapshot().batch_points and time.monotonic() < deadline:
        time.sleep(0.05)
    at = run_page(PAGE)
    at.button(key="train-stop").click().run()
    assert job.wait(30)
    at.run()
    assert any("Stopped by the user" in w.value for w in at.warning)
    at.button(key="train-resume").click().run()  # right under the stop message
    assert not at.exception, [e.value for e in at.exception]
    resumed = get_registry().active()
    assert resumed is not None and resumed.run_name == job.run_name
    resumed.stop()
    assert resumed.wait(30)

    monkeypatch.setattr(jobs, "_REGISTRY", jobs.JobRegistry())  # a restarted server knows no jobs
    at = run_page(PAGE)
    assert any(job.run_name in s.value for s in at.subheader)
    assert any("Stopped" in w.value or "stopped" in w.value for w in at.warning)
    assert at.button(key="train-resume") is not None


def test_processes_launch_a_torchrun_run_that_the_page_follows_and_stops():
    at = run_page(PAGE)
    box = at.number_input(key="train-processes")
    assert box.value == 1 and "global batch" in box.help and "not rescaled" in box.help
    box.set_value(max_processes("auto") + 1).run()  # the engine's range, shown under More settings
    assert at.button(key="train-start").disabled
    assert any(f"from 1 to {max_processes('auto')}" in e.value for e in at.error)
    at.number_input(key="train-processes").set_value(2).run()
    at.number_input(key="train-epochs").set_value(200).run()
    assert any("World size 2" in m.value and "16 images per process" in m.value for m in at.markdown)
    at.button(key="train-start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    job = get_registry().latest()
    try:
        assert isinstance(job, ProcessJob) and job.processes == 2 and job.config.epochs == 200
        deadline = time.monotonic() + 240
        while not job.snapshot().batch_points and time.monotonic() < deadline and job.alive:
            time.sleep(0.1)
        assert job.snapshot().batch_points, (job.snapshot().error, job.log_text()[-2000:])
        at.run()
        assert not at.exception
        assert at.button(key="train-start").disabled
        assert any("× 2 processes" in c.value for c in at.caption)
        assert any(c.proto.id.endswith("live-batch-chart") for c in at.get("plotly_chart"))
        at.button(key="train-stop").click().run()
        assert job.wait(90)
        at.run()
        assert job.snapshot().status == "stopped", job.snapshot().error
        assert any("Stopped by the user" in w.value for w in at.warning)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Device"] == "CPU × 2"
        summary = json.loads((job.run_dir / "summary.json").read_text())
        assert summary["world_size"] == 2 and summary["status"] == "stopped"
    finally:
        job.kill()


def test_the_open_tab_stays_open_across_a_language_switch():
    """Issue 25: Streamlit knows a tab set by its labels; a switch to 简体中文 renames Train/Runs and the page
    came back on Train. ui.kept_tabs reopens the Runs tab under its Chinese label."""
    at = run_page("pages/training.py", timeout=180)
    at.session_state["train-tab"] = "Runs"  # as a click on the second tab does
    at.run(timeout=120)
    # The sidebar's switch sets the workspace's language (AppTest draws no sidebar after a switch_page).
    at.session_state["workspace"] = {**at.session_state["workspace"], "lang": "zh-CN"}
    at.run(timeout=120)
    assert not at.exception
    assert [t.label for t in at.tabs][:2] == ["训练", "运行记录"] and at.session_state[
        "train-tab"
    ] == "运行记录"
