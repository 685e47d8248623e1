"""Shape arithmetic against real PyTorch layers: thousands of random configurations, valid and invalid."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from cnndash.arith import (
    ShapeError,
    avg_pool_output_size,
    conv_macs,
    conv_output_size,
    conv_params,
    conv_transpose_output_size,
    effective_kernel_size,
    linear_macs,
    linear_params,
    pool_output_size,
    receptive_field,
)

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
PROPERTY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _int_or_pair(low: int, high: int, invalid: int | None = None):
    """An int, or an (h, w) pair whose sides usually differ; ``invalid`` turns up in about 1 draw of 20."""
    values = list(range(low, high + 1))
    one = st.sampled_from(values * max(1, 20 // len(values)) + ([] if invalid is None else [invalid]))
    return st.one_of(one, st.tuples(one, one))


sizes = _int_or_pair(1, 13, invalid=0)
kernels = _int_or_pair(1, 7, invalid=0)
strides = _int_or_pair(1, 4, invalid=0)
paddings = _int_or_pair(0, 4, invalid=-1)
dilations = _int_or_pair(1, 3, invalid=0)


def _tensor(size) -> torch.Tensor:
    h, w = (size, size) if isinstance(size, int) else size
    return torch.zeros(1, 1, h, w)


def _torch_size(layer: nn.Module, size):
    """The layer's output size in the same form as ``size``, or None when PyTorch refuses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = layer(_tensor(size))
    except (RuntimeError, ValueError, TypeError):
        return None
    h, w = out.shape[-2:]
    if h == 0 or w == 0:
        # PyTorch's CPU backends disagree on an output size of exactly 0 (most raise, some return an
        # empty tensor, e.g. ConvTranspose2d); an empty output is unusable either way, and we always
        # raise. Checked on both axes even for an int size: a pair argument can empty one axis alone.
        return None
    return h if isinstance(size, int) else (h, w)


def _torch_or_none(build):
    try:
        return build()
    except (RuntimeError, ValueError, TypeError):
        return None


def _ours(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ShapeError:
        return None


@PROPERTY
@given(
    size=sizes,
    kernel=kernels,
    stride=strides,
    dilation=dilations,
    padding=st.one_of(paddings, st.sampled_from(["same", "valid"])),
)
def test_conv_output_size_matches_conv2d(size, kernel, stride, padding, dilation):
    layer = _torch_or_none(lambda: nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation))
    expected = None if layer is None else _torch_size(layer, size)
    assert _ours(conv_output_size, size, kernel, stride, padding, dilation) == expected


@PROPERTY
@given(
    size=sizes,
    kernel=kernels,
    stride=st.one_of(st.none(), strides),
    padding=paddings,
    dilation=dilations,
    ceil_mode=st.booleans(),
)
def test_pool_output_size_matches_maxpool2d(size, kernel, stride, padding, dilation, ceil_mode):
    layer = nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    expected = _torch_size(layer, size)
    assert _ours(pool_output_size, size, kernel, stride, padding, dilation, ceil_mode) == expected


@PROPERTY
@given(
    size=sizes,
    kernel=kernels,
    stride=st.one_of(st.none(), strides),
    padding=paddings,
    ceil_mode=st.booleans(),
)
def test_avg_pool_output_size_matches_avgpool2d(size, kernel, stride, padding, ceil_mode):
    layer = nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    expected = _torch_size(layer, size)
    assert _ours(avg_pool_output_size, size, kernel, stride, padding, ceil_mode) == expected


@PROPERTY
@given(
    size=sizes,
    kernel=kernels,
    stride=strides,
    padding=paddings,
    output_padding=_int_or_pair(0, 3, invalid=-1),
    dilation=dilations,
)
def test_conv_transpose_output_size_matches_convtranspose2d(
    size, kernel, stride, padding, output_padding, dilation
):
    layer = _torch_or_none(
        lambda: nn.ConvTranspose2d(
            1, 1, kernel, stride=stride, padding=padding, output_padding=output_padding, dilation=dilation
        )
    )
    expected = None if layer is None else _torch_size(layer, size)
    if min((dilation,) if isinstance(dilation, int) else dilation) < 1:
        # ConvTranspose2d has no dilation check: dilation 0 "works" for a 1×1 input only by accident
        # (larger inputs fail inside oneDNN, and Conv2d refuses it outright); API.md says ShapeError.
        expected = None
    ours = _ours(conv_transpose_output_size, size, kernel, stride, padding, output_padding, dilation)
    assert ours == expected


def test_int_in_int_out_pair_in_tuple_out():
    assert conv_output_size(32, 5) == 28
    assert conv_output_size((37, 50), 3, stride=2, padding=1, dilation=2) == (18, 24)
    assert isinstance(conv_output_size((8, 8), 3), tuple)
    assert pool_output_size(5, 2, ceil_mode=True) == 3
    assert conv_transpose_output_size((4, 5), 4, stride=2, padding=1) == (8, 10)


