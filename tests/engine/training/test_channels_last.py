"""channels_last only where measured faster: on the CPU with one torch thread, not with two."""

from __future__ import annotations

import torch

from cnndash.training.config import TrainConfig
from cnndash.training.setup import setup, use_channels_last

CPU = torch.device("cpu")


def test_nhwc_on_one_cpu_thread_only(tmp_path):
    one = TrainConfig(
        dataset="shapes:count=60,size=16", model="lenet", epochs=1, threads=1, tensorboard=False
    )
    assert use_channels_last(one, CPU)
    assert not use_channels_last(TrainConfig(**{**one.to_dict(), "threads": 2}), CPU)
    assert not use_channels_last(TrainConfig(**{**one.to_dict(), "channels_last": False}), CPU)
    t = setup(one, tmp_path / "run")
    conv = next(p for p in t.module.parameters() if p.dim() == 4)
    assert t.channels_last and conv.is_contiguous(memory_format=torch.channels_last)
    t2 = setup(TrainConfig(**{**one.to_dict(), "threads": 2}), tmp_path / "run2")
    assert not t2.channels_last
