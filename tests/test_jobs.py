"""Background jobs: a run trains in a thread, reports progress, stops within a batch, one per device."""

from __future__ import annotations

import os
import time

import pytest

from cnndash.jobs import JobBusyError, JobRegistry, get_registry
from cnndash.runs import load_run
from cnndash.train import ConfigError, TrainConfig

SMALL = "shapes:count=120,size=32"


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_registry_is_process_wide():
    assert get_registry() is get_registry()


def test_job_trains_in_the_background_and_reports_progress(tmp_path):
    registry = JobRegistry()
    job = registry.start(
        TrainConfig(dataset=SMALL, epochs=2, batch_size=16), run_name="bg", runs_dir=tmp_path
    )
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert [row["epoch"] for row in snap.epoch_rows] == [1, 2]
    assert len(snap.batch_points) == 2 * snap.batches
    assert snap.fraction == 1.0 and job.fraction_done() == 1.0
    assert snap.summary["epochs"] == 2
    assert "finished after 2/2 epochs" in job.status_text()
    assert registry.active() is None and registry.latest() is job and registry.get("bg") is job
    assert load_run(tmp_path / "bg").status == "finished"
    assert job.config.threads == max(1, (os.cpu_count() or 2) - 1)  # a core left for the web server


def test_one_run_per_device_and_stop_within_a_batch(tmp_path):
    registry = JobRegistry()
    long = registry.start(
        TrainConfig(dataset=SMALL, epochs=200, batch_size=8), run_name="long", runs_dir=tmp_path
    )
    try:
        assert wait_until(lambda: long.snapshot().batch_points), long.snapshot().error
        assert registry.active() is long
        assert 0 < long.fraction_done() < 1
        assert "epoch 1/200" in long.status_text() or "epoch 2/200" in long.status_text()
        with pytest.raises(JobBusyError, match="already training"):
            registry.start(TrainConfig(dataset=SMALL, epochs=1), run_name="second", runs_dir=tmp_path)
        steps_at_stop = long.snapshot().batch_points[-1]["step"]
        long.stop()
        assert long.wait(30)
    finally:
        long.stop()
        long.wait(30)
    snap = long.snapshot()
    assert snap.status == "stopped"
    assert snap.batch_points[-1]["step"] <= steps_at_stop + 1  # at most the batch in flight
    run = load_run(tmp_path / "long")
    assert run.status == "stopped"
    assert run.load_model("last") is not None
    # The device is free again.
    again = registry.start(TrainConfig(dataset=SMALL, epochs=1), run_name="after", runs_dir=tmp_path)
    assert again.wait(60) and again.snapshot().status == "finished"


def test_failures_are_reported_on_the_job(tmp_path):
    registry = JobRegistry()
    diverging = registry.start(
        TrainConfig(dataset=SMALL, epochs=2, optimizer="sgd", lr=1e6, schedule="constant"),
        run_name="nan",
        runs_dir=tmp_path,
    )
    assert diverging.wait(60)
    assert diverging.snapshot().status == "failed"
    assert "lower it" in diverging.status_text()

    missing = registry.start(
        TrainConfig(dataset="no-such-data", epochs=1), run_name="nodata", runs_dir=tmp_path
    )
    assert missing.wait(60)
    assert "no-such-data" in missing.snapshot().error

    with pytest.raises(ConfigError, match=r"(?i)epochs"):
        registry.start(TrainConfig(dataset=SMALL, epochs=0), runs_dir=tmp_path)
