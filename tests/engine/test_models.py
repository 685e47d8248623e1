"""Model factory: every model adapts to channels, classes and input size; pretrained is offline-only."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnndash.models import (
    MODEL_NAMES,
    ModelError,
    build_model,
    default_cam_layer,
    default_image_size,
    parameter_groups,
    pretrained_weights_path,
)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32), (3, 72)])
def test_models_adapt_to_channels_classes_and_size(name, channels, size):
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, in_channels=channels, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_default_cam_layer_is_a_spatial_feature_map(name):
    model = build_model(name, num_classes=3, in_channels=3, image_size=32).eval()
    layer = dict(model.named_modules())[default_cam_layer(name)]
    captured = {}
    handle = layer.register_forward_hook(lambda m, i, o: captured.setdefault("out", o))
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    handle.remove()
    assert captured["out"].ndim == 4 and captured["out"].shape[-1] >= 1


def test_resnet_stem_depends_on_input_size():
    small = build_model("resnet18", num_classes=10, in_channels=3, image_size=32)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert isinstance(small.maxpool, nn.Identity)
    large = build_model("resnet18", num_classes=10, in_channels=1, image_size=96)
    assert large.conv1.kernel_size == (7, 7) and large.conv1.stride == (2, 2) and large.conv1.in_channels == 1


def test_too_small_input_and_bad_arguments_are_model_errors():
    with pytest.raises(ModelError, match="at least 12"):
        build_model("lenet", num_classes=10, in_channels=1, image_size=8)
    with pytest.raises(ModelError, match="Unknown model"):
        build_model("alexnet", num_classes=10, in_channels=1, image_size=28)
    with pytest.raises(ModelError, match="2 classes"):
        build_model("lenet", num_classes=1, in_channels=1, image_size=28)
    with pytest.raises(ModelError, match="no pretrained"):
        build_model("lenet", num_classes=3, in_channels=1, image_size=28, pretrained=True)


def test_default_image_size_upsamples_small_data_and_caps_large():
    assert default_image_size("lenet", (8, 8)) == 28
    assert default_image_size("vgg", (32, 32)) == 32
    assert default_image_size("lenet", (500, 300)) == 64
    assert default_image_size("resnet18", None) == 32


def test_pretrained_without_cached_weights_is_a_clear_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelError, match=r"(?s)not in the local torch cache.*offline"):
        build_model("resnet18", num_classes=3, in_channels=3, image_size=96, pretrained=True)


def test_pretrained_loads_cached_weights(tmp_path, monkeypatch):
    import torchvision.models as tvm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(3)
    reference = tvm.resnet18(weights=None)
    path = pretrained_weights_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    model = build_model("resnet18", num_classes=4, in_channels=1, image_size=96, pretrained=True)
    torch.testing.assert_close(model.layer1[0].conv1.weight, reference.layer1[0].conv1.weight)
    # One-channel stem: the RGB kernels averaged.
    torch.testing.assert_close(model.conv1.weight, reference.conv1.weight.mean(dim=1, keepdim=True))
    assert model.fc.out_features == 4


def test_transfer_modes():
    model = build_model("resnet18", num_classes=3, in_channels=3, image_size=32)
    (group,) = parameter_groups(model, "resnet18", lr=0.1, transfer="all")
    assert len(group["params"]) == len(list(model.parameters()))

    backbone, head = parameter_groups(model, "resnet18", lr=0.1, transfer="lower_lr", backbone_lr_factor=0.1)
    assert backbone["lr"] == pytest.approx(0.01) and head["lr"] == 0.1
    assert {id(p) for p in head["params"]} == {id(p) for p in model.fc.parameters()}

    frozen = build_model("vgg", num_classes=3, in_channels=3, image_size=32)
    (group,) = parameter_groups(frozen, "vgg", lr=0.1, transfer="freeze")
    assert {id(p) for p in group["params"]} == {id(p) for p in frozen.classifier.parameters()}
    assert not any(p.requires_grad for p in frozen.features.parameters())
    before = frozen.features[0].weight.clone()
    optimizer = torch.optim.SGD(group["params"], lr=0.1)
    frozen(torch.randn(4, 3, 32, 32)).sum().backward()
    optimizer.step()
    assert torch.equal(before, frozen.features[0].weight)
    with pytest.raises(ModelError, match="transfer mode"):
        parameter_groups(frozen, "vgg", lr=0.1, transfer="half")
