"""Learn: the tutorials' lessons as small experiments, every number computed by ``cnndash.lessons`` and
checked there against ``torch.nn``. One render function per lesson; only the selected lesson runs."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

import ui
from cnndash.explain import feature_maps as features
from cnndash.lessons import convolution, learn_kernel, networks
from cnndash.lessons import pool_norm_dropout as lesson_layers
from cnndash.plots import calculator as plots_arith
from cnndash.plots import gradcam as plots_cam
from cnndash.plots import learn as plots_learn
from cnndash.runs import list_runs
from cnndash.stack.presets import PRESETS

ui.route_guard()

FIT = {"config": {"displayModeBar": False}}
TOLERANCE = 1e-9
CORR_STARTS = {
    "Tutorial: 3×3 input, 2×2 kernel": (np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])),
    "Edge image 6×8, kernel [1, −1]": (learn_kernel.edge_image(), learn_kernel.TARGET),
    "Random 5×5, 3×3 kernel": (convolution.random_ints((5, 5), 3), convolution.random_ints((3, 3), 4)),
}
LEARNING_RATES = (0.001, 0.003, 0.01, 0.02, 0.03, 0.033, 0.034, 0.04, 0.06, 0.1)


def notice(text: str) -> None:
    st.info(f"**What to notice.** {text}", icon=":material/lightbulb:")


_CHART_IDS = itertools.count()  # this script runs afresh on every rerun, so keys repeat run after run


def grid(values, title: str = "", **options) -> None:
    figure = plots_learn.grid_figure(values, title, **options)
    st.plotly_chart(figure, width="content", key=f"learn-grid-{next(_CHART_IDS)}", **FIT)


def agreement(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Say whether the hand-made numbers equal PyTorch's (they always should: the tests make sure)."""
    diff = float(np.abs(np.asarray(ours) - np.asarray(theirs)).max()) if np.size(ours) else 0.0
    if np.shape(ours) == np.shape(theirs) and diff <= TOLERANCE:
        st.success(f"By hand = `{what}`: same shape {tuple(np.shape(ours))}, largest difference {diff:.1e}.")
    else:
        st.error(f"By hand ≠ `{what}` (largest difference {diff:.3g}); please report this.")


def _frame(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, columns=[str(c) for c in range(values.shape[1])])


# --------------------------------------------------------------------------------------------------
# 1–3


def cross_correlation() -> None:
    st.latex(r"Y_{i,j} = \sum_{a=0}^{h-1}\sum_{b=0}^{w-1} X_{i+a,\,j+b}\,K_{a,b}")
    start = st.selectbox(
        "Start from", list(CORR_STARTS), **ui.keep("learn-corr-start", next(iter(CORR_STARTS)))
    )
    x0, k0 = CORR_STARTS[start]
    left, right = st.columns(2)
    left.caption("Input X — edit any cell")
    number = list(CORR_STARTS).index(start)  # each start gets fresh editors
    x = left.data_editor(_frame(x0), key=f"learn-corr-x-{number}", hide_index=True, num_rows="dynamic")
    right.caption("Kernel K — edit any cell")
    k = right.data_editor(_frame(k0), key=f"learn-corr-k-{number}", hide_index=True)
    lesson = convolution.correlation_lesson(x.to_numpy(dtype=float), k.to_numpy(dtype=float))
    steps = lesson.steps
    if st.session_state.get("learn-corr-step", 0) >= len(steps):
        st.session_state["learn-corr-step"] = 0
    index = (
        st.slider("Window position", 0, len(steps) - 1, **ui.keep("learn-corr-step", 0))
        if len(steps) > 1
        else 0
    )
    step = steps[index]
    kh, kw = lesson.kernel.shape
    cols = st.columns(3)
    with cols[0]:
        grid(lesson.x, "X: the window", highlight=[(step.row, step.col, kh, kw)])
    with cols[1]:
        grid(lesson.kernel, "K")
    with cols[2]:
        grid(lesson.output, "Y = corr2d(X, K)", highlight=[(step.row, step.col, 1, 1)])
    terms = " + ".join(
        f"{a:g}\\cdot{b:g}" for a, b in zip(step.window.ravel(), lesson.kernel.ravel(), strict=True)
    )
    st.latex(rf"Y_{{{step.row},{step.col}}} = {terms} = {step.total:g}")
    agreement(lesson.output, lesson.torch_output, "nn.Conv2d(1, 1, kernel_size, bias=False)")
    st.subheader("A true convolution flips the kernel")
    st.latex(r"(X \star K)_{i,j} = \sum_{a,b} X_{i+a,\,j+b}\,K_{h-1-a,\;w-1-b}")
    cols = st.columns(2)
    with cols[0]:
        grid(lesson.flipped, "K turned by 180°")
    with cols[1]:
        grid(lesson.convolution, "true convolution")
    notice(
        "Each output cell is one window of the input multiplied cell by cell with the kernel and summed; "
        "`nn.Conv2d` computes exactly this cross-correlation, it does not flip the kernel. A true "
        "convolution equals cross-correlation with the flipped kernel, and since the kernel is learned, "
        "deep learning never needs the flip."
    )


