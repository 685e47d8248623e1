"""cnndash.explain.cam against the pytorch-grad-cam package (test oracle) and its own promises: hooks, modes, flat maps."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pytorch_grad_cam import GradCAM as OracleGradCAM
from pytorch_grad_cam import GradCAMPlusPlus as OracleGradCAMPlusPlus
from pytorch_grad_cam import LayerCAM as OracleLayerCAM
from pytorch_grad_cam import ScoreCAM as OracleScoreCAM
from pytorch_grad_cam import XGradCAM as OracleXGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from torchvision.models import resnet18

import cnndash.explain.cam
import cnndash.explain.target_layers
from cnndash.explain.cam import CAM_METHODS, CamError, compute_cam, compute_cam_result
from cnndash.explain.target_layers import candidate_layers, layer_advice, suggest_layer

ORACLES = {
    "gradcam": OracleGradCAM,
    "gradcam++": OracleGradCAMPlusPlus,
    "xgradcam": OracleXGradCAM,
    "layercam": OracleLayerCAM,
}


def small_cnn(
    in_channels: int = 3, num_classes: int = 4, inplace: bool = False, padding: int = 1
) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=padding),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(8, 16, 3, padding=padding),
        nn.ReLU(inplace=inplace),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=padding),
        nn.ReLU(inplace=inplace),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )


def oracle_maps(method, model, layer, x, targets=None):
    module = dict(model.named_modules())[layer]
    wrapped = None if targets is None else [ClassifierOutputTarget(t) for t in targets]
    with ORACLES[method](model, [module]) as cam:
        return cam(x, targets=wrapped)


def correlations(a: np.ndarray, b: np.ndarray) -> list[float]:
    return [float(np.corrcoef(p.ravel(), q.ravel())[0, 1]) for p, q in zip(a, b, strict=True)]


def count_hooks(model: nn.Module) -> int:
    total = 0
    for m in model.modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            total += len(getattr(m, attr))
    return total


@pytest.fixture(scope="module")
def trained_cnn() -> nn.Module:
    """A small CNN trained for a few dozen steps to tell where a bright square is (left/right half)."""
    torch.manual_seed(0)
    model = small_cnn(num_classes=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        x = torch.rand(32, 3, 16, 16) * 0.2
        y = torch.randint(0, 2, (32,))
        for i, label in enumerate(y.tolist()):
            col = 2 if label == 0 else 10
            x[i, :, 5:10, col : col + 4] = 1.0
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("method", list(ORACLES))
@pytest.mark.parametrize("layer", ["0", "3", "6"])
def test_matches_oracle_on_random_cnn(method, layer):
    torch.manual_seed(1)
    model = small_cnn().eval()
    x = torch.randn(3, 3, 20, 20)
    ours = compute_cam(model, layer, x, method=method)
    ref = oracle_maps(method, model, layer, x)
    assert ours.shape == (3, 20, 20) and ours.dtype == np.float32
    assert min(correlations(ours, ref)) >= 0.99


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_matches_oracle_on_trained_cnn_with_explicit_targets(method, trained_cnn):
    x = torch.rand(4, 3, 16, 16) * 0.2
    x[:2, :, 5:10, 2:6] = 1.0
    x[2:, :, 5:10, 10:14] = 1.0
    for targets in ([0, 0, 1, 1], [1, 1, 0, 0]):
        ours = compute_cam(trained_cnn, "3", x, target_class=targets, method=method)
        ref = oracle_maps(method, trained_cnn, "3", x, targets)
        assert min(correlations(ours, ref)) >= 0.99


def test_trained_cnn_looks_at_the_square(trained_cnn):
    x = torch.rand(2, 3, 16, 16) * 0.2
    x[0, :, 5:10, 2:6] = 1.0
    x[1, :, 5:10, 10:14] = 1.0
    result = compute_cam_result(trained_cnn, "3", x)
    assert result.predicted == [0, 1]
    left, right = result.maps[:, :, :8].sum(axis=(1, 2)), result.maps[:, :, 8:].sum(axis=(1, 2))
    assert left[0] > right[0] and right[1] > left[1]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("layer", ["layer4", "layer3", "layer2.1.conv1"])
def test_matches_oracle_on_torchvision_resnet18(method, layer):
    torch.manual_seed(2)
    model = resnet18(weights=None, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    ours = compute_cam(model, layer, x, method=method)
    ref = oracle_maps(method, model, layer, x)
    assert min(correlations(ours, ref)) >= 0.99


def test_scorecam_matches_oracle():
    torch.manual_seed(3)
    model = small_cnn().eval()
    x = torch.rand(1, 3, 16, 16)
    ours = compute_cam(model, "6", x, method="scorecam")
    module = dict(model.named_modules())["6"]
    with OracleScoreCAM(model, [module]) as cam:
        ref = cam(x, targets=None)
    assert min(correlations(ours, ref)) >= 0.99


def test_eigencam_is_class_agnostic_and_informative():
    torch.manual_seed(4)
    model = small_cnn().eval()
    x = torch.randn(1, 3, 16, 16)
    a = compute_cam_result(model, "3", x, target_class=0, method="eigencam")
    b = compute_cam_result(model, "3", x, target_class=3, method="eigencam")
    np.testing.assert_allclose(a.maps, b.maps)
    assert not a.flat.any() and a.maps.max() == pytest.approx(1.0)


def test_maps_are_scaled_to_unit_range_at_input_size():
    torch.manual_seed(5)
    model = small_cnn().eval()
    x = torch.randn(2, 3, 24, 18)
    result = compute_cam_result(model, "6", x)
    assert result.maps.shape == (2, 24, 18)
    assert result.raw.shape == (2, 12, 9)
    assert np.all(result.maps >= 0) and np.all(result.maps <= 1)
    np.testing.assert_allclose(result.maps.reshape(2, -1).max(axis=1), 1.0)
    np.testing.assert_allclose(result.maps.reshape(2, -1).min(axis=1), 0.0)
    assert result.target_class == result.predicted
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_target_class_changes_the_map_and_is_validated(trained_cnn):
    x = torch.rand(1, 3, 16, 16)
    a = compute_cam_result(trained_cnn, "3", x, target_class=0)
    b = compute_cam_result(trained_cnn, "3", x, target_class=[1])
    assert a.target_class == [0] and b.target_class == [1]
    assert not np.allclose(a.raw, b.raw)
    with pytest.raises(CamError, match="2 classes"):
        compute_cam(trained_cnn, "3", x, target_class=2)
    with pytest.raises(CamError, match="one per image"):
        compute_cam(trained_cnn, "3", x, target_class=[0, 1])


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_no_hooks_left_and_modes_and_flags_restored(method):
    model = small_cnn()
    model.train()
    model[0].weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    compute_cam(model, "3", torch.randn(2, 3, 12, 12), method=method)
    assert count_hooks(model) == 0
    assert model.training and all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_no_hooks_and_no_memory_growth_after_100_calls():
    torch.manual_seed(6)
    model = small_cnn().eval()
    x = torch.randn(2, 3, 16, 16)
    for _ in range(3):  # warm-up: allocator and lazy initialisation
        compute_cam_result(model, "3", x, method="gradcam++")
    gc.collect()
    tensors_before = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())
    for i in range(100):
        compute_cam(model, "3", x, method="gradcam" if i % 2 else "gradcam++")
    gc.collect()
    tensors_after = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())
    assert count_hooks(model) == 0
    assert tensors_after <= tensors_before


def test_errors_inside_the_forward_pass_leave_no_hooks():
    model = small_cnn(in_channels=3)
    model.train()
    with pytest.raises(CamError, match="shape"):
        compute_cam(model, "3", torch.randn(1, 1, 16, 16))
    assert count_hooks(model) == 0 and model.training


def test_inplace_relu_gives_the_same_maps_as_out_of_place():
    torch.manual_seed(7)
    plain = small_cnn(inplace=False).eval()
    inplace = small_cnn(inplace=True).eval()
    inplace.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 16)
    for method in ("gradcam", "gradcam++", "layercam"):
        for layer in ("0", "3", "6"):  # each conv is followed by an in-place ReLU (after BN for "0")
            a = compute_cam_result(plain, layer, x, method=method)
            b = compute_cam_result(inplace, layer, x, method=method)
            np.testing.assert_allclose(a.raw, b.raw, rtol=1e-5, atol=1e-6)
            # the activation captured is the conv output, i.e. it can be negative
    assert count_hooks(inplace) == 0


def test_grayscale_model():
    torch.manual_seed(8)
    model = small_cnn(in_channels=1).eval()
    x = torch.randn(3, 1, 16, 16)
    for method in ("gradcam", "gradcam++"):
        ours = compute_cam(model, "3", x, method=method)
        assert ours.shape == (3, 16, 16)
        assert min(correlations(ours, oracle_maps(method, model, "3", x))) >= 0.99


def test_constant_input_gives_flagged_flat_map_without_nan():
    torch.manual_seed(9)
    model = small_cnn(padding=0).eval()  # no padding: a constant image gives constant feature maps
    x = torch.full((2, 3, 16, 16), 0.5)
    for method in CAM_METHODS:
        # the last conv: its gradient arrives through a global average pool, so it is uniform too
        # (behind a max-pool, tie-breaking would route the gradient to arbitrary cells)
        result = compute_cam_result(model, "6", x, method=method)
        assert result.flat.all(), method
        assert np.isfinite(result.maps).all() and np.isfinite(result.raw).all()
        assert not result.maps.any()
        assert result.notes and "flat" in result.notes[0]


def test_single_cell_layer_is_flat_and_explained():
    model = resnet18(weights=None, num_classes=3).eval()
    result = compute_cam_result(model, "layer4", torch.randn(1, 3, 32, 32))
    assert result.raw.shape == (1, 1, 1) and result.flat.all()
    assert "single cell" in result.notes[0]


def test_zero_gradient_map_is_flat_not_nan():
    model = small_cnn().eval()
    with torch.no_grad():
        model[-1].weight.zero_()  # the class score no longer depends on any feature
    result = compute_cam_result(model, "6", torch.randn(1, 3, 16, 16))
    assert result.flat.all() and not np.isnan(result.maps).any() and not result.maps.any()


def test_only_layers_after_the_target_are_differentiated():
    calls = []

    class Spy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            calls.append(1)
            return grad

    class SpyLayer(nn.Module):
        def forward(self, x):
            return Spy.apply(x)

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), SpyLayer(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2)
    )
    model(torch.randn(1, 3, 8, 8))  # materialise the lazy layer
    x = torch.randn(1, 3, 8, 8)
    compute_cam(model, "2", x)
    assert calls == []  # nothing before the target layer was differentiated
    assert all(p.grad is None for p in model.parameters())


def test_module_object_and_name_resolution_and_errors():
    model = small_cnn().eval()
    x = torch.randn(1, 3, 16, 16)
    np.testing.assert_allclose(compute_cam(model, model[3], x), compute_cam(model, "3", x))
    with pytest.raises(CamError, match="not a module"):
        compute_cam(model, "features.9", x)
    with pytest.raises(CamError, match="not part of"):
        compute_cam(model, nn.Conv2d(3, 3, 1), x)
    with pytest.raises(CamError, match="Unknown CAM method"):
        compute_cam(model, "3", x, method="magic")
    with pytest.raises(CamError, match="N, C, H, W"):
        compute_cam(model, "3", x[0])
    with pytest.raises(CamError, match="feature map"):
        compute_cam(model, "10", x)  # the Linear layer
    assert issubclass(CamError, ValueError)
    assert count_hooks(model) == 0


def test_method_name_aliases():
    model = small_cnn().eval()
    x = torch.randn(1, 3, 16, 16)
    a = compute_cam(model, "3", x, method="Grad-CAM++")
    b = compute_cam(model, "3", x, method="gradcam++")
    np.testing.assert_allclose(a, b)


def test_candidate_layers_and_default_for_resnet18():
    model = resnet18(weights=None).eval()
    layers = candidate_layers(model, (3, 64, 64))
    by_name = {info.name: info for info in layers}
    assert by_name["layer4"].output_shape == (512, 2, 2)
    assert by_name["conv1"].output_shape == (64, 32, 32)
    assert "fc" not in by_name and "bn1" not in by_name
    assert by_name["relu"].output_shape == (64, 32, 32)  # the stem's ReLU runs once: a candidate
    assert "layer1.0.relu" not in by_name  # a block's ReLU runs twice per pass: its map is ambiguous
    with pytest.raises(CamError, match="runs 2 times"):
        compute_cam(model, "layer1.0.relu", torch.randn(1, 3, 64, 64))
    assert suggest_layer(layers) == "layer4"
    assert "Late layer" in layer_advice(by_name["layer4"], (64, 64))
    assert "Early layer" in layer_advice(by_name["conv1"], (64, 64))
    # at 32 px layer4 is 1x1, so the default moves to the last layer with a real map
    small = candidate_layers(model, (3, 32, 32))
    assert suggest_layer(small) == "layer3"
    assert "single cell" in layer_advice({i.name: i for i in small}["layer4"], (32, 32))
    assert count_hooks(model) == 0


def test_layer_choice_stays_importable_from_cnndash_cam():
    # The Grad-CAM page imports these from cnndash.explain.cam; they live in cnndash.explain.target_layers.
    for name in (
        "CamError",
        "LayerInfo",
        "candidate_layers",
        "layer_advice",
        "resolve_layer",
        "suggest_layer",
    ):
        assert getattr(cnndash.explain.cam, name) is getattr(cnndash.explain.target_layers, name)


def test_concurrent_cams_on_one_shared_model_do_not_mix():
    """The page caches one model per run for all sessions: two threads computing CAMs at once must each
    get their own map."""
    import threading

    torch.manual_seed(10)
    model = resnet18(weights=None, num_classes=4).eval()
    inputs = [torch.randn(1, 3, 64, 64) for _ in range(2)]
    expected = [compute_cam(model, "layer3", x) for x in inputs]
    errors: list[BaseException] = []
    outputs: dict[int, list[np.ndarray]] = {0: [], 1: []}

    def work(i: int) -> None:
        try:
            for _ in range(8):
                outputs[i].append(compute_cam(model, "layer3", inputs[i]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(2):
        for out in outputs[i]:
            np.testing.assert_allclose(out, expected[i], rtol=1e-4, atol=1e-5)
    assert count_hooks(model) == 0


def test_works_when_called_inside_inference_mode():
    torch.manual_seed(11)
    model = small_cnn().eval()
    x = torch.randn(1, 3, 16, 16)
    expected = compute_cam(model, "3", x)
    with torch.inference_mode():
        inference_x = x.clone()
        np.testing.assert_allclose(compute_cam(model, "3", inference_x), expected, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(compute_cam(model, "3", x), expected, rtol=1e-5, atol=1e-6)
    assert torch.is_grad_enabled()


@settings(max_examples=15, deadline=None)
@given(
    method=st.sampled_from(["gradcam", "gradcam++", "xgradcam", "layercam", "eigencam"]),
    layer=st.sampled_from(["0", "3", "6"]),
    channels=st.sampled_from([1, 3]),
    height=st.integers(6, 20),
    width=st.integers(6, 20),
    scale=st.sampled_from([0.0, 1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_any_input_gives_unit_range_maps_or_a_flagged_flat_map(
    method, layer, channels, height, width, scale, seed
):
    torch.manual_seed(seed)
    model = small_cnn(in_channels=channels).eval()
    x = torch.randn(2, channels, height, width) * scale
    result = compute_cam_result(model, layer, x, method=method)
    assert result.maps.shape == (2, height, width)
    assert np.isfinite(result.maps).all() and np.isfinite(result.raw).all()
    for cam_map, flat in zip(result.maps, result.flat, strict=True):
        if flat:
            assert not cam_map.any()
        else:
            assert cam_map.min() == pytest.approx(0.0, abs=1e-6)
            assert cam_map.max() == pytest.approx(1.0, abs=1e-6)
    assert count_hooks(model) == 0


@pytest.mark.parametrize("model_name", ["lenet", "simplecnn", "vgg", "resnet18", "mobilenet_v2"])
def test_default_layer_works_for_every_built_in_model(model_name):
    from cnndash.models import build_model, default_cam_layer, default_image_size

    size = default_image_size(model_name, None)
    model = build_model(model_name, num_classes=3, in_channels=3, image_size=size).eval()
    layers = {info.name: info for info in candidate_layers(model, (3, size, size))}
    default = default_cam_layer(model_name)
    assert default in layers
    assert layers[default].cells >= 4, (
        f"{model_name}: {default} is {layers[default].output_shape} at {size}px"
    )
    torch.manual_seed(12)
    result = compute_cam_result(model, default, torch.randn(2, 3, size, size))
    assert result.maps.shape == (2, size, size)
    assert np.isfinite(result.maps).all()
    assert count_hooks(model) == 0
