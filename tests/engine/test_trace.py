"""trace_shapes on real models: rows, totals vs torchinfo and numel, diagnoses, and no side effects."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchinfo import summary

from cnndash.arith import ShapeError
from cnndash.trace import trace_shapes

torch.set_num_threads(1)


def lenet(in_features: int = 400, in_channels: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(in_features, 120),
        nn.ReLU(),
        nn.Linear(120, 10),
    )


class TwoBranch(nn.Module):
    """A model with nesting, a functional op and a residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.branch = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(self.branch(x) + x)
        return self.head(x.mean((2, 3)))


def test_rows_follow_execution_with_shapes_params_and_macs():
    model = lenet()
    trace = trace_shapes(model, (3, 32, 32))
    assert trace.ok and trace.failed_layer is None and trace.diagnosis is None
    assert [row.name for row in trace.rows] == [str(i) for i in range(10)]
    assert [row.kind for row in trace.rows][:3] == ["Conv2d", "ReLU", "MaxPool2d"]
    assert trace.rows[0].output_shape == (1, 6, 28, 28)
    assert trace.rows[5].output_shape == (1, 16, 5, 5)
    assert trace.rows[6]["output_shape"] == (1, 400)
    assert trace.output_shape == (1, 10)
    assert trace.rows[0].params == 6 * 3 * 25 + 6
    assert trace.total_params == sum(p.numel() for p in model.parameters())
    info = summary(model, input_size=(1, 3, 32, 32), verbose=0)
    assert trace.total_macs == info.total_mult_adds
    assert [row.macs for row in trace.rows if row.macs] == [
        layer.macs for layer in info.summary_list if layer.is_leaf_layer and layer.macs
    ]


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (TwoBranch, (2, 1, 9, 7)),
        (lambda: nn.Sequential(nn.Conv2d(1, 2, (3, 2)), nn.ConvTranspose2d(2, 2, 3, 2, groups=2)), (1, 6, 5)),
    ],
)
def test_totals_match_torchinfo_on_nested_model_with_batch(build, shape):
    model = build()
    full = shape if len(shape) == 4 else (1, *shape)
    trace = trace_shapes(model, shape)
    assert trace.ok
    info = summary(model, input_size=full, verbose=0)
    assert trace.total_macs == info.total_mult_adds
    assert trace.total_params == info.total_params == sum(p.numel() for p in model.parameters())
    assert trace.rows[0].input_shape == full


def test_torchvision_resnet18_totals_and_receptive_field():
    import torchvision

    model = torchvision.models.resnet18(num_classes=10)
    trace = trace_shapes(model, (3, 64, 64))
    assert trace.ok and trace.output_shape == (1, 10)
    assert trace.total_macs == summary(model, input_size=(1, 3, 64, 64), verbose=0).total_mult_adds
    fields = {row.name: row.receptive_field for row in trace.rows}
    assert fields["conv1"] == (7, 7)
    assert fields["maxpool"] == (11, 11)
    assert fields["layer4.1.conv2"] == (435, 435)  # ResNet-18's well-known receptive field
    assert fields["fc"] is None


def test_no_hooks_left_mode_restored_and_no_grad():
    model = TwoBranch()
    model.train()
    model.stem.eval()
    running = model.stem[1].running_mean.clone()
    trace_shapes(model, (1, 8, 8))
    trace_shapes(model, (3, 8, 8))  # fails: in_channels
    assert model.training and not model.stem.training and model.branch.training
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert torch.equal(model.stem[1].running_mean, running)  # eval mode: statistics untouched


def test_linear_in_features_diagnosis_with_fix_and_input_size():
    trace = trace_shapes(lenet(), (3, 28, 28))
    assert not trace.ok
    assert trace.failed_layer == "7"
    assert [row.name for row in trace.rows] == [str(i) for i in range(7)]
    text = trace.diagnosis
    assert "expects 400 input features" in text
    assert "16×4×4 = 256" in text
    assert "in_features=256" in text
    assert "32×32" in text


def test_conv_in_channels_diagnosis():
    trace = trace_shapes(lenet(in_channels=3), (1, 32, 32))
    assert trace.failed_layer == "0" and trace.rows == []
    assert "expects 3 input channels but receives 1" in trace.diagnosis
    assert "in_channels=1" in trace.diagnosis


def test_output_smaller_than_one_diagnosis():
    trace = trace_shapes(lenet(), (3, 12, 12))
    assert trace.failed_layer == "3"
    assert "4×4 input" in trace.diagnosis
    assert "smallest model input that gets past this layer is 14×14" in trace.diagnosis
    pool = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.MaxPool2d(2))
    trace = trace_shapes(pool, (1, 5, 5))
    assert trace.failed_layer == "2" and "pool" in trace.diagnosis


def test_groups_and_flat_input_and_batchnorm_diagnoses():
    grouped = nn.Sequential(nn.Conv2d(3, 6, 1), nn.Conv2d(4, 8, 3, groups=4))
    trace = trace_shapes(grouped, (3, 8, 8))
    assert trace.failed_layer == "1"
    assert "in_channels=6" in trace.diagnosis and "groups" in trace.diagnosis
    flat = nn.Sequential(nn.Flatten(), nn.Conv2d(3, 4, 3))
    assert "Flatten" in trace_shapes(flat, (3, 8, 8)).diagnosis
    no_flatten = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(144, 2))
    assert "add a Flatten" in trace_shapes(no_flatten, (3, 8, 8)).diagnosis
    bn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(8))
    assert "num_features=4" in trace_shapes(bn, (3, 8, 8)).diagnosis


def test_failure_in_forward_code_names_the_module():
    class Viewer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x).view(-1, 999)

    trace = trace_shapes(Viewer(), (1, 6, 6))
    assert not trace.ok and trace.failed_layer == ""
    assert "after layer `conv`" in trace.diagnosis
    assert len(trace.rows) == 1


def test_meta_device_model_traces_without_memory():
    with torch.device("meta"):
        model = lenet()
    trace = trace_shapes(model, (3, 32, 32))
    assert trace.ok and trace.output_shape == (1, 10)
    assert trace.total_params == sum(p.numel() for p in lenet().parameters())


@pytest.mark.parametrize("bad", [(3, 32), (0, 3, 32, 32), (3, 32.0, 32)])
def test_malformed_input_shape_raises_shape_error(bad):
    with pytest.raises(ShapeError, match="input"):
        trace_shapes(lenet(), bad)
