"""The Grad-CAM default layer: the last spatial layer whose maps are not flat, with the reason."""

from __future__ import annotations

import pytest

from cnndash.explain import cam
from cnndash.explain.target_layers import CamError, LayerInfo, informative_layer, spread_layers
from cnndash.runs import load_run

LAYERS = [
    LayerInfo("features.0", "Conv2d", (6, 16, 16), 0.0),
    LayerInfo("features.3", "Conv2d", (16, 4, 4), 0.5),
    LayerInfo("features.5", "ReLU", (16, 2, 2), 0.9),
    LayerInfo("features.6", "Conv2d", (16, 1, 1), 1.0),  # a single cell: never the default
]


def test_the_last_spatial_layer_that_is_not_flat():
    tried = []

    def share(name):
        tried.append(name)
        return 1.0 if name == "features.5" else 0.0

    name, why = informative_layer(LAYERS, share)
    assert name == "features.3" and tried == ["features.5", "features.3"]
    assert "not flat" in why and "features.5: 100% flat" in why


def test_the_preferred_layer_first_and_the_fallback():
    assert informative_layer(LAYERS, lambda name: 0.0, preferred="features.0")[0] == "features.0"
    name, why = informative_layer(LAYERS, lambda name: 1.0)
    assert name == cam.suggest_layer(LAYERS) and "mostly flat" in why
    with pytest.raises(CamError):
        informative_layer([], lambda name: 0.0)


def test_on_a_trained_run_the_default_map_is_not_flat(tiny_run):
    from cnndash import data

    run = load_run(tiny_run)
    model = run.load_model("best", device="cpu")
    layers = cam.candidate_layers(model, (run.in_channels, run.image_size, run.image_size))
    imageset = data.load_dataset(run.config["dataset"], val_fraction=run.config["val_fraction"], seed=0)
    batch = run.preprocess([imageset.val[i][0] for i in range(8)])

    def share(name):
        return float(cam.compute_cam_result(model, name, batch, None, "gradcam").flat.mean())

    name, _ = informative_layer(layers, share)
    assert share(name) <= 0.5


def test_a_runs_default_layer_is_informative_layer_on_its_first_validation_images(tiny_run):
    from cnndash import data
    from cnndash.explain.default_layer import run_default_layer
    from cnndash.models import default_cam_layer

    run = load_run(tiny_run)
    model = run.load_model("best", device="cpu")
    layers = cam.candidate_layers(model, (run.in_channels, run.image_size, run.image_size))
    imageset = data.load_dataset(run.config["dataset"], val_fraction=run.config["val_fraction"], seed=0)
    batch = run.preprocess([imageset.val[i][0] for i in range(8)])

    def share(name):
        return float(cam.compute_cam_result(model, name, batch, None, "gradcam").flat.mean())

    assert run_default_layer(run, model, imageset, layers) == informative_layer(
        layers, share, default_cam_layer(run.config["model"])
    )


def test_spread_layers_ends_with_the_last_and_keeps_execution_order():
    names = [f"l{i}" for i in range(10)]
    assert spread_layers(names, 4) == ["l3", "l5", "l7", "l9"]
    assert spread_layers(names[:3], 4) == ["l0", "l1", "l2"]
    assert spread_layers(names[:6], 4) == ["l2", "l3", "l4", "l5"]
    assert spread_layers(names, 1) == ["l9"] and spread_layers([], 4) == []
    with pytest.raises(CamError):
        spread_layers(names, 0)