def test_same_padding_keeps_size_and_needs_stride_one():
    assert conv_output_size((7, 9), (4, 3), padding="same", dilation=2) == (7, 9)
    with pytest.raises(ShapeError, match="stride") as info:
        conv_output_size(8, 3, stride=2, padding="same")
    assert info.value.argument == "stride"


def test_errors_name_the_argument_and_the_fix():
    with pytest.raises(ShapeError, match="at least 5") as info:
        conv_output_size(4, 5)
    assert info.value.argument == "kernel_size"
    with pytest.raises(ShapeError, match="half the kernel") as info:
        pool_output_size(8, 3, padding=2)
    assert info.value.argument == "padding"
    with pytest.raises(ShapeError, match="output_padding") as info:
        conv_transpose_output_size(8, 3, stride=2, output_padding=2)
    assert info.value.argument == "output_padding"
    assert isinstance(info.value, ValueError)


@settings(max_examples=300, deadline=None)
@given(
    cin=st.integers(1, 8),
    cout=st.integers(1, 8),
    kernel=_int_or_pair(1, 4),
    groups=st.integers(1, 4),
    bias=st.booleans(),
    transposed=st.booleans(),
)
def test_conv_params_match_numel_and_groups_rule(cin, cout, kernel, groups, bias, transposed):
    cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    try:
        layer = cls(cin, cout, kernel, groups=groups, bias=bias)
    except ValueError:
        with pytest.raises(ShapeError, match="groups"):
            conv_params(cin, cout, kernel, groups, bias)
        return
    assert conv_params(cin, cout, kernel, groups, bias) == sum(p.numel() for p in layer.parameters())


def test_macs_match_torchinfo():
    from torchinfo import summary

    conv = nn.Conv2d(4, 6, (3, 5), stride=2, padding=1, groups=2)
    info = summary(conv, input_size=(2, 4, 11, 13), verbose=0)
    out_hw = conv_output_size((11, 13), (3, 5), stride=2, padding=1)
    assert conv_macs(4, 6, (3, 5), out_hw, groups=2, batch=2) == info.total_mult_adds
    linear = nn.Linear(400, 120)
    info = summary(linear, input_size=(3, 400), verbose=0)
    assert linear_macs(400, 120, batch=3) == info.total_mult_adds
    assert linear_params(400, 120) == 48_120


def test_effective_kernel_size():
    assert effective_kernel_size(3, 2) == 5
    assert effective_kernel_size((3, 5), (1, 3)) == (3, 13)


def _empirical_field(layers, size: int = 64) -> tuple[int, int]:
    """Which input pixels reach the centre output unit, measured with autograd."""
    modules = []
    for kernel, stride, dilation in layers:
        conv = nn.Conv2d(1, 1, kernel, stride=stride, dilation=dilation, bias=False)
        nn.init.constant_(conv.weight, 1.0)
        modules.append(conv)
    x = torch.ones(1, 1, size, size, requires_grad=True)
    out = nn.Sequential(*modules)(x)
    h, w = out.shape[-2:]
    out[0, 0, h // 2, w // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].sum(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@settings(max_examples=60, deadline=None)
@given(
    layers=st.lists(
        st.tuples(_int_or_pair(1, 4), st.integers(1, 2), st.integers(1, 2)), min_size=1, max_size=3
    )
)
def test_receptive_field_matches_autograd(layers):
    field, _ = receptive_field(layers)
    assert _empirical_field(layers) == field


def test_receptive_field_of_two_3x3_equals_one_5x5():
    assert receptive_field([(3, 1, 1), (3, 1, 1)]) == ((5, 5), (1, 1))
    assert receptive_field([(3, 2, 1), (3, 1, 2)]) == ((11, 11), (2, 2))


def test_transposed_output_emptied_on_one_axis_by_a_pair_argument_is_refused():
    # Found by hypothesis: an int size with a pair output_padding; PyTorch returns a 1×0 tensor.
    layer = nn.ConvTranspose2d(1, 1, 4, stride=3, padding=4, output_padding=(2, 1))
    assert _torch_size(layer, 2) is None
    with pytest.raises(ShapeError, match="width would be 0"):
        conv_transpose_output_size(2, 4, stride=3, padding=4, output_padding=(2, 1))


def test_transposed_conv_refuses_dilation_zero_even_where_pytorch_happens_to_run_it():
    # Found by hypothesis: PyTorch runs dilation=0 on a 1×1 input but fails on any larger one.
    layer = nn.ConvTranspose2d(1, 1, 4, stride=4, dilation=0)
    assert _torch_size(layer, 1) == 1 and _torch_size(layer, 5) is None
    with pytest.raises(ShapeError, match="dilation"):
        conv_transpose_output_size(1, 4, stride=4, dilation=0)
