"""The Learn page's engine against PyTorch: every hand-made number equals what torch.nn computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cnndash import arith
from cnndash.lessons import LessonError, convolution, learn_kernel, networks
from cnndash.lessons import pool_norm_dropout as lesson_layers
from cnndash.lessons.agreement import TOLERANCE, Agreement, check_agreement

# The 2-core box is shared: a slow example is not a failure, a wrong number is.
relaxed = settings(deadline=None)


def torch_corr(x: np.ndarray, k: np.ndarray, **options) -> np.ndarray:
    return F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None], **options)[0, 0].numpy()


@st.composite
def grid_and_kernel(draw):
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    kh, kw = draw(st.integers(1, h)), draw(st.integers(1, w))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    return rng.normal(size=(h, w)), rng.normal(size=(kh, kw))


# -- lesson 1 -----------------------------------------------------------------------------------------------


def test_tutorial_example_gives_the_printed_output():
    lesson = convolution.correlation_lesson([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(lesson.output, [[19, 25], [37, 43]])
    np.testing.assert_array_equal(lesson.torch_output, lesson.output)
    assert [s.total for s in lesson.steps] == [19, 25, 37, 43]
    np.testing.assert_array_equal(lesson.steps[0].products, [[0, 1], [6, 12]])


@relaxed
@given(grid_and_kernel())
def test_corr2d_and_its_steps_equal_conv2d(pair):
    x, k = pair
    lesson = convolution.correlation_lesson(x, k)
    expected = torch_corr(x, k)
    np.testing.assert_allclose(lesson.output, expected, atol=1e-12)
    np.testing.assert_allclose(lesson.torch_output, expected, atol=1e-12)
    assert len(lesson.steps) == expected.size
    np.testing.assert_allclose([s.products.sum() for s in lesson.steps], expected.ravel(), atol=1e-12)


@relaxed
@given(grid_and_kernel())
def test_true_convolution_flips_the_kernel(pair):
    """A true convolution (scipy's convolve2d 'valid', written out here) equals corr2d with K turned 180°."""
    x, k = pair
    lesson = convolution.correlation_lesson(x, k)
    kh, kw = k.shape
    oh, ow = lesson.output.shape
    expected = np.array(
        [
            [
                sum(x[i + kh - 1 - a, j + kw - 1 - b] * k[a, b] for a in range(kh) for b in range(kw))
                for j in range(ow)
            ]
            for i in range(oh)
        ]
    )
    np.testing.assert_allclose(lesson.convolution, expected, atol=1e-12)
    np.testing.assert_allclose(lesson.convolution, torch_corr(x, np.flip(k).copy()), atol=1e-12)


@pytest.mark.parametrize(
    ("x", "k", "match"),
    [
        ([[1, 2], [3, 4]], [[1, 2, 3]], "kernel has 3 columns"),
        ([[1, None], [3, 4]], [[1]], r"row 0, column 1\) of the input"),
        ([[1, 2]], [[float("nan")]], "of the kernel"),
        (np.zeros((13, 13)), [[1]], "at most 12"),
    ],
)
def test_bad_grids_explain_themselves(x, k, match):
    with pytest.raises(LessonError, match=match):
        convolution.correlation_lesson(x, k)


# -- lesson 2 -----------------------------------------------------------------------------------------------


def replay_with_autograd(rate: float, steps: int, start: np.ndarray) -> tuple[list[float], np.ndarray]:
    """The tutorial's loop: nn.Conv2d(1, 1, (1, 2), bias=False), summed squared loss, manual SGD step."""
    conv = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(start).view(1, 1, 1, 2))
    x = torch.from_numpy(learn_kernel.edge_image()).view(1, 1, 6, 8)
    y = F.conv2d(x, torch.tensor([[[[1.0, -1.0]]]], dtype=torch.float64))
    losses = []
    for _ in range(steps):
        loss = ((conv(x) - y) ** 2).sum()
        conv.zero_grad()
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            conv.weight -= rate * conv.weight.grad
    return losses, conv.weight.detach().view(2).numpy()


