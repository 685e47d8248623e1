"""eval_mode and everything that runs a model for the user hand it back exactly as it came: each submodule's
own train/eval flag (a frozen BatchNorm stays in eval inside a training model) and requires_grad flags."""

from __future__ import annotations

import torch
from torch import nn

from cnndash.explain.cam import compute_cam
from cnndash.explain.feature_maps import feature_maps
from cnndash.modes import eval_mode
from cnndash.trace import trace_shapes


def mixed_mode_model() -> nn.Module:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3),
    )  # fmt: skip
    model.train()
    model[1].eval()  # a frozen BatchNorm inside a model that trains
    model[0].weight.requires_grad_(False)
    return model


def flags(model: nn.Module) -> tuple[list[bool], list[bool]]:
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


def test_eval_mode_restores_every_submodule_and_parameter():
    model = mixed_mode_model()
    before = flags(model)
    with eval_mode(model, freeze=True):
        assert not any(m.training for m in model.modules())
        assert not any(p.requires_grad for p in model.parameters())
    assert flags(model) == before
    try:
        with eval_mode(model):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert flags(model) == before


def test_trace_cam_and_feature_maps_leave_mixed_modes_as_they_were():
    model = mixed_mode_model()
    before = flags(model)
    x = torch.rand(2, 1, 8, 8)
    running = model[1].running_mean.clone()
    assert trace_shapes(model, (1, 8, 8)).ok
    assert flags(model) == before
    maps = compute_cam(model, "5", x)
    assert maps.shape == (2, 8, 8)
    assert flags(model) == before
    feature_maps(model, "3", x[:1])
    assert flags(model) == before
    # Nothing ran in train mode: the frozen BatchNorm's running statistics did not move.
    assert torch.equal(model[1].running_mean, running)
