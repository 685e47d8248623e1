"""Defaults from the data: what one click (and ``train`` without ``--model``) chooses for digits, small
grayscale faces-like images and 160 px colour photos, and why; the CLI records the choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnndash.cli import main
from cnndash.data import load_dataset
from cnndash.training.auto import choose_settings, profile_data
from cnndash.training.budget import (
    MAX_AUTO_EPOCHS,
    MIN_AUTO_EPOCHS,
    ONE_CLICK_BUDGET_S,
    DataProfile,
    estimate_seconds,
)
from cnndash.training.config import TrainConfig


def _photos(root, classes=2, per_class=6, sides=(150, 160, 170), mode="RGB"):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            side = int(sides[i % len(sides)])
            shape = (side, side, 3) if mode == "RGB" else (side, side)
            pixels = rng.integers(0, 255, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / f"class{c}" / f"{i}.jpg")
    return root


def test_digits_get_lenet_at_its_own_minimum_size_with_reasons():
    choice = choose_settings(load_dataset("digits"), "digits", pretrained_available=False)
    assert (choice.model, choice.image_size, choice.batch_size) == ("lenet", 28, 32)
    assert MIN_AUTO_EPOCHS <= choice.epochs <= MAX_AUTO_EPOCHS and choice.lr == 3e-3
    assert set(choice.reasons) >= {"model", "image_size", "batch_size", "epochs", "lr"}
    assert "grayscale" in choice.reasons["model"] and "8 px" in choice.reasons["image_size"]
    assert choice.estimated_seconds <= ONE_CLICK_BUDGET_S
    assert choice.config.dataset == "digits" and choice.to_dict()["chosen"]["model"] == "lenet"


def test_small_grayscale_faces_keep_their_size_and_small_batches():
    faces = DataProfile(side=48, mixed_sizes=False, channels=1, classes=2, train_images=300, val_images=60)
    choice = choose_settings(faces, "faces", pretrained_available=False)
    # 48 px faces are not squeezed to LeNet's 28 px: the accuracy loss came from exactly that.
    assert (choice.model, choice.image_size, choice.batch_size) == ("lenet", 48, 16)
    assert "own size" in choice.reasons["image_size"] and "16" in choice.reasons["batch_size"]


def test_160px_colour_photos_get_a_size_that_fits_the_budget_and_never_32(tmp_path):
    profile = profile_data(load_dataset(_photos(tmp_path / "photos")))
    assert profile.side == 160 and profile.mixed_sizes and profile.channels == 3
    photos = DataProfile(side=160, mixed_sizes=True, channels=3, classes=3, train_images=240, val_images=60)
    scratch = choose_settings(photos, "photos", pretrained_available=False)
    assert scratch.model == "vgg" and 48 <= scratch.image_size <= 64 and not scratch.pretrained
    assert scratch.lr == 1e-3  # photos: the VGG's gentler peak (benchmark, three seeds)
    assert (
        "no pretrained weights" in scratch.reasons["model"] and "weights import" in scratch.reasons["model"]
    )
    # A bigger budget buys a bigger size, never a smaller one.
    roomy = choose_settings(photos, "photos", budget_s=10 * ONE_CLICK_BUDGET_S, pretrained_available=False)
    assert roomy.image_size >= scratch.image_size
    seconds = estimate_seconds("vgg", scratch.image_size, photos, epochs=scratch.epochs, batch_size=16)
    assert seconds == pytest.approx(scratch.estimated_seconds)
    # Pretrained weights: fine-tuned at 96 px or more (the ImageNet stem), when that fits the budget.
    tuned = choose_settings(photos, "photos", budget_s=10 * ONE_CLICK_BUDGET_S, pretrained_available=True)
    assert tuned.model == "resnet18" and tuned.pretrained and tuned.config.transfer == "lower_lr"
    assert tuned.image_size >= 96 and "head only" in tuned.reasons["transfer"] and tuned.lr == 1e-3
    # The default budget fits fine-tuning at 96 px; half of it does not, and the small VGG is trained instead.
    default = choose_settings(photos, "photos", pretrained_available=True)
    assert default.model == "resnet18" and default.image_size == 96 and default.estimated_seconds <= 60
    tight = choose_settings(photos, "photos", budget_s=ONE_CLICK_BUDGET_S / 2, pretrained_available=True)
    assert tight.model == "vgg" and not tight.pretrained and "does not fit" in tight.reasons["model"]


@pytest.mark.parametrize("budget", [0, -5, float("nan"), True, "60"])
def test_a_budget_that_is_not_positive_seconds_is_refused(budget):
    profile = DataProfile(side=8, mixed_sizes=False, channels=1, classes=10, train_images=100, val_images=20)
    with pytest.raises(ValueError, match="positive number of seconds"):
        choose_settings(profile, "digits", budget_s=budget)


def test_train_without_model_records_what_was_chosen_and_why(tmp_path, capsys):
    out = tmp_path / "run"
    dataset = "shapes:count=60,size=16"
    assert main(["train", "--dataset", dataset, "--out", str(out), "--budget-s", "5", "--epochs", "1"]) == 0
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["model"] == summary["auto"]["chosen"]["model"] and config["epochs"] == 1
    assert summary["auto"]["reasons"]["epochs"] == "set by hand"
    assert summary["auto"]["budget_s"] == 5.0 and "model:" in capsys.readouterr().err
    assert (
        main(["train", "--dataset", dataset, "--model", "lenet", "--budget-s", "5", "--out", str(out)]) == 2
    )


def test_a_pipeline_that_crops_decides_the_size_and_the_epochs_fit_that_crop():
    photos = DataProfile(side=160, mixed_sizes=True, channels=3, classes=3, train_images=240, val_images=60)
    crop = [{"op": "RandomResizedCrop", "size": 32}, {"op": "RandomHorizontalFlip"}]
    base = TrainConfig(dataset="photos", augment=crop)
    choice = choose_settings(photos, "photos", pretrained_available=True, base=base)
    # 32 px is below the ImageNet stem's sizes: no fine-tuning; the size stays automatic (the crop's 32 px).
    assert choice.model == "vgg" and choice.config.image_size is None and not choice.pretrained
    assert "pipeline outputs 32×32 px" in choice.reasons["image_size"]
    at_crop = estimate_seconds("vgg", 32, photos, epochs=choice.epochs, batch_size=choice.batch_size)
    assert choice.estimated_seconds == pytest.approx(at_crop)
    free = choose_settings(photos, "photos", pretrained_available=False)
    assert free.image_size > 32 and choice.epochs > free.epochs  # a smaller crop buys more epochs
    big = choose_settings(photos, "photos", pretrained_available=True,
                          base=TrainConfig(dataset="photos", augment=[{"op": "CenterCrop", "size": 96}]))  # fmt: skip
    assert big.model == "resnet18" and big.pretrained and big.config.image_size is None


def test_small_colour_images_keep_the_small_models_peak_and_photos_get_the_gentler_one():
    shapes = DataProfile(side=32, mixed_sizes=False, channels=3, classes=3, train_images=480, val_images=120)
    small = choose_settings(shapes, "shapes", pretrained_available=False)
    assert (small.model, small.image_size, small.lr) == ("vgg", 32, 3e-3)
    photos = DataProfile(side=120, mixed_sizes=True, channels=3, classes=3, train_images=240, val_images=60)
    large = choose_settings(photos, "photos", pretrained_available=False)
    assert large.model == "vgg" and large.lr == 1e-3 and "three seeds" in large.reasons["lr"]