@pytest.mark.parametrize(("rate", "seed"), [(0.03, 0), (0.01, 1), (0.001, 2)])
def test_gradient_descent_matches_autograd(rate, seed):
    lesson = learn_kernel.learn_kernel(rate, 10, seed)
    losses, final = replay_with_autograd(rate, 10, lesson.kernels[0])
    np.testing.assert_allclose(lesson.losses[:10], losses, rtol=1e-10)
    np.testing.assert_allclose(lesson.final_kernel, final, rtol=1e-10)
    assert lesson.diverged_at is None


def test_tutorial_rate_converges_to_the_edge_kernel():
    lesson = learn_kernel.learn_kernel(0.03, 60)
    np.testing.assert_allclose(lesson.final_kernel, [1, -1], atol=1e-3)
    assert lesson.losses[-1] < 1e-5


def test_rate_above_the_critical_one_diverges_without_infinities():
    lesson = learn_kernel.learn_kernel(0.1, 200)
    assert lesson.critical_rate == pytest.approx(2 / 60)  # λ_max of 2·ΣwwT for this image
    assert lesson.diverged_at is not None
    assert np.isfinite(lesson.losses).all() and np.isfinite(lesson.kernels).all()
    assert len(lesson.losses) == lesson.diverged_at
    assert lesson.diverging and lesson.growth_per_step == pytest.approx((1 - 0.1 * 60) ** 2)
    assert not learn_kernel.learn_kernel(0.03, 5).diverging
    # just under the limit it still converges, just over it does not
    assert learn_kernel.learn_kernel(lesson.critical_rate * 0.99, 200).diverged_at is None
    assert learn_kernel.learn_kernel(lesson.critical_rate * 1.05, 200).diverged_at is not None


@pytest.mark.parametrize(("rate", "steps"), [(0.0, 10), (float("nan"), 10), (0.01, 0), (0.01, 1000)])
def test_bad_rates_and_steps_are_refused(rate, steps):
    with pytest.raises(LessonError):
        learn_kernel.learn_kernel(rate, steps)


# -- lesson 3 -----------------------------------------------------------------------------------------------


def test_tutorial_padding_examples_match_their_printed_shapes():
    assert [e.output for e in convolution.padding_examples()] == [(8, 8), (8, 8), (4, 4), (2, 2)]
    assert all(e.output == e.torch_output for e in convolution.padding_examples())


@relaxed
@given(st.integers(1, 16), st.integers(1, 7), st.integers(0, 4), st.integers(1, 4))
def test_padding_lesson_equals_conv2d(size, k, p, s):
    if size + 2 * p < k:
        with pytest.raises(LessonError, match="larger than the padded input"):
            convolution.padding_lesson(size, k, p, s)
        return
    lesson = convolution.padding_lesson(size, k, p, s)
    real = nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, size, size)).shape[2:]
    assert lesson.output == lesson.torch_output == tuple(real)
    assert len(lesson.starts[0]) == real[0]


# -- lessons 4 and 5 ----------------------------------------------------------------------------------------


def test_tutorial_multi_input_example():
    x = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10).reshape(3, 3)])
    k = np.stack([[[0.0, 1], [2, 3]], [[1.0, 2], [3, 4]]])
    assert (convolution.corr2d(x[0], k[0]) + convolution.corr2d(x[1], k[1])).tolist() == [
        [56, 72],
        [104, 120],
    ]


@relaxed
@given(st.integers(1, 4), st.integers(1, 4), st.integers(2, 5), st.integers(0, 99))
def test_channels_equal_conv2d(c_in, c_out, size, seed):
    lesson = convolution.channels_lesson(c_in, c_out, size, 2, seed)
    expected = F.conv2d(torch.from_numpy(lesson.x)[None], torch.from_numpy(lesson.kernels))[0].numpy()
    np.testing.assert_allclose(lesson.output, expected, atol=1e-12)
    np.testing.assert_allclose(lesson.torch_output, expected, atol=1e-12)
    pointwise = convolution.pointwise_lesson(c_in, c_out, size, seed)
    weight = torch.from_numpy(pointwise.weights)[:, :, None, None]
    expected = F.conv2d(torch.from_numpy(pointwise.x)[None], weight)[0].numpy()
    np.testing.assert_allclose(pointwise.output, expected, atol=1e-12)
    # and as a Linear layer applied to every pixel's channel vector
    linear = nn.Linear(c_in, c_out, bias=False).double()
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(pointwise.weights))
        per_pixel = linear(torch.from_numpy(pointwise.pixels.T)).T.numpy()
    np.testing.assert_allclose(pointwise.product, per_pixel, atol=1e-12)


