"""Run store: listing, loading by name or path, checkpoints, eval preprocessing, deletion."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time

import pytest
import torch

from cnndash.preprocess import array_to_uint8, normalize_batch
from cnndash.runs import (
    BATCH_LOG,
    RunError,
    RunWriter,
    delete_run,
    list_runs,
    load_run,
    new_run_name,
    read_batch_log,
    write_status,
)
from cnndash.runs.writer import BATCH_FLUSH_ROWS
from cnndash.training.config import ConfigError, TrainConfig


def copy_run(src, runs_dir, name):
    dst = runs_dir / name
    shutil.copytree(src, dst)
    return dst


def test_tiny_run_loads_with_classes_metrics_and_model(tiny_run):
    run = load_run(tiny_run)
    assert run.name == "tiny" and run.status == "finished"
    assert run.classes == ["circle", "square", "triangle"]
    assert run.summary is not None and 0 <= run.summary["val_accuracy"] <= 1
    assert run.metrics()["epoch"].tolist() == [1, 2]
    model = run.load_model("best")
    assert not model.training
    assert run.checkpoint_path("last").name == "last.pt"


def test_preprocess_is_exactly_the_training_input(tiny_run):
    run = load_run(tiny_run)
    dataset = run.dataset()
    info = run.dataset_info
    images = [dataset.val[i][0] for i in range(6)]
    expected = normalize_batch(
        array_to_uint8(dataset.val.uint8_array()[:6], size=run.image_size), info["mean"], info["std"]
    )
    batch = run.preprocess(images)
    assert batch.shape == (6, 3, 32, 32) and batch.dtype == torch.float32
    torch.testing.assert_close(batch, expected, rtol=0, atol=0)


def test_model_reproduces_the_recorded_validation_accuracy(tiny_run):
    run = load_run(tiny_run)
    dataset = run.dataset()
    x = run.preprocess([dataset.val[i][0] for i in range(len(dataset.val))])
    with torch.no_grad():
        predictions = run.load_model("best")(x).argmax(1)
    accuracy = (predictions == torch.tensor(dataset.val.targets)).float().mean().item()
    assert accuracy == pytest.approx(run.summary["val_accuracy"])


def test_list_and_load_by_name_under_runs_dir(tiny_run, tmp_path, monkeypatch):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs_dir))
    older = copy_run(tiny_run, runs_dir, "older")
    newer = copy_run(tiny_run, runs_dir, "newer")
    (runs_dir / "not-a-run").mkdir()
    now = time.time()  # copytree keeps the source's times: set both, so the order does not depend on when
    os.utime(older / "config.json", (now - 100, now - 100))  # the shared tiny run was made
    os.utime(newer / "config.json", (now, now))
    assert [run.name for run in list_runs()] == ["newer", "older"]
    assert load_run("older").path == older
    assert new_run_name("lenet", "shapes:count=300,size=32") != ""
    delete_run("newer")
    assert not newer.exists()
    with pytest.raises(RunError, match="No run 'missing'"):
        load_run("missing")
    assert list_runs(tmp_path / "nowhere") == []


def test_missing_checkpoint_is_a_clear_error(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path, "no-best")
    (run_dir / "best.pt").unlink()
    run = load_run(run_dir)
    with pytest.raises(RunError, match=r"no best\.pt"):
        run.checkpoint_path("best")
    with pytest.raises(RunError, match="'best' or 'last'"):
        run.checkpoint_path("middle")


def test_a_running_run_whose_process_died_is_interrupted_and_resumable(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path, "crashed")
    with RunWriter(run_dir).training():
        write_status(run_dir, "running", "epoch 1 of 2")
        assert load_run(run_dir).status == "running"  # this process trains it right now
    # The same (live) process no longer trains it: a status left behind, e.g. by a full disk.
    assert load_run(run_dir).status == "interrupted"
    status = json.loads((run_dir / "status.json").read_text())
    for pid in (2**22 + 12345, -1, 0, "12"):  # no such process; a process group; not a pid at all
        (run_dir / "status.json").write_text(json.dumps({**status, "pid": pid}))
        run = load_run(run_dir)
        assert run.status == "interrupted" and "resume" in run.message and run.resumable


def test_delete_refuses_a_running_run(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path, "live")
    with RunWriter(run_dir).training():
        write_status(run_dir, "running")
        with pytest.raises(RunError, match="still training"):
            delete_run("live", run_dir.parent)  # runs are deleted by name
        assert run_dir.exists()
    delete_run("live", run_dir.parent)  # once nothing trains it, it can go
    assert not run_dir.exists()


def test_broken_run_folders_are_listed_as_broken_and_can_be_deleted(tiny_run, tmp_path):
    good = copy_run(tiny_run, tmp_path, "good")
    root = good.parent
    (root / "no-config").mkdir()
    bad_json = copy_run(tiny_run, tmp_path, "bad-json")
    (bad_json / "dataset.json").write_text("[1, 2")
    (bad_json / "status.json").write_text('{"status": "running", "pid": "x"}')
    listed = {run.name: run for run in list_runs(root, include_broken=True)}
    assert listed["good"].status == "finished"
    assert listed["no-config"].status == "broken" and "delete" in listed["no-config"].message
    assert listed["bad-json"].status == "interrupted"  # readable config, malformed side files
    assert "no-config" not in {run.name for run in list_runs(root)}
    delete_run("no-config", root)
    assert not (root / "no-config").exists()
    with pytest.raises(RunError):
        delete_run("..", root)


def test_grayscale_run_preprocesses_to_one_channel_and_evaluates(tmp_path):
    """A run on a 1-channel dataset (digits) must feed its model 1-channel input at evaluation time."""
    from cnndash.evaluate.predict import predict_run
    from cnndash.training.loops import TrainConfig, train

    run_dir = tmp_path / "digits-gray"
    train(TrainConfig(dataset="digits", model="lenet", epochs=1, batch_size=64, seed=0), run_dir)
    run = load_run(run_dir)
    assert run.in_channels == 1
    image = run.dataset().val[0][0]
    assert run.preprocess([image]).shape[1] == 1
    predictions = predict_run(run, "best")
    assert len(predictions) == len(run.dataset().val)
    assert predictions.accuracy > 0.5


def test_corrupt_checkpoint_is_a_clear_run_error(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path, "corrupt")
    (run_dir / "best.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(RunError, match=r"best\.pt .*cannot be read"):
        load_run(run_dir).load_model("best")


# --------------------------------------------------------------------------------------------------
# The per-batch log (batches.csv)


def batch_row(step: int, seconds: float) -> dict:
    return {"step": step, "epoch": 1 + (step - 1) // 10, "batch": 1 + (step - 1) % 10, "batches": 10,
            "loss": 1.0 / step, "acc": 0.5, "lr": 0.01, "images_per_sec": 100.0, "seconds": seconds}  # fmt: skip


def test_the_batch_log_is_buffered_read_incrementally_and_cut_back_on_resume(tmp_path, monkeypatch):
    writer = RunWriter(tmp_path)
    log = writer.batch_log(keep_until_step=0)
    monkeypatch.setattr(time, "monotonic", lambda: 0.0)  # no time passes: only the row count flushes
    for step in range(1, 6):
        log.add(batch_row(step, step / 10))
    assert not (tmp_path / BATCH_LOG).exists()  # buffered, nothing written yet
    log.flush()
    assert [r["step"] for r in read_batch_log(tmp_path / BATCH_LOG)] == [1, 2, 3, 4, 5]
    assert read_batch_log(tmp_path / BATCH_LOG)[0] == batch_row(1, 0.1)
    # A reader sees whole rows only: a half-written last line waits for its end.
    with open(tmp_path / BATCH_LOG, "a") as handle:
        handle.write("6,1,6,10,0.1")
    assert len(read_batch_log(tmp_path / BATCH_LOG)) == 5
    with open(tmp_path / BATCH_LOG, "a") as handle:
        handle.write("6,0.5,0.01,100.0,0.6\n")
    assert [r["step"] for r in read_batch_log(tmp_path / BATCH_LOG)] == [1, 2, 3, 4, 5, 6]
    # A resume from the checkpoint at step 3 drops the later rows; the run's time goes on from row 3's.
    resumed = writer.batch_log(keep_until_step=3)
    assert resumed.seconds_before == pytest.approx(0.3)
    assert [r["step"] for r in read_batch_log(tmp_path / BATCH_LOG)] == [1, 2, 3]
    for step in range(4, 4 + BATCH_FLUSH_ROWS):  # a full buffer flushes on its own
        resumed.add(batch_row(step, 0.3 + step))
    rows = load_run_log(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 4 + BATCH_FLUSH_ROWS))
    assert writer.batch_log(keep_until_step=0).seconds_before == 0.0
    assert read_batch_log(tmp_path / BATCH_LOG) == []  # a new run starts an empty log


def load_run_log(path):
    return read_batch_log(path / BATCH_LOG)


def test_a_resumed_run_logs_the_whole_run_and_its_summary_counts_all_its_time(tmp_path):
    from cnndash.training.events import BatchEvent
    from cnndash.training.loops import TrainConfig, train

    stop = threading.Event()

    def stop_in_epoch_2(event):
        if isinstance(event, BatchEvent) and event.epoch == 2 and event.batch == 10:
            stop.set()

    config = TrainConfig(dataset="digits", epochs=3, device="cpu", tensorboard=False)
    first = train(config, tmp_path / "r", on_event=stop_in_epoch_2, stop_event=stop)
    run = load_run(tmp_path / "r")
    assert first["status"] == "stopped" and run.batch_log()[-1]["step"] == 45 + 10
    second = train(config, tmp_path / "r", resume=True)
    rows = load_run(tmp_path / "r").batch_log()
    assert [r["step"] for r in rows] == list(range(1, 3 * 45 + 1))  # the whole run, no step twice
    seconds = [r["seconds"] for r in rows]
    assert seconds == sorted(seconds) and seconds[55] > first["seconds"] * 0.9
    assert second["seconds"] > first["seconds"] and second["seconds"] >= seconds[-1]


def write_json(path, data) -> None:
    path.write_text(json.dumps(data))


def test_world_size_is_read_from_status_or_summary(tmp_path):
    """A torchrun run records its world size; Resume starts as many processes (runs_tab.resume)."""
    run = tmp_path / "r"
    run.mkdir()
    write_json(run / "config.json", {"dataset": "digits", "model": "lenet"})
    write_json(run / "status.json", {"status": "stopped", "message": "", "world_size": 2})
    assert load_run(run).world_size == 2
    write_json(run / "status.json", {"status": "finished"})
    write_json(run / "summary.json", {"val_accuracy": 0.5, "world_size": 3})
    assert load_run(run).world_size == 3
    write_json(run / "summary.json", {"val_accuracy": 0.5})
    assert load_run(run).world_size == 1


def test_runs_say_what_they_are_for_and_fold_runs_are_hidden(tmp_path):
    """A run a person started is listed in pickers; a label check's fold run names its check."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps(TrainConfig(dataset="digits").to_dict()))
    fold = tmp_path / "fold"
    fold.mkdir()
    config = TrainConfig(dataset="digits", purpose="fold", group="label-check:pets")
    (fold / "config.json").write_text(json.dumps(config.to_dict()))
    runs = {run.name: run for run in list_runs(tmp_path)}
    assert (runs["plain"].purpose, runs["plain"].group, runs["plain"].hidden) == ("train", "", False)
    assert (runs["fold"].purpose, runs["fold"].group, runs["fold"].hidden) == (
        "fold",
        "label-check:pets",
        True,
    )
    with pytest.raises(ConfigError, match=r"(?i)purpose"):
        TrainConfig(dataset="digits", purpose="sideways").validate()


def test_a_pickers_list_leaves_out_the_runs_of_a_group(tmp_path):
    """``include_hidden=False`` is what a run picker lists: the fold runs of a label check stay out,
    while the full listing (the CLI's ``runs``) still has them."""
    for name, extra in (("mine", {}), ("fold1", {"purpose": "fold", "group": "label-check:mine"})):
        (tmp_path / name).mkdir()
        config = TrainConfig(dataset="digits", **extra).to_dict()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    assert sorted(run.name for run in list_runs(tmp_path)) == ["fold1", "mine"]
    assert [run.name for run in list_runs(tmp_path, include_hidden=False)] == ["mine"]
