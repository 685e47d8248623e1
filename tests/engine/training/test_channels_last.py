"""channels_last where measured faster: CUDA, and the CPU with one torch thread or two; never when turned off."""

from __future__ import annotations

import torch

from cnndash.training.config import TrainConfig
from cnndash.training.setup import setup, use_channels_last

CPU = torch.device("cpu")


def test_nhwc_on_the_cpu_unless_turned_off(tmp_path):
    one = TrainConfig(
        dataset="shapes:count=60,size=16", model="lenet", epochs=1, threads=1, tensorboard=False
    )
    assert use_channels_last(one, CPU)
    assert use_channels_last(TrainConfig(**{**one.to_dict(), "threads": 2}), CPU)
    assert not use_channels_last(one, torch.device("mps"))
    assert not use_channels_last(TrainConfig(**{**one.to_dict(), "channels_last": False}), CPU)
    t = setup(one, tmp_path / "run")
    conv = next(p for p in t.module.parameters() if p.dim() == 4)
    assert t.channels_last and conv.is_contiguous(memory_format=torch.channels_last)
    t2 = setup(TrainConfig(**{**one.to_dict(), "channels_last": False}), tmp_path / "run2")
    assert not t2.channels_last and next(p for p in t2.module.parameters() if p.dim() == 4).is_contiguous()
