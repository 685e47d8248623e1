"""ResNet-18's unstable start, reproduced small: after one short epoch its eval-mode BatchNorm statistics (an
exponential average over 3 batches, from weights that moved since) give a validation loss several times the
training loss; recomputed at the current weights (precise BN) they give one near it — and the trainer does
that before every evaluation."""

from __future__ import annotations

import torch

from cnndash.training.loops import TrainConfig, evaluate, train, train_one_epoch
from cnndash.training.precise_bn import batchnorm_layers, recompute_batchnorm_stats
from cnndash.training.setup import setup

# 48 training images in 3 batches of 16: the running statistics still hold 73 % of their initial values.
CONFIG = dict(
    dataset="shapes:count=60,size=16", model="resnet18", epochs=3, batch_size=16, image_size=16, seed=0,
    tensorboard=False,
)  # fmt: skip


def test_recomputed_statistics_bring_the_validation_loss_back_to_the_training_loss(tmp_path):
    t = setup(TrainConfig(**CONFIG), tmp_path / "run")
    result = train_one_epoch(t, 1)
    ema_loss, _ = evaluate(t)
    assert ema_loss > 3 * result.loss  # the reproduction: a spike from the statistics alone
    rng = torch.get_rng_state()
    used = recompute_batchnorm_stats(t)
    assert used == len(t.data.train)  # the whole (small) split
    assert torch.equal(torch.get_rng_state(), rng)  # the training's augmentation stream is untouched
    assert all(layer.momentum == 0.1 for layer in batchnorm_layers(t.module))  # restored
    precise_loss, _ = evaluate(t)
    assert precise_loss < 1.5 * result.loss


def test_the_trainer_evaluates_with_precise_statistics(tmp_path):
    train(TrainConfig(**CONFIG | {"epochs": 1}), tmp_path / "run")
    row = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1].split(",")
    train_loss, val_loss = float(row[1]), float(row[3])
    assert val_loss < 1.5 * train_loss


def test_a_model_without_batchnorm_is_left_alone(tmp_path):
    t = setup(TrainConfig(**CONFIG | {"model": "lenet"}), tmp_path / "run")
    assert recompute_batchnorm_stats(t) == 0