def learning_a_kernel() -> None:
    st.latex(
        r"L(w) = \sum_{i,j}\big(w_0 X_{i,j} + w_1 X_{i,j+1} - Y_{i,j}\big)^2 \qquad w \leftarrow w - \eta\,\nabla L"
    )
    cols = st.columns(3)
    rate = cols[0].select_slider("Learning rate η", LEARNING_RATES, **ui.keep("learn-kernel-lr", 0.03))
    steps = cols[1].slider("Steps", 1, 60, **ui.keep("learn-kernel-steps", 10))
    seed = cols[2].number_input("Random start (seed)", 0, 999, **ui.keep("learn-kernel-seed", 0))
    lesson = learn_kernel.learn_kernel(float(rate), int(steps), int(seed))
    kernel = lesson.final_kernel
    if lesson.diverged_at is not None:
        st.error(
            f"Diverged: with η = {rate} the loss grew past {learn_kernel.DIVERGED_LOSS:.0e} at step "
            f"{lesson.diverged_at}, so the run stopped there. Steps above η = 2/λ_max = "
            f"{lesson.critical_rate:.4f} overshoot the minimum by more each time; lower the learning rate.",
            icon=":material/trending_up:",
        )
    elif lesson.diverging:
        st.error(
            f"Diverging: η = {rate} is above 2/λ_max = {lesson.critical_rate:.4f}, so every step overshoots "
            f"and the loss grows about ×{lesson.growth_per_step:.3g} per step; lower the learning rate.",
            icon=":material/trending_up:",
        )
    metrics = st.columns(3)
    metrics[0].metric("Loss after the last step shown", f"{lesson.losses[-1]:.4g}")
    metrics[1].metric("Learned kernel", f"[{kernel[0]:.3f}, {kernel[1]:.3f}]")
    metrics[2].metric("Largest stable η (2 / λ_max)", f"{lesson.critical_rate:.4f}")
    cols = st.columns(2)
    cols[0].plotly_chart(plots_learn.loss_figure(lesson.losses, lesson.diverged_at), **FIT)
    cols[1].plotly_chart(plots_learn.kernel_figure(lesson.kernels, learn_kernel.TARGET[0]), **FIT)
    cols = st.columns(2)
    with cols[0]:
        grid(lesson.x, "X (6×8)")
    with cols[1]:
        grid(lesson.y, "Y = corr2d(X, [1, −1])", zmid=0.0, colorscale="RdBu")
    notice(
        "With a small η the loss falls steadily and the kernel settles on [1, −1], the edge detector that "
        "made Y; the tutorial's η = 0.03 sits just under the limit 2/λ_max ≈ 0.033 and zig-zags on the way. "
        "Past that limit every step overshoots further and the loss explodes."
    )