@relaxed
@given(
    st.integers(2, 6),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(1, 2),
)
def test_unfold_times_kernel_rows_equals_conv2d(size, k, stride, padding, c_in, c_out):
    if size + 2 * padding < k:
        with pytest.raises(LessonError):
            convolution.unfold_lesson(size, k, stride, padding, c_in, c_out)
        return
    lesson = convolution.unfold_lesson(size, k, stride, padding, c_in, c_out)
    expected = F.conv2d(
        torch.from_numpy(lesson.x)[None], torch.from_numpy(lesson.kernels), stride=stride, padding=padding
    )[0].numpy()
    np.testing.assert_allclose(lesson.output, expected, atol=1e-12)
    assert lesson.columns.shape == (c_in * k * k, expected.shape[1] * expected.shape[2])
    assert len(lesson.column_labels) == lesson.columns.shape[0]


# -- lesson 6 -----------------------------------------------------------------------------------------------


@relaxed
@given(grid_and_kernel(), st.integers(1, 3), st.integers(0, 2), st.sampled_from(["max", "avg"]))
def test_pool2d_equals_nn_pools(pair, stride, padding, mode):
    x, k = pair
    size = min(k.shape)
    layer = nn.MaxPool2d(size, stride, padding) if mode == "max" else nn.AvgPool2d(size, stride, padding)
    try:
        arith.pool_output_size(x.shape, size, stride, padding)
    except arith.ShapeError:
        with pytest.raises(LessonError):
            lesson_layers.pool_lesson(x, size, stride, padding, mode)
        return
    lesson = lesson_layers.pool_lesson(x, size, stride, padding, mode)
    expected = layer(torch.from_numpy(x)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(lesson.output, expected, atol=1e-12)
    np.testing.assert_allclose(lesson.torch_output, expected, atol=1e-12)


def test_tutorial_pool_examples():
    x = np.arange(9.0).reshape(3, 3)
    assert lesson_layers.pool2d(x, 2, 1, 0, "max").tolist() == [[4, 5], [7, 8]]
    assert lesson_layers.pool2d(x, 2, 1, 0, "avg").tolist() == [[2, 3], [5, 6]]


def test_pool_padding_over_half_the_kernel_is_explained():
    with pytest.raises(LessonError, match="at most half the kernel"):
        lesson_layers.pool_lesson(np.ones((4, 4)), 2, 1, 2, "max")


def test_max_pooling_makes_a_one_pixel_shift_matter_less():
    shift = lesson_layers.shift_lesson(2, 1, "max")
    assert shift.same_after > shift.same_before
    np.testing.assert_array_equal(shift.shifted[:, 1:], shift.x[:, :-1])
    expected = F.max_pool2d(torch.from_numpy(shift.shifted)[None, None], 2, 1)[0, 0].numpy()
    np.testing.assert_array_equal(shift.pooled_shifted, expected)


# -- lesson 7 -----------------------------------------------------------------------------------------------


@relaxed
@given(
    st.sampled_from(list(lesson_layers.NORMS)),
    st.integers(2, 4),
    st.sampled_from([(2, 1), (4, 2), (6, 3), (6, 2)]),
    st.integers(1, 4),
    st.integers(0, 50),
)
def test_norms_by_hand_equal_nn_layers(kind, n, channels_groups, size, seed):
    c, groups = channels_groups
    if kind == "InstanceNorm" and size == 1:  # torch refuses it too ("Expected more than 1 spatial element")
        with pytest.raises(LessonError, match="more than one pixel"):
            lesson_layers.norm_lesson(kind, n, c, size, groups, seed)
        return
    lesson = lesson_layers.norm_lesson(kind, n, c, size, groups, seed)
    x = torch.from_numpy(lesson.x)
    reference = {
        "BatchNorm": lambda: nn.BatchNorm2d(c).double().train()(x),
        "LayerNorm": lambda: F.layer_norm(x, (c, size, size)),
        "InstanceNorm": lambda: F.instance_norm(x),
        "GroupNorm": lambda: F.group_norm(x, groups),
    }[kind]
    expected = reference().detach().numpy()
    np.testing.assert_allclose(lesson.output, expected, atol=1e-9)
    np.testing.assert_allclose(lesson.torch_output, expected, atol=1e-9)
    assert (
        lesson.stat_ids.max() + 1
        == {"BatchNorm": c, "LayerNorm": n, "InstanceNorm": n * c, "GroupNorm": n * groups}[kind]
    )


def test_norm_inputs_that_cannot_work_are_explained():
    with pytest.raises(LessonError, match="split evenly"):
        lesson_layers.norm_lesson("GroupNorm", 2, 4, 2, groups=3)
    with pytest.raises(LessonError, match="more than one value"):
        lesson_layers.norm_lesson("BatchNorm", 1, 4, 1)
    with pytest.raises(LessonError, match="Unknown"):
        lesson_layers.norm_lesson("WeightNorm")


@pytest.mark.parametrize(("steps", "momentum"), [(1, 0.1), (10, 0.1), (25, 0.5), (5, 1.0)])
def test_running_statistics_match_batchnorm(steps, momentum):
    lesson = lesson_layers.batchnorm_running(steps, momentum)
    np.testing.assert_allclose(lesson.running_means[-1], lesson.torch_running_mean, atol=1e-12)
    np.testing.assert_allclose(lesson.running_vars[-1], lesson.torch_running_var, atol=1e-12)
    assert lesson.running_means.shape == (steps + 1, 3)
    if momentum < 1:  # the running mean lags the batches, so eval mode normalises differently
        assert np.abs(lesson.train_output - lesson.eval_output).max() > 0.01


# -- lesson 8 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_dropout_scales_survivors_and_eval_is_identity(p):
    lesson = lesson_layers.dropout_lesson(p, seed=3)
    kept = lesson.kept
    np.testing.assert_allclose(
        lesson.train_outputs[kept], np.broadcast_to(lesson.x / (1 - p), kept.shape)[kept]
    )
    assert (lesson.train_outputs[~kept] == 0).all()
    np.testing.assert_array_equal(lesson.eval_output, lesson.x)
    np.testing.assert_allclose(lesson.average.mean(), lesson.x.mean(), rtol=0.1)
    if 0.2 <= p <= 0.5:
        assert not np.array_equal(kept[0], kept[1])


def test_dropout_is_reproducible_and_leaves_the_global_generator_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    first = lesson_layers.dropout_lesson(0.5, seed=7)
    after = torch.rand(3)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(first.kept, lesson_layers.dropout_lesson(0.5, seed=7).kept)
    with pytest.raises(LessonError):
        lesson_layers.dropout_lesson(1.0)


# -- lesson 9 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reference"),
    [
        ("AlexNet", torchvision.models.alexnet),
        ("VGG-16", torchvision.models.vgg16),
        ("ResNet residual block", lambda: torchvision.models.resnet.BasicBlock(64, 64)),
    ],
)
def test_parameters_equal_torchvision(name, reference):
    with torch.device("meta"):
        expected = sum(p.numel() for p in reference().parameters())
    assert networks.trace_network(name).trace.total_params == expected


