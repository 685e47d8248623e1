"""The trainer on real (tiny) data: learning, stop, resume, divergence, schedules, data paths, the CLI."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cnndash.cli import main as cli_main
from cnndash.runs import METRIC_COLUMNS, load_run
from cnndash.training.config import MAX_EPOCHS, MAX_LR
from cnndash.training.events import BatchEvent, EpochEvent, StartEvent
from cnndash.training.loops import (
    ConfigError,
    TrainConfig,
    TrainingDivergedError,
    train,
)
from cnndash.training.optim import make_scheduler
from cnndash.training.summary import STOPPED
from tests.conftest import ROOT

SMALL = "shapes:count=120,size=32"


def small_config(**overrides) -> TrainConfig:
    settings = dict(dataset=SMALL, model="lenet", epochs=2, batch_size=16, seed=0)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_short_run_on_shapes_lowers_the_loss(tmp_path):
    events = []
    summary = train(
        TrainConfig(dataset="shapes:count=300,size=32", model="simplecnn", epochs=4, batch_size=16),
        tmp_path / "run",
        on_event=events.append,
    )
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    assert [e.epoch for e in epochs] == [1, 2, 3, 4]
    assert epochs[-1].train_loss < epochs[0].train_loss - 0.05
    batches = [e.loss for e in events if isinstance(e, BatchEvent)]
    assert np.mean(batches[-5:]) < np.mean(batches[:5])
    assert summary["epochs"] == 4 and summary["status"] == "finished"
    assert summary["images_per_sec"] > 0 and summary["seconds"] > 0
    assert summary["data_path"] == "memory"
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert list(metrics.columns[:5]) == METRIC_COLUMNS
    assert metrics["epoch"].tolist() == [1, 2, 3, 4]
    assert summary["val_accuracy"] == pytest.approx(metrics["val_acc"].max())
    assert summary["best_epoch"] == int(metrics.loc[metrics["val_acc"].idxmax(), "epoch"])


def test_run_directory_layout_and_plain_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    train(small_config(epochs=1), run_dir)
    for name in (
        "config.json",
        "dataset.json",
        "metrics.csv",
        "last.pt",
        "best.pt",
        "summary.json",
        "status.json",
    ):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert TrainConfig.from_dict(config).image_size == 32  # resolved, so the run can be rerun exactly
    checkpoint = torch.load(run_dir / "last.pt", weights_only=True)  # plain types only
    assert checkpoint["epoch"] == 1 and checkpoint["classes"] == ["circle", "square", "triangle"]
    assert checkpoint["config"]["model"] == "lenet"
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))


def test_stop_mid_epoch_leaves_a_loadable_checkpoint(tmp_path):
    stop = threading.Event()
    seen = []

    def on_event(event):
        if isinstance(event, BatchEvent):
            seen.append(event.batch)
            if event.batch == 3:
                stop.set()

    summary = train(small_config(epochs=3), tmp_path / "run", on_event=on_event, stop_event=stop)
    assert seen == [1, 2, 3]  # ended within one batch of the request
    assert summary["status"] == "stopped" and "resume" in summary["message"]
    # kept with its template and numbers too, so that a page says it in its reader's language
    said = {"message_template": STOPPED, "message_params": {"epoch": 1, "batch": 3, "steps": 6}}
    assert summary.items() >= said.items() and STOPPED.format(epoch=1, batch=3, steps=6) == summary["message"]
    assert json.loads((tmp_path / "run" / "status.json").read_text()).items() >= said.items()
    run = load_run(tmp_path / "run")
    assert run.status == "stopped"
    checkpoint = torch.load(run.checkpoint_path("last"), weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (0, 3)
    model = run.load_model("last")
    assert not model.training
    assert run.checkpoint_path("best").is_file()  # the Evaluation page can use a run stopped in epoch 1
    out = model(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, 3)


def test_resume_continues_at_the_right_epoch_and_matches_an_uninterrupted_run(tmp_path):
    full = tmp_path / "full"
    train(small_config(epochs=3), full)

    stop = threading.Event()

    def stop_in_epoch_2(event):
        if isinstance(event, BatchEvent) and (event.epoch, event.batch) == (2, 2):
            stop.set()

    part = tmp_path / "part"
    train(small_config(epochs=3), part, on_event=stop_in_epoch_2, stop_event=stop)
    assert pd.read_csv(part / "metrics.csv")["epoch"].tolist() == [1]

    events = []
    summary = train(small_config(epochs=3), part, resume=True, on_event=events.append)
    start = next(e for e in events if isinstance(e, StartEvent))
    assert (start.start_epoch, start.start_batch) == (1, 2)
    first_batch = next(e for e in events if isinstance(e, BatchEvent))
    assert (first_batch.epoch, first_batch.batch) == (2, 3)  # the stopped epoch's remaining batches
    assert summary["epochs"] == 3 and summary["status"] == "finished"
    assert pd.read_csv(part / "metrics.csv")["epoch"].tolist() == [1, 2, 3]

    # Same seed, same data, restored optimizer/scheduler and shuffling: the same weights as without a stop.
    a = torch.load(full / "last.pt", weights_only=True)["model"]
    b = torch.load(part / "last.pt", weights_only=True)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_resume_needs_a_checkpoint_and_fresh_runs_refuse_an_existing_folder(tmp_path):
    with pytest.raises(ValueError, match="Nothing to resume"):
        train(small_config(), tmp_path / "empty", resume=True)
    train(small_config(epochs=1), tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run"):
        train(small_config(epochs=1), tmp_path / "run")


def test_absurd_learning_rate_stops_with_the_nan_message(tmp_path):
    # The largest LR accepted, with a weight decay that multiplies the weights by 1 - lr·wd = -9 per step.
    config = small_config(optimizer="sgd", lr=MAX_LR, weight_decay=1.0, schedule="constant", epochs=3)
    with pytest.raises(TrainingDivergedError, match=r"(?s)too high.*lower it"):
        train(config, tmp_path / "run")
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "learning rate" in status["message"]


def test_early_stopping_ends_a_run_that_does_not_improve(tmp_path):
    summary = train(small_config(epochs=6, lr=1e-12, early_stopping=2, schedule="constant"), tmp_path / "run")
    assert summary["epochs"] == 3  # best at epoch 1, then two epochs without improvement
    assert "Early stopping" in summary["message"]


@pytest.mark.parametrize(
    ("overrides", "culprit"),
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1.0}, "learning rate"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"schedule": "wavy"}, "schedule"),
        ({"model": "alexnet"}, "model"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_settings_are_config_errors_naming_the_setting(tmp_path, overrides, culprit):
    with pytest.raises(ConfigError, match=f"(?i){culprit}"):
        train(small_config(**overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"lr": 100.0}, "lr", r"at most 10 \(e.g. 0.003\), got 100"),
        ({"epochs": MAX_EPOCHS + 1}, "epochs", f"from 1 to {MAX_EPOCHS}"),
        ({"weight_decay": -0.1}, "weight_decay", "at least 0"),
        ({"warmup_epochs": 20.0, "epochs": 10}, "warmup_epochs", "shorter than the run"),
        ({"image_size": 2}, "image_size", "from 4 to"),
    ],
)
def test_a_config_error_names_its_field_and_the_range(overrides, field, says):
    """A form shows the message next to the widget of ``ConfigError.field``; the range is in the text."""
    with pytest.raises(ConfigError, match=says) as info:
        TrainConfig(dataset="digits", **overrides).validate()
    assert info.value.field == field


@pytest.mark.parametrize(
    ("overrides", "in_form"),
    [
        ({"lr": 100.0}, "Learning rate must be a positive number of at most 10 (e.g. 0.003), got 100."),
        ({"batch_size": 0}, "Batch size must be a whole number from 1 to"),
        ({"momentum": 1.5}, "Momentum must be a number in [0, 1) (e.g. 0.9), got 1.5."),
    ],
)
def test_a_config_error_has_the_forms_words_and_the_clis(overrides, in_form):
    """The form names a setting by its label and the value as typed; the CLI's message names the key."""
    with pytest.raises(ConfigError) as info:
        TrainConfig(dataset="digits", **overrides).validate()
    assert info.value.form_message.startswith(in_form)
    assert str(info.value).startswith(f"Setting {next(iter(overrides))!r}")
    assert "Setting" not in info.value.form_message and "_" not in info.value.form_message