def padding_and_stride() -> None:
    cols = st.columns(4)
    size = cols[0].slider("Input size n", 1, 16, **ui.keep("learn-pad-size", 8))
    kernel = cols[1].slider("Kernel k", 1, 7, **ui.keep("learn-pad-kernel", 3))
    padding = cols[2].slider("Padding p", 0, 4, **ui.keep("learn-pad-padding", 1))
    stride = cols[3].slider("Stride s", 1, 4, **ui.keep("learn-pad-stride", 2))
    st.latex(plots_arith.output_size_latex("Conv2d", "H", size, kernel, stride, padding))
    lesson = convolution.padding_lesson(size, kernel, padding, stride)
    oh, ow = lesson.output
    st.caption(
        f"`nn.Conv2d` returns {lesson.torch_output[0]}×{lesson.torch_output[1]}; the formula says {oh}×{ow}."
    )
    if st.session_state.get("learn-pad-position", 0) >= oh * ow:
        st.session_state["learn-pad-position"] = 0
    position = (
        st.slider("Output cell", 0, oh * ow - 1, **ui.keep("learn-pad-position", 0)) if oh * ow > 1 else 0
    )
    figure = plots_arith.sliding_window_figure(
        (size, size), (kernel, kernel), (stride, stride), padding, (1, 1), (oh, ow), divmod(position, ow)
    )
    st.plotly_chart(figure, **FIT)
    st.markdown("**The tutorial's examples** (8×8 input):")
    st.dataframe(
        pd.DataFrame(
            {
                "kernel": f"{e.kernel[0]}×{e.kernel[1]}",
                "padding": f"{e.padding[0]}, {e.padding[1]}",
                "stride": f"{e.stride[0]}, {e.stride[1]}",
                "formula": f"{e.output[0]}×{e.output[1]}",
                "nn.Conv2d": f"{e.torch_output[0]}×{e.torch_output[1]}",
            }
            for e in convolution.padding_examples()
        ),
        hide_index=True,
    )
    st.page_link(
        ui.PAGES["calculator"], label="Try any layer in the conv calculator", icon=":material/calculate:"
    )
    notice(
        "Padding p = (k − 1)/2 with stride 1 keeps the size; stride s divides it by about s because the "
        "window only starts at every s-th cell. The floor drops any cells the last window cannot reach."
    )


# --------------------------------------------------------------------------------------------------
# 4–6


def channels() -> None:
    cols = st.columns(3)
    c_in = cols[0].slider("Input channels", 1, 3, **ui.keep("learn-ch-in", 2))
    c_out = cols[1].slider("Output channels", 1, 3, **ui.keep("learn-ch-out", 2))
    seed = cols[2].number_input("Numbers (seed)", 0, 999, **ui.keep("learn-ch-seed", 0))
    lesson = convolution.channels_lesson(int(c_in), int(c_out), 3, 2, int(seed))
    st.latex(r"Y_{o} = \sum_{i=0}^{C_\text{in}-1} \operatorname{corr2d}(X_i,\,K_{o,i})")
    if st.session_state.get("learn-ch-show", 0) >= c_out:
        st.session_state["learn-ch-show"] = 0
    shown = st.radio("Output channel to build", range(c_out), horizontal=True, **ui.keep("learn-ch-show", 0))
    cols = st.columns(c_in + 1)
    for i in range(c_in):
        with cols[i]:
            grid(lesson.x[i], f"X{i}")
            grid(lesson.kernels[shown, i], f"K{shown},{i}")
            grid(lesson.pairs[shown, i], f"corr2d(X{i}, K{shown},{i})")
    with cols[-1]:
        grid(lesson.output[shown], f"Y{shown} = sum")
    st.markdown("**All output channels, stacked:** " + ", ".join(f"Y{o}" for o in range(c_out)))
    cols = st.columns(c_out)
    for o in range(c_out):
        with cols[o]:
            grid(lesson.output[o], f"Y{o}")
    agreement(lesson.output, lesson.torch_output, f"nn.Conv2d({c_in}, {c_out}, 2, bias=False)")
    st.subheader("1×1 convolution = a fully connected layer at every pixel")
    st.latex(
        r"Y_{:,p} = W\,X_{:,p} \quad\Longrightarrow\quad Y = W \cdot \operatorname{reshape}(X,\ C_\text{in} \times HW)"
    )
    pointwise = convolution.pointwise_lesson(int(c_in), int(c_out), 3, int(seed))
    cols = st.columns(3)
    with cols[0]:
        grid(pointwise.weights, f"W ({c_out}×{c_in})")
    with cols[1]:
        grid(pointwise.pixels, f"X as {c_in}×9 (a column per pixel)")
    with cols[2]:
        grid(pointwise.product, f"W·X ({c_out}×9)")
    agreement(pointwise.output, pointwise.torch_output, f"nn.Conv2d({c_in}, {c_out}, 1, bias=False)")
    notice(
        "Each output channel has its own kernel for every input channel, and the input channels' results are "
        "added; output channels are simply stacked. A 1×1 kernel mixes channels pixel by pixel, which is one "
        "matrix product with the pixels as columns."
    )


