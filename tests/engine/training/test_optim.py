"""Every learning-rate schedule steps through any run of at least one step: a property test over the
dataset size, batch, epochs, warm-up and schedule, and the 48-image dataset that used to crash one-cycle."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnndash.cli import main as cli_main
from cnndash.training.batches import global_batch_sizes
from cnndash.training.optim import OPTIMIZERS, SCHEDULES, make_optimizer, make_scheduler


@settings(max_examples=300, deadline=None)
@given(
    images=st.integers(1, 400),
    batch=st.integers(1, 128),
    epochs=st.integers(1, 12),
    schedule=st.sampled_from(SCHEDULES),
    optimizer=st.sampled_from(OPTIMIZERS),
    warmup_share=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]),
)
# One-cycle's warm-up ending exactly at step 0 (25 % of 4 steps, 10 % of 10) divided by zero.
@example(images=38, batch=32, epochs=2, schedule="onecycle", optimizer="adam", warmup_share=0.0)
@example(images=4, batch=1, epochs=1, schedule="onecycle", optimizer="sgd", warmup_share=0.0)
@example(images=10, batch=10, epochs=10, schedule="onecycle", optimizer="adamw", warmup_share=0.1)
def test_every_schedule_steps_through_any_run(images, batch, epochs, schedule, optimizer, warmup_share):
    steps_per_epoch = len(global_batch_sizes(images, batch))
    peak = 3e-3
    weight = torch.nn.Parameter(torch.zeros(3))
    opt = make_optimizer(
        optimizer,
        [{"params": [weight]}],
        lr=peak,
        weight_decay=0.0,
        momentum=0.9,
        device=torch.device("meta"),
    )
    sched = make_scheduler(
        opt,
        schedule=schedule,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        warmup_epochs=warmup_share * epochs,
    )
    for _ in range(epochs * steps_per_epoch):  # the trainer steps the schedule after every batch
        lr = opt.param_groups[0]["lr"]
        assert math.isfinite(lr) and 0 <= lr <= peak * (1 + 1e-9)
        opt.step()
        sched.step()


def test_forty_eight_images_train_for_two_epochs(tmp_path, capsys):
    """The report: 48 images of 2 classes, `train --model lenet --epochs 2` ended in a ZeroDivisionError inside
    one-cycle (38 training images at batch 32 = 2 steps per epoch, a warm-up of exactly one step)."""
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(24):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    args = ["train", "--dataset", str(tmp_path / "data"), "--model", "lenet", "--no-tensorboard"]
    status = cli_main([*args, "--epochs", "2", "--out", str(tmp_path / "run")])
    assert status == 0, capsys.readouterr().err