def test_config_round_trips_through_json_and_rejects_unknown_keys():
    config = TrainConfig(dataset="digits", model="vgg", augment=[{"op": "RandomHorizontalFlip", "p": 0.5}])
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ConfigError, match="colour"):
        TrainConfig.from_dict({"dataset": "digits", "colour": "red"})


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("schedule", ["cosine", "step", "constant"])
def test_optimizers_and_schedules_train(tmp_path, optimizer, schedule):
    config = small_config(
        epochs=1, optimizer=optimizer, schedule=schedule, lr=0.01, warmup_epochs=0.5,
        weight_decay=1e-4, label_smoothing=0.1, grad_clip=1.0,
    )  # fmt: skip
    summary = train(config, tmp_path / "run")
    assert summary["epochs"] == 1 and math.isfinite(summary["val_loss"])


def test_schedule_shapes():
    param = torch.nn.Parameter(torch.zeros(1))

    def lrs(**overrides):
        optimizer = torch.optim.SGD([param], lr=1.0)
        scheduler = make_scheduler(optimizer, epochs=6, steps_per_epoch=10, **overrides)
        out = []
        for _ in range(60):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return out

    step = lrs(schedule="step", step_size=2, step_gamma=0.1)
    assert (
        step[0] == 1.0
        and step[19] == 1.0
        and step[20] == pytest.approx(0.1)
        and step[40] == pytest.approx(0.01)
    )
    cosine = lrs(schedule="cosine", warmup_epochs=1)
    assert cosine[0] == pytest.approx(0.1) and cosine[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(cosine[10:])) and cosine[-1] < 0.01
    onecycle = lrs(schedule="onecycle")
    peak = int(np.argmax(onecycle))
    assert onecycle[peak] == pytest.approx(1.0, rel=1e-3) and 10 <= peak <= 20 and onecycle[-1] < 1e-3


