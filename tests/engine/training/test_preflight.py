"""What a run will see before it starts: image size, model suggestion, blocking errors, warnings, batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnndash import data
from cnndash.models import auto_image_size, default_image_size, pipeline_output_size, suggest_model
from cnndash.training.batches import shard_batches
from cnndash.training.config import ConfigError
from cnndash.training.loops import TrainConfig
from cnndash.training.preflight import (
    SUGGESTED_LR,
    accuracy_error_bar,
    default_mean_std,
    preflight,
    preview_batch,
    process_share,
    suggested_lr,
)

CROP64 = [
    {"op": "RandomResizedCrop", "size": [64, 64], "scale": [0.5, 1.0]},
    {"op": "RandomHorizontalFlip", "p": 0.5},
]


def test_pipeline_output_size():
    assert pipeline_output_size([]) is None
    assert pipeline_output_size(CROP64) == 64
    assert pipeline_output_size([{"op": "Resize", "size": 40}]) is None  # shorter side only
    assert pipeline_output_size([{"op": "Resize", "size": [80, 80]}, {"op": "CenterCrop", "size": 48}]) == 48


def test_auto_size_follows_the_pipeline_then_the_dataset():
    assert auto_image_size("lenet", None, CROP64)[0] == 64  # not LeNet's 28 for mixed-size photos
    assert "pipeline" in auto_image_size("lenet", None, CROP64)[1]
    side, why = auto_image_size("lenet", None, [])
    assert side == 28 and "mixed sizes" in why
    assert auto_image_size("lenet", (8, 8), [])[0] == 28
    assert auto_image_size("lenet", (8, 8), [{"op": "CenterCrop", "size": 6}])[0] == 12


def test_training_uses_the_pipeline_size(tmp_path):
    """The engine trains at the size the page announces."""
    from cnndash.training.loops import train

    config = TrainConfig(dataset="shapes:count=60,size=32", model="lenet", epochs=1, batch_size=16)
    config.augment = [{"op": "RandomResizedCrop", "size": [40, 40], "scale": [0.8, 1.0]}]
    train(config, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "dataset.json").read_text())["image_size"] == 40


def test_suggest_model():
    assert suggest_model((8, 8), 1, 1797)[0] == "lenet"
    assert suggest_model((96, 128), 3, 300)[0] == "resnet18"
    assert suggest_model(None, 3, 300)[0] == "resnet18"
    assert suggest_model((32, 32), 3, 300)[0] == "vgg"


def test_preflight_blocks_and_warns():
    imageset = data.load_dataset("shapes:count=90,size=32")
    ok = preflight(TrainConfig(dataset="x", model="lenet", batch_size=16), imageset)
    assert ok.ok and ok.image_size == 32 and ok.channels in (1, 3) and ok.size_is_auto
    big = preflight(TrainConfig(dataset="x", model="lenet", batch_size=4096), imageset)
    assert big.ok and any("Batch size 4096" in w for w in big.warnings)
    assert any("validation images" in w and "±" in w for w in big.warnings)  # 18 val images
    hot = preflight(TrainConfig(dataset="x", lr=5.0), imageset)
    assert any("very high" in w for w in hot.warnings)
    small = preflight(TrainConfig(dataset="x", model="lenet", image_size=8), imageset)
    assert not small.ok and "at least 12" in small.error
    bad = preflight(TrainConfig(dataset="x", epochs=0), imageset)
    assert not bad.ok and "epochs" in bad.error.lower()
    crop = TrainConfig(dataset="x", model="lenet", image_size=28, augment=CROP64)
    over = preflight(crop, imageset)
    assert any("overrides the pipeline" in w for w in over.warnings) and over.image_size == 28


def test_accuracy_error_bar():
    assert accuracy_error_bar(40) == pytest.approx(0.155, abs=0.001)
    assert accuracy_error_bar(10_000) < 0.01


def test_preview_batch_is_what_the_model_sees():
    imageset = data.load_dataset("shapes:count=30,size=32")
    plain = preview_batch(imageset, [], 32, count=8)
    assert len(plain) == 8 and plain[0].shape == (32, 32, imageset.channels) and plain[0].dtype == np.uint8
    spec = [
        *CROP64,
        {"op": "ToDtype", "dtype": "float32", "scale": True},
        {"op": "Normalize", "mean": [0.5] * imageset.channels, "std": [0.2] * imageset.channels},
    ]
    augmented = preview_batch(imageset, spec, 48, count=4, seed=1)
    assert augmented[0].shape == (48, 48, imageset.channels)
    assert preview_batch(imageset, spec, 48, count=4, seed=1)[0].tobytes() == augmented[0].tobytes()


@pytest.mark.parametrize(("batch_size", "processes"), [(32, 2), (32, 3), (7, 4), (5, 5)])
def test_process_share_is_how_the_trainer_splits_a_batch(batch_size, processes):
    share = process_share(TrainConfig(dataset="x", batch_size=batch_size), processes)
    batch = [torch.arange(batch_size)]
    sizes = [len(shard_batches(batch, (rank, processes))[0]) for rank in range(processes)]
    assert sizes == [share.per_process + 1] * share.extra + [share.per_process] * (processes - share.extra)


def test_process_share_scales_the_lr_only_when_asked():
    plain = process_share(TrainConfig(dataset="x", lr=0.01), 4)
    assert plain.lr == pytest.approx(0.01) and not plain.lr_scaled
    scaled = process_share(TrainConfig(dataset="x", lr=0.01, scale_lr=True), 4)
    assert scaled.lr == pytest.approx(0.04) and scaled.lr_scaled
    with pytest.raises(ConfigError, match="at least 1"):
        process_share(TrainConfig(dataset="x"), 0)


def test_suggested_lr_for_every_optimizer():
    from cnndash.training.optim import OPTIMIZERS

    assert set(SUGGESTED_LR) == set(OPTIMIZERS)
    assert suggested_lr("adam") == TrainConfig.lr and suggested_lr("sgd") == pytest.approx(0.05)
    for name in OPTIMIZERS:  # every suggestion passes the preflight's own LR check
        config = TrainConfig(dataset="x", optimizer=name, lr=suggested_lr(name))
        assert not any("Learning rate" in w for w in preflight(config, data.load_dataset("digits")).warnings)
    with pytest.raises(ConfigError, match="rmsprop"):
        suggested_lr("rmsprop")


def test_default_mean_std_is_measured_at_the_default_models_size():
    digits = data.load_dataset("digits")
    size = default_image_size(TrainConfig.model, digits.image_size)
    assert size != 8  # the 8×8 digits are measured upsampled, as training sees them
    mean, std = default_mean_std(digits)
    assert len(mean) == len(std) == 1
    assert (mean, std) == data.compute_mean_std(digits.train, channels=1, size=size)
