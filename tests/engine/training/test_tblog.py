"""TensorBoard event files: TensorBoard's own reader finds the scalars, the samples grid and the hparams."""

from __future__ import annotations

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from cnndash.training.loops import TrainConfig, train


def read_events(run_dir) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_a_run_writes_scalars_samples_graph_and_hparams_tensorboard_can_read(tmp_path):
    config = TrainConfig(
        dataset="shapes:count=90,size=24", model="simplecnn", epochs=2, batch_size=16, lr=1e-3
    )
    summary = train(config, tmp_path / "run")
    events = read_events(tmp_path / "run")
    tags = events.Tags()
    for tag in ("loss/train", "loss/val", "accuracy/train", "accuracy/val", "batch/loss", "batch/lr"):
        assert tag in tags["scalars"], tags["scalars"]
    val_acc = [e.value for e in events.Scalars("accuracy/val")]
    assert len(val_acc) == 2 and max(val_acc) == pytest.approx(summary["val_accuracy"])  # float32 in events
    steps = [e.step for e in events.Scalars("batch/loss")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) % 2 == 0  # every batch of both epochs
    assert "samples/augmented_training_batch" in tags["images"]
    assert events.Graph() is not None
    plugin = events.PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["model"].string_value == "simplecnn" and hparams["lr"].number_value == 1e-3
    assert hparams["world_size"].number_value == 1


def test_tensorboard_can_be_switched_off_and_leaves_training_unchanged(tmp_path):
    on = train(TrainConfig(dataset="digits", epochs=1, seed=3), tmp_path / "on")
    off = train(TrainConfig(dataset="digits", epochs=1, seed=3, tensorboard=False), tmp_path / "off")
    assert not list((tmp_path / "off").glob("events.out.tfevents*"))
    assert list((tmp_path / "on").glob("events.out.tfevents*"))
    a = torch.load(tmp_path / "on" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "off" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # samples and graph do not touch the RNG or the model
    assert on["val_accuracy"] == off["val_accuracy"]