def matrix_multiplication() -> None:
    cols = st.columns(6)
    size = cols[0].slider("Input size", 2, 6, **ui.keep("learn-mm-size", 4))
    kernel = cols[1].slider("Kernel", 1, 4, **ui.keep("learn-mm-kernel", 2))
    stride = cols[2].slider("Stride", 1, 3, **ui.keep("learn-mm-stride", 1))
    padding = cols[3].slider("Padding", 0, 2, **ui.keep("learn-mm-padding", 0))
    chans = cols[4].slider("Input channels", 1, 2, **ui.keep("learn-mm-in", 1))
    c_out = cols[5].slider("Output channels", 1, 2, **ui.keep("learn-mm-out", 1))
    lesson = convolution.unfold_lesson(size, kernel, stride, padding, chans, c_out, seed=0)
    st.latex(r"\underbrace{Y}_{C_\text{out}\times L} = \underbrace{W}_{C_\text{out}\times C_\text{in}k^2}\;"
             r"\underbrace{\operatorname{unfold}(X)}_{C_\text{in}k^2\times L}")  # fmt: skip
    cols = st.columns(chans)
    for c in range(chans):
        with cols[c]:
            grid(lesson.x[c], f"X channel {c}")
    cols = st.columns([1, 3])
    with cols[0]:
        grid(lesson.rows, "kernels as rows")
    with cols[1]:
        grid(lesson.columns, f"F.unfold(X): a column per window ({lesson.columns.shape[1]})")
    st.caption("Rows of the unfolded matrix, top to bottom: " + ", ".join(lesson.column_labels))
    cols = st.columns([3, 1])
    with cols[0]:
        grid(lesson.product, "kernel rows × unfolded X")
    with cols[1]:
        for o in range(c_out):
            grid(lesson.output[o], f"reshaped, channel {o}")
    agreement(lesson.output, lesson.torch_output, "F.conv2d")
    notice(
        "Unfolding copies every window into a column, so the whole convolution becomes one matrix product — "
        "which is how fast libraries compute it. The price is memory: each input cell is copied into up to "
        "k² columns."
    )


