"""Layer stacks: presets against torchvision, inference of blank sizes, errors, and exported code that runs."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
import torchvision
from torch import nn
from torchinfo import summary

from cnndash.stack import (
    PRESETS,
    IgnoredCells,
    LayerSpecError,
    build_stack,
    ignored_cells,
    resolve_stack,
    stack_code,
    trace_stack,
)

torch.set_num_threads(1)

SMALL = ["LeNet-5 (1×28×28)", "LeNet-5 (3×32×32)", "ResNet basic block (64×56×56)"]


def _rows(name: str) -> list[dict]:
    return [dict(row) for row in PRESETS[name].layers]


@pytest.mark.parametrize(
    ("name", "output"),
    [
        ("LeNet-5 (1×28×28)", (1, 10)),
        ("LeNet-5 (3×32×32)", (1, 10)),
        ("AlexNet (3×224×224)", (1, 1000)),
        ("VGG-16 (3×224×224)", (1, 1000)),
        ("ResNet basic block (64×56×56)", (1, 64, 56, 56)),
        ("MobileNet depthwise-separable block (32×112×112)", (1, 64, 112, 112)),
    ],
)
def test_every_preset_traces_to_its_output(name, output):
    preset = PRESETS[name]
    trace = trace_stack(preset.layers, preset.input_shape, residual=preset.residual)
    assert trace.ok, trace.diagnosis
    assert trace.output_shape == output


@pytest.mark.parametrize(
    ("name", "factory"),
    [("VGG-16 (3×224×224)", torchvision.models.vgg16), ("AlexNet (3×224×224)", torchvision.models.alexnet)],
)
def test_big_presets_match_torchvision_parameter_counts(name, factory):
    with torch.device("meta"):
        reference = factory()
    preset = PRESETS[name]
    trace = trace_stack(preset.layers, preset.input_shape)
    assert trace.total_params == sum(p.numel() for p in reference.parameters())
    linears = [row for row in trace.rows if row.kind == "Linear"]
    assert [row.output_shape[-1] for row in linears] == [4096, 4096, 1000]  # not the seeds' 4097


def test_vgg16_macs_match_the_published_figure():
    preset = PRESETS["VGG-16 (3×224×224)"]
    trace = trace_stack(preset.layers, preset.input_shape)
    assert 15.4e9 < trace.total_macs < 15.6e9  # VGG-16: ~15.5 GMACs at 224×224


@pytest.mark.parametrize("name", SMALL)
def test_exported_code_runs_and_matches_the_trace(name):
    preset = PRESETS[name]
    code = stack_code(preset.layers, preset.input_shape, residual=preset.residual, title=name)
    compile(code, "<export>", "exec")
    namespace: dict = {"__name__": "exported"}
    exec(code, namespace)
    model = namespace["model"].eval()
    with torch.no_grad():
        out = model(torch.zeros(namespace["input_shape"]))
    trace = trace_stack(preset.layers, preset.input_shape, residual=preset.residual)
    assert tuple(out.shape) == trace.output_shape
    assert sum(p.numel() for p in model.parameters()) == trace.total_params
    info = summary(model, input_size=namespace["input_shape"], verbose=0)
    assert info.total_mult_adds == trace.total_macs


def test_exported_code_of_edited_stack_writes_inferred_sizes():
    rows = [
        {"layer": "Conv2d", "out": 8, "kernel": "3x5", "padding": "same"},
        {"layer": "BatchNorm2d"},
        {"layer": "MaxPool2d", "kernel": "2", "ceil_mode": True},
        {"layer": "Flatten"},
        {"layer": "Linear", "out": 4},
    ]
    code = stack_code(rows, (2, 9, 11))
    assert "nn.Conv2d(2, 8, kernel_size=(3, 5), padding='same')" in code
    assert "nn.BatchNorm2d(8)" in code
    assert "nn.Linear(240, 4)" in code  # 8 × 5 × 6 after the ceil-mode pool
    namespace: dict = {}
    exec(code, namespace)
    assert tuple(namespace["model"](torch.zeros(1, 2, 9, 11)).shape) == (1, 4)


def test_blank_in_is_inferred_and_explicit_in_is_kept():
    rows = [{"layer": "Conv2d", "out": 4, "kernel": 3}, {"layer": "Flatten"}, {"layer": "Linear", "out": 2}]
    resolved = resolve_stack(rows, (3, 8, 8))
    assert resolved[0][1]["in_channels"] == 3
    assert resolved[2][1]["in_features"] == 4 * 6 * 6
    rows[2]["in"] = 100
    trace = trace_stack(rows, (3, 8, 8))
    assert not trace.ok and trace.failed_layer == "2"
    assert "in_features=144" in trace.diagnosis


def test_breaking_lenet_linear_gives_the_diagnosis():
    rows = _rows("LeNet-5 (1×28×28)")
    first_linear = next(i for i, row in enumerate(rows) if row["layer"] == "Linear")
    rows[first_linear]["in"] = 256
    trace = trace_stack(rows, (1, 28, 28))
    assert trace.failed_layer == str(first_linear)
    assert "expects 256 input features but receives 16×5×5 = 400" in trace.diagnosis
    assert "in_features=400" in trace.diagnosis


def test_residual_shortcut_shape_mismatch_is_diagnosed():
    rows = _rows("ResNet basic block (64×56×56)")
    rows[0]["stride"] = "2"
    trace = trace_stack(rows, (64, 56, 56), residual=True)
    assert not trace.ok and "shortcut" in trace.diagnosis


def test_blank_rows_are_skipped_and_nan_means_blank():
    rows = [{"layer": "Conv2d", "in": math.nan, "out": 2.0, "kernel": "3", "stride": None}, {"layer": None}]
    model = build_stack(rows, (1, 5, 5))
    assert isinstance(model, nn.Sequential) and len(model) == 1
    assert model[0].in_channels == 1 and model[0].out_channels == 2


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({"layer": "Conv3d", "out": 2, "kernel": "3"}, ["row 1", "unknown layer type"]),
        ({"layer": "Conv2d", "kernel": "3"}, ["row 1 (Conv2d)", "'out'", "out_channels"]),
        ({"layer": "Conv2d", "out": 4, "kernel": "three"}, ["'kernel'", "3x5"]),
        ({"layer": "Conv2d", "out": 4, "kernel": "3", "groups": 3}, ["'groups'", "divide"]),
        ({"layer": "Dropout", "p": 1.5}, ["'p'", "between 0 and 1"]),
        ({"layer": "Conv2d", "out": 0, "kernel": "3"}, ["'out'", "at least 1"]),
        (
            {"layer": "Conv2d", "out": 2, "kernel": "3", "stride": "2", "padding": "same"},
            ["same", "stride 1"],
        ),
    ],
)
def test_rows_that_cannot_be_built_raise_layer_spec_error(row, words):
    with pytest.raises(LayerSpecError) as info:
        resolve_stack([row], (2, 8, 8))
    for word in words:
        assert word in str(info.value)
    assert isinstance(info.value, ValueError)


def test_ignored_cells_name_the_rows_and_columns_a_layer_does_not_take():
    rows = [
        {"layer": "Conv2d", "out": 4, "kernel": "3", "bias": "yes", "p": float("nan")},
        {"layer": "MaxPool2d", "kernel": "2", "bias": "no", "groups": 2, "out": None, "padding": "  "},
        {"layer": None, "out": 3},  # a blank row: resolve_stack skips it, and so does this
        {"layer": "ReLU", "p": 0.5, "dilation": pd.NA},
    ]
    found = ignored_cells(rows)
    assert found == [IgnoredCells(2, "MaxPool2d", ("groups", "bias")), IgnoredCells(4, "ReLU", ("p",))]
    assert ignored_cells(PRESETS["LeNet-5 (1×28×28)"].layers) == []