def test_augmentation_spec_is_applied_in_training(tmp_path):
    spec = [{"op": "RandomHorizontalFlip", "p": 0.5}, {"op": "RandomResizedCrop", "size": [24, 24]}]
    summary = train(small_config(epochs=1, augment=spec), tmp_path / "run")
    assert summary["epochs"] == 1
    with pytest.raises(ValueError, match="NoSuchOp"):
        train(small_config(epochs=1, augment=[{"op": "NoSuchOp"}]), tmp_path / "bad")


def test_dataloader_fallback_on_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    for cls, level in (("dark", 40), ("light", 210)):
        (root / cls).mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(level, 20, size=(20 + i % 3, 18, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    config = TrainConfig(dataset=str(root), model="simplecnn", epochs=2, batch_size=8, memory_budget_mb=0)
    summary = train(config, tmp_path / "run")
    assert summary["data_path"] == "dataloader"
    assert summary["classes"] == ["dark", "light"]
    assert summary["val_accuracy"] == 1.0  # dark vs light is trivial


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnndash", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_cli_digits_lenet_reaches_97_percent(tmp_path):
    out = tmp_path / "digits-run"
    result = run_cli("train", "--dataset", "digits", "--model", "lenet", "--epochs", "10", "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["val_accuracy"] >= 0.97
    assert summary["epochs"] == 10 and summary["device"] == "cpu" and summary["images_per_sec"] > 0
    assert json.loads(result.stdout)["val_accuracy"] == summary["val_accuracy"]
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns[:5]) == METRIC_COLUMNS and len(metrics) == 10
    assert (out / "last.pt").is_file() and (out / "config.json").is_file()


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
    result = run_cli(
        "train", "--dataset", "no-such-dataset", "--model", "lenet", "--out", str(tmp_path / "r")
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no-such-dataset" in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--model", "alexnet"], "alexnet"),
        (["--epochs", "0"], "epochs"),
        (["--lr", "-1"], "learning rate"),
        (["--optimizer", "rmsprop"], "rmsprop"),
    ],
)
def test_cli_bad_settings_exit_2_naming_the_setting(tmp_path, capsys, args, culprit):
    argv = ["train", "--dataset", "digits", "--model", "lenet", "--out", str(tmp_path / "run"), *args]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and culprit in err[0].lower()
    assert not (tmp_path / "run").exists()


def test_cli_usage_mistakes_are_one_line_too(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            ["train", "--dataset", "digits", "--model", "lenet", "--epochs", "x", "--out", str(tmp_path)]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0] and err[0].startswith("error: ")


def test_pretrained_frozen_backbone_trains_only_the_head(tmp_path, monkeypatch):
    import torchvision.models as tvm

    from cnndash.models import build_model, pretrained_weights_path

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(5)
    weights = tvm.resnet18(weights=None).state_dict()
    path = pretrained_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(weights, path)
    config = small_config(
        model="resnet18", epochs=1, pretrained=True, transfer="freeze", dataset="shapes:count=45,size=32"
    )
    train(config, tmp_path / "run")
    trained = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    torch.testing.assert_close(trained["model"]["layer1.0.conv1.weight"], weights["layer1.0.conv1.weight"])
    torch.manual_seed(config.seed)  # the trainer's initialisation, to see that the head did train
    initial = build_model("resnet18", num_classes=3, in_channels=3, image_size=32, pretrained=True)
    assert not torch.allclose(trained["model"]["fc.weight"], initial.fc.weight)
    assert trained["mean"] == [0.485, 0.456, 0.406]  # ImageNet statistics for ImageNet weights


def test_training_normalises_with_the_statistics_the_data_page_shows(tmp_path):
    from cnndash.data import compute_mean_std, load_dataset

    summary = train(TrainConfig(dataset="digits", epochs=1), tmp_path / "run")
    info = json.loads((tmp_path / "run" / "dataset.json").read_text())
    digits = load_dataset("digits", val_fraction=TrainConfig.val_fraction, seed=TrainConfig.seed)
    assert (info["mean"], info["std"]) == compute_mean_std(digits.train, size=summary["image_size"])