def pooling() -> None:
    st.latex(r"\text{max: } Y_{i,j} = \max_{a,b} X_{si+a,\,sj+b} \qquad \text{avg: } Y_{i,j} = \tfrac{1}{k^2}\sum_{a,b} X_{si+a,\,sj+b}")  # fmt: skip
    cols = st.columns(4)
    mode = cols[0].radio("Pooling", ("max", "avg"), horizontal=True, **ui.keep("learn-pool-mode", "max"))
    kernel = cols[1].slider("Kernel", 1, 4, **ui.keep("learn-pool-kernel", 2))
    stride = cols[2].slider("Stride", 1, 4, **ui.keep("learn-pool-stride", 1))
    padding = cols[3].slider("Padding", 0, 2, **ui.keep("learn-pool-padding", 0))
    st.caption("Input X — edit any cell")
    x = st.data_editor(_frame(np.arange(16.0).reshape(4, 4)), key="learn-pool-x", hide_index=True)
    lesson = lesson_layers.pool_lesson(x.to_numpy(dtype=float), kernel, stride, padding, mode)
    oh, ow = lesson.output.shape
    if st.session_state.get("learn-pool-position", 0) >= oh * ow:
        st.session_state["learn-pool-position"] = 0
    position = (
        st.slider("Output cell", 0, oh * ow - 1, **ui.keep("learn-pool-position", 0)) if oh * ow > 1 else 0
    )
    row, col = divmod(position, ow)
    padded = np.pad(lesson.x, padding, constant_values=-np.inf if mode == "max" else 0.0)
    inside = np.pad(np.ones_like(lesson.x, dtype=bool), padding, constant_values=False)
    cols = st.columns(2)
    with cols[0]:
        window = (row * stride, col * stride, kernel, kernel)
        grid(padded, "X, padded (grey)", highlight=[window], mask=inside)
    with cols[1]:
        grid(lesson.output, f"{mode} pool by hand", highlight=[(row, col, 1, 1)])
    layer = "nn.MaxPool2d" if mode == "max" else "nn.AvgPool2d"
    agreement(lesson.output, lesson.torch_output, f"{layer}({kernel}, {stride}, {padding})")
    st.subheader("Small shift invariance")
    shift = lesson_layers.shift_lesson(kernel, stride, mode)
    cols = st.columns(4)
    for col, values, title in zip(
        cols,
        (shift.x, shift.shifted, shift.pooled, shift.pooled_shifted),
        ("edge map", "shifted 1 px right", "pooled", "pooled, shifted"),
        strict=True,
    ):
        with col:
            grid(values, title, zmid=0.0, colorscale="RdBu", decimals=1)
    st.metric(
        "Cells unchanged by the shift",
        f"{shift.same_after:.0%} after pooling",
        f"{shift.same_after - shift.same_before:+.0%} vs {shift.same_before:.0%} before",
    )
    notice(
        "Max pooling keeps the strongest value in each window, so an edge that moves by one pixel often lands "
        "in the same window and the pooled map barely changes. Padding for max pooling is −∞, for average "
        "pooling 0 (counted in the average by default)."
    )


# --------------------------------------------------------------------------------------------------
# 7–8


def normalisation() -> None:
    kinds = list(lesson_layers.NORMS)
    cols = st.columns(5)
    kind = cols[0].radio("Layer", kinds, **ui.keep("learn-norm-kind", "BatchNorm", options=kinds))
    n = cols[1].slider("Batch N", 1, 4, **ui.keep("learn-norm-n", 3))
    c = cols[2].slider("Channels C", 1, 6, **ui.keep("learn-norm-c", 4))
    groups = cols[3].slider("Groups G", 1, 6, **ui.keep("learn-norm-groups", 2), disabled=kind != "GroupNorm")
    size = cols[4].slider("H = W", 1, 4, **ui.keep("learn-norm-size", 2))
    st.latex(r"y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta,\qquad \epsilon = 10^{-5}")
    lesson = lesson_layers.norm_lesson(kind, n, c, size, groups, seed=0)
    st.markdown(f"**{kind}** normalises {lesson_layers.NORMS[kind]}.")
    cols = st.columns(2)
    for key, limit in (("learn-norm-pick-n", n), ("learn-norm-pick-c", c)):
        if st.session_state.get(key, 0) >= limit:
            st.session_state[key] = 0
    pick_n = cols[0].slider("Pick sample n", 0, n - 1, **ui.keep("learn-norm-pick-n", 0)) if n > 1 else 0
    pick_c = cols[1].slider("Pick channel c", 0, c - 1, **ui.keep("learn-norm-pick-c", 0)) if c > 1 else 0
    selected = int(lesson.stat_ids[pick_n, pick_c])
    title = f"Each cell is one {size}×{size} slice; orange = averaged together with (n{pick_n}, c{pick_c})"
    st.plotly_chart(plots_learn.norm_figure(lesson.stat_ids, lesson.means, selected, title), **FIT)
    slots = int(lesson.stat_ids.max()) + 1
    st.caption(
        f"{slots} mean(s) and variance(s) for this tensor; the orange one: μ = {lesson.means[selected]:.4f}, "
        f"σ² = {lesson.variances[selected]:.4f} over {int((lesson.stat_ids == selected).sum()) * size * size} values."
    )
    agreement(
        lesson.output,
        lesson.torch_output,
        f"nn.{kind}{'2d' if kind in ('BatchNorm', 'InstanceNorm') else ''}",
    )
    st.subheader("BatchNorm's running statistics: train vs eval")
    cols = st.columns(2)
    momentum = cols[0].slider("Momentum", 0.01, 1.0, step=0.01, **ui.keep("learn-norm-momentum", 0.1))
    batches = cols[1].slider("Training batches", 1, 60, **ui.keep("learn-norm-batches", 10))
    st.latex(r"\hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu_\text{batch},\qquad \hat\sigma^2 \leftarrow (1-m)\,\hat\sigma^2 + m\,s^2_\text{batch}")  # fmt: skip
    running = lesson_layers.batchnorm_running(batches, momentum)
    st.plotly_chart(plots_learn.running_stats_figure(running.running_means, running.batch_means), **FIT)
    agreement(running.running_means[-1], running.torch_running_mean, "nn.BatchNorm2d.running_mean")
    agreement(running.running_vars[-1], running.torch_running_var, "nn.BatchNorm2d.running_var")
    gap = float(np.abs(running.train_output - running.eval_output).max())
    st.metric("Same batch, train vs eval output: largest difference", f"{gap:.3f}")
    notice(
        "All four layers compute the same formula and differ only in which values share a mean; BatchNorm is "
        "the only one that mixes samples, so it depends on the batch. In eval mode it uses the running "
        "averages instead, which start at 0 and 1 and only slowly reach the data's statistics."
    )


