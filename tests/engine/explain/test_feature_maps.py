"""Feature maps, filters and the pointing game (cnndash.explain.feature_maps); the pictures are in test_plots_cam.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnndash.explain.feature_maps import (
    FeatureError,
    evaluate_faithfulness,
    feature_maps,
    filter_images,
    first_conv,
    pointing_game,
    resize_masks,
    run_faithfulness,
    strongest_channels,
)
from cnndash.models import build_model


def count_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_feature_maps_are_the_layer_output():
    torch.manual_seed(0)
    model = build_model("lenet", num_classes=3, in_channels=3, image_size=32)
    model.train()
    x = torch.randn(3, 32, 32)
    maps = feature_maps(model, "features.0", x)
    assert maps.shape == (6, 32, 32)
    with torch.no_grad():
        expected = model.features[0](x[None])[0].numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert maps.min() < 0  # the conv output, before the ReLU
    assert count_hooks(model) == 0 and model.training


def test_feature_maps_are_not_changed_by_a_following_inplace_relu():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(1, 1, 8, 8)
    model(x)
    maps = feature_maps(model, "0", x)
    assert maps.min() < 0


def test_feature_maps_errors():
    model = build_model("lenet", num_classes=3, in_channels=1, image_size=28)
    with pytest.raises(FeatureError, match="one image"):
        feature_maps(model, "features.0", torch.randn(2, 1, 28, 28))
    with pytest.raises(FeatureError, match="not feature maps"):
        feature_maps(model, "classifier.1", torch.randn(1, 28, 28))
    with pytest.raises(ValueError, match="not a module"):
        feature_maps(model, "nope", torch.randn(1, 28, 28))


def test_strongest_channels():
    maps = np.zeros((4, 2, 2), dtype=np.float32)
    maps[2] = 5
    maps[0] = 1
    maps[3] = -1
    assert strongest_channels(maps, 3) == [2, 0, 1]


@pytest.mark.parametrize(("channels", "last"), [(3, 3), (1, 1)])
def test_filter_images(channels, last):
    model = build_model("lenet", num_classes=3, in_channels=channels, image_size=32)
    name, conv = first_conv(model)
    assert conv.in_channels == channels
    assert name == "features.0"
    filters = filter_images(model)
    assert filters.shape == (6, 5, 5, last)
    assert filters.min() == pytest.approx(0.0) and filters.max() == pytest.approx(1.0)
    flat = filters.reshape(6, -1)
    np.testing.assert_allclose(flat.min(axis=1), 0, atol=1e-6)
    np.testing.assert_allclose(flat.max(axis=1), 1, atol=1e-6)
    with pytest.raises(FeatureError, match="no Conv2d"):
        first_conv(nn.Linear(2, 2))


def test_pointing_game_by_hand():
    masks = np.zeros((3, 4, 4), dtype=bool)
    masks[:, :2, :2] = True  # object in the top-left quarter
    maps = np.zeros((3, 4, 4), dtype=np.float32)
    maps[0, 0, 0] = 1.0  # peak inside, all energy inside
    maps[1, 3, 3] = 1.0  # peak outside
    maps[1, 0, 0] = 0.5  # a third of the energy inside
    # maps[2] stays all zero: flat
    hits, energy = pointing_game(maps, masks)
    assert hits.tolist() == [True, False, False]
    np.testing.assert_allclose(energy, [1.0, 1 / 3, 0.25])  # flat: a uniform map's share
    hits, _ = pointing_game(maps, masks, flat=np.array([True, False, False]))
    assert hits.tolist() == [False, False, False]
    with pytest.raises(FeatureError, match="same shape"):
        pointing_game(maps, masks[:, :2])


def test_resize_masks():
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, :4, :4] = True
    small = resize_masks(masks, 4)
    assert small.shape == (1, 4, 4) and small.dtype == bool
    assert small[0, :2, :2].all() and not small[0, 2:, :].any()


def test_evaluate_faithfulness_on_a_model_that_looks_at_the_object():
    """A hand-made model whose class-0 score is the brightness of the image: Grad-CAM points at the
    bright object, so the pointing game is perfect."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
        model[3].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[3].bias.zero_()
    images = torch.zeros(4, 1, 8, 8)
    masks = np.zeros((4, 8, 8), dtype=bool)
    for i, (r, c) in enumerate([(0, 0), (4, 4), (0, 5), (5, 1)]):
        images[i, 0, r : r + 3, c : c + 3] = 1.0
        masks[i, r : r + 3, c : c + 3] = True
    result = evaluate_faithfulness(model, images, masks, [0, 0, 0, 0], "0", batch_size=3)
    assert result.pointing_accuracy == 1.0 and result.n_images == 4
    assert result.energy_share == pytest.approx(1.0)
    assert result.chance == pytest.approx(9 / 64)
    assert result.lift == pytest.approx(64 / 9)
    with pytest.raises(FeatureError, match="do not match"):
        evaluate_faithfulness(model, images, masks[:, :4, :4], [0] * 4, "0")


def test_lenet_trained_on_shapes_points_at_the_object_well_above_chance(tmp_path):
    """The issue's faithfulness check: a LeNet trained briefly on `shapes` (600 images, 32 px, 10 epochs)."""
    from cnndash.runs import load_run
    from cnndash.training.loops import TrainConfig, train

    config = TrainConfig(
        dataset="shapes:count=600,size=32",
        model="lenet",
        epochs=10,
        batch_size=16,
        image_size=32,
        device="cpu",
    )
    train(config, tmp_path / "lenet-shapes")
    run = load_run(tmp_path / "lenet-shapes")
    result = run_faithfulness(run, method="gradcam", layer="features.0")
    assert result.n_images == 120
    assert 0.1 < result.chance < 0.35  # objects cover a fifth of the image on average
    assert result.pointing_accuracy >= 2 * result.chance
    assert result.energy_share > 1.5 * result.chance
    assert np.isfinite(result.energy).all()


def test_run_faithfulness_needs_masks(tiny_run, monkeypatch):
    from cnndash.runs import load_run

    run = load_run(tiny_run)
    dataset = run.dataset()
    dataset.val.masks = None  # as for any dataset other than shapes
    monkeypatch.setattr(type(run), "dataset", lambda self: dataset)
    with pytest.raises(FeatureError, match="shapes"):
        run_faithfulness(run)