def test_every_network_traces_to_the_published_shapes():
    expected = {
        "LeNet": ((1, 10), 61_706),
        "AlexNet": ((1, 1000), 61_100_840),
        "VGG-16": ((1, 1000), 138_357_544),
        "NiN": ((1, 10), None),
        "Inception block": ((1, 256, 28, 28), None),
        "ResNet residual block": ((1, 64, 56, 56), None),
        "DenseNet dense block": ((1, 64 + 4 * 32, 56, 56), None),
    }
    for name, (shape, params) in expected.items():
        result = networks.trace_network(name)
        assert result.trace.ok, name
        assert result.output_shape == shape, name
        if params is not None:
            assert result.trace.total_params == params, name
        assert result.total_macs > 0


def test_block_parameters_by_formula_and_real_forward_pass():
    inception = networks.Inception(192, 64, (96, 128), (16, 32), 32)
    convs = [(192, 64, 1), (192, 96, 1), (96, 128, 3), (192, 16, 1), (16, 32, 5), (192, 32, 1)]
    assert sum(p.numel() for p in inception.parameters()) == sum(i * o * k * k + o for i, o, k in convs)
    assert inception(torch.zeros(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    dense = networks.DenseBlock(2, 3, 10)  # d2l's example: 3 → 23 channels
    assert dense(torch.zeros(4, 3, 8, 8)).shape == (4, 23, 8, 8)


def test_vgg_mistake_from_the_tutorial_is_diagnosed():
    result = networks.trace_network("VGG-16", mistake=True)
    assert not result.trace.ok and result.output_shape is None
    assert "4096" in result.trace.diagnosis
    assert "4097" in networks.NETWORKS["VGG-16"].correction
    with pytest.raises(LessonError):
        networks.trace_network("LeNet", mistake=True)
    with pytest.raises(LessonError, match="Unknown network"):
        networks.trace_network("Transformer")


def test_presets_named_by_lessons_exist_and_agree_in_parameters():
    from cnndash.stack import trace_stack
    from cnndash.stack.presets import PRESETS

    for network in networks.NETWORKS.values():
        if network.preset is None:
            continue
        preset = PRESETS[network.preset]
        stack = trace_stack(preset.layers, preset.input_shape, residual=preset.residual)
        assert stack.total_params == networks.trace_network(network.name).trace.total_params, network.name


# -- the page's checks --------------------------------------------------------------------------------------


def test_agreement_needs_the_same_shape_and_rounding_only():
    same = check_agreement(np.ones((2, 3)), np.ones((2, 3)) + 1e-12)
    assert same.same and same.shape == (2, 3) and same.largest_difference <= TOLERANCE
    off = check_agreement([[1.0, 2.0]], [[1.0, 2.5]])
    assert not off.same and off.largest_difference == 0.5
    assert not check_agreement(np.ones((1, 2)), np.ones((2, 2))).same  # broadcasts, but the shapes differ
    assert check_agreement(np.zeros((0, 3)), np.zeros((0, 3))) == Agreement((0, 3), 0.0, True)
    with pytest.raises(ValueError):
        check_agreement(np.ones(2), np.ones(3))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_lesson_pads_with_what_the_pool_ignores(mode):
    lesson = lesson_layers.pool_lesson(np.arange(9.0).reshape(3, 3), 3, 1, 1, mode)
    assert lesson.padded.shape == lesson.inside.shape == (5, 5)
    np.testing.assert_array_equal(lesson.padded[lesson.inside].reshape(3, 3), lesson.x)
    assert set(lesson.padded[~lesson.inside]) == ({-np.inf} if mode == "max" else {0.0})


def test_norm_lesson_counts_its_statistics_and_their_values():
    lesson = lesson_layers.norm_lesson("GroupNorm", n=2, c=4, size=3, groups=2)
    assert lesson.stat_count == 4 == len(lesson.means)  # 2 samples × 2 groups
    assert lesson.values_per_stat(0) == 2 * 9  # two channels of 3×3
    batch = lesson_layers.norm_lesson("BatchNorm", n=3, c=2, size=2)
    assert batch.stat_count == 2 and batch.values_per_stat(1) == 3 * 4


def test_running_statistics_gap_between_train_and_eval():
    running = lesson_layers.batchnorm_running(5, 0.1)
    assert running.train_eval_gap == float(np.abs(running.train_output - running.eval_output).max()) > 0