def dropout() -> None:
    cols = st.columns(2)
    p = cols[0].slider("Drop probability p", 0.0, 0.9, step=0.05, **ui.keep("learn-drop-p", 0.5))
    seed = cols[1].number_input("Random masks (seed)", 0, 999, **ui.keep("learn-drop-seed", 0))
    lesson = lesson_layers.dropout_lesson(float(p), int(seed))
    st.latex(
        rf"y = \begin{{cases}} 0 & \text{{with probability }} p \\ \dfrac{{x}}{{1-p}} = {lesson.scale:.3g}\,x & "
        rf"\text{{otherwise}} \end{{cases}} \qquad \mathbb{{E}}[y] = x"
    )
    cols = st.columns(2)
    with cols[0]:
        grid(lesson.x, "x", decimals=1)
        grid(lesson.eval_output, "model.eval(): y = x", decimals=1)
    with cols[1]:
        for i in range(2):
            kept = lesson.kept[i]
            grid(
                lesson.train_outputs[i],
                f"model.train(), pass {i + 1}: {kept.sum()} of 32 kept",
                decimals=1,
                mask=kept,
            )
    grid(lesson.average, f"average of {lesson.samples} train passes ≈ x", decimals=1)
    notice(
        "In training every pass drops a different random set and scales the survivors by 1/(1 − p), so the "
        "expected value stays x; in eval mode dropout does nothing. Forgetting `model.eval()` makes "
        "predictions random and weaker."
    )


# --------------------------------------------------------------------------------------------------
# 9–10


@st.cache_data(show_spinner=False, max_entries=16)
def _trace(name: str, mistake: bool = False) -> networks.NetworkTrace:
    return networks.trace_network(name, mistake=mistake)


def _open_in_editor(preset: str) -> None:
    state = st.session_state
    state["stack-preset"] = preset
    state["stack-in-c"], state["stack-in-h"], state["stack-in-w"] = PRESETS[preset].input_shape
    state["stack-residual"] = PRESETS[preset].residual
    state["stack-version"] = state.get("stack-version", 0) + 1


def _trace_frame(result: networks.NetworkTrace) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": row.name,
            "type": row.kind,
            "output": "×".join(map(str, row.output_shape[1:])),
            "params": row.params,
            "MACs": row.macs,
            "receptive field": "all"
            if row.receptive_field is None
            else "×".join(map(str, row.receptive_field)),
        }
        for row in result.trace.rows
    )


def classic_networks() -> None:
    names = list(networks.NETWORKS)
    name = st.radio("Network", names, horizontal=True, **ui.keep("learn-net", names[0], options=names))
    network = networks.NETWORKS[name]
    st.markdown(network.idea)
    result = _trace(name)
    cols = st.columns(4)
    cols[0].metric("Input", "×".join(map(str, network.input_shape)))
    cols[1].metric("Output", "×".join(map(str, (result.output_shape or ())[1:])))
    cols[2].metric("Parameters", f"{result.trace.total_params:,}")
    cols[3].metric("MACs", f"{result.total_macs / 1e6:,.1f} M")
    st.caption(network.reference)
    st.dataframe(_trace_frame(result), hide_index=True, height=min(38 + 35 * len(result.trace.rows), 480))
    if network.correction:
        st.warning(f"**The tutorial's mistake.** {network.correction}", icon=":material/rule:")
    if network.mistake is not None:
        st.caption(f"Tracing the tutorial's version: {_trace(name, True).trace.diagnosis}")
    if network.preset and st.button(
        "Open in the layer-stack editor", key="learn-net-open", icon=":material/open_in_new:"
    ):
        _open_in_editor(network.preset)
        st.switch_page(ui.PAGES["calculator"])
    notice(
        "Read the output column top to bottom to see the map shrink while the channels grow; the params column "
        "shows where the weights live (mostly in the fully connected head, when there is one)."
    )


def trained_network() -> None:
    runs = [run for run in list_runs() if run.has_checkpoint("best")]
    if not runs:
        st.info(
            "No trained run yet: train one and come back to see its filters and feature maps.",
            icon=":material/info:",
        )
        st.page_link(ui.PAGES["training"], label="Train a model", icon=":material/model_training:")
        return
    names = [run.name for run in runs]
    cols = st.columns(2)
    name = cols[0].selectbox("Run", names, **ui.keep("learn-run", names[0], options=names))
    run = runs[names.index(name)]
    model = ui.load_model(run, "best")
    val = ui.run_dataset(run).val
    if st.session_state.get("learn-run-index", 0) >= len(val):
        st.session_state["learn-run-index"] = 0
    index = cols[1].number_input(
        f"Validation image (0–{len(val) - 1})", 0, max(len(val) - 1, 0), **ui.keep("learn-run-index", 0)
    )
    image, _ = val[int(index)]
    conv_name, conv = features.first_conv(model)
    maps = features.feature_maps(model, conv_name, run.preprocess([image]))
    cols = st.columns([1, 2, 3])
    cols[0].image(plots_cam.model_view(image, run.image_size), caption="the image", width=140)
    filters = plots_cam.filter_grid(features.filter_images(model), ncols=4, min_side=64)
    cols[1].image(
        filters, caption=f"{conv_name}: {conv.out_channels} filters (colour = RGB weights)", width="stretch"
    )
    tiles = plots_cam.feature_map_grid(maps, ncols=6, min_side=64)
    cols[2].image(tiles, caption=f"{conv_name}: its feature maps for this image", width="stretch")
    st.page_link(ui.PAGES["gradcam"], label="See where it looks in Grad-CAM", icon=":material/visibility:")
    notice(
        "First-layer filters are small edge and colour detectors; each feature map lights up where its filter "
        "matches the image. Deeper layers combine these into parts and objects."
    )


LESSONS: dict[str, Callable[[], None]] = {
    "1 · Cross-correlation step by step": cross_correlation,
    "2 · Learning a kernel": learning_a_kernel,
    "3 · Padding and stride": padding_and_stride,
    "4 · Channels": channels,
    "5 · Convolution as matrix multiplication": matrix_multiplication,
    "6 · Pooling": pooling,
    "7 · Normalisation layers": normalisation,
    "8 · Dropout in train and eval": dropout,
    "9 · Classic networks": classic_networks,
    "10 · What a trained network sees": trained_network,
}

st.title("Learn")
st.caption(
    "The tutorials' lessons as small experiments; every number is computed by hand and checked against PyTorch."
)
lesson = st.selectbox(
    "Lesson", list(LESSONS), **ui.keep("learn-lesson", next(iter(LESSONS)), options=list(LESSONS))
)
with ui.user_errors():
    LESSONS[lesson]()
