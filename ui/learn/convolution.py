"""Learn's convolution lessons (1–5): cross-correlation step by step, learning a kernel by gradient descent,
padding and stride, channels (and the 1×1 convolution), and convolution as matrix multiplication.

One function per lesson draws its controls, grids and formulas; every number comes from
:mod:`cnndash.lessons.convolution` and :mod:`cnndash.lessons.learn_kernel`, each checked there against
``torch.nn`` and here once more on the page (:func:`ui.learn.widgets.agreement`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import ui
from cnndash.lessons import convolution, learn_kernel
from cnndash.plots import calculator as plots_arith
from cnndash.plots import learn as plots_learn
from cnndash.text import N_
from ui.learn.widgets import FIT, agreement, grid, grid_frame, notice

_ = ui.i18n.translator("learn")
calculator_text = ui.i18n.translator("calculator")  # the calculator's figure and formula, shown here too
CORR_STARTS = {  # kept (ui.keep) by their English names, shown translated
    N_("Tutorial: 3×3 input, 2×2 kernel"): (np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])),
    N_("Edge image 6×8, kernel [1, −1]"): (learn_kernel.edge_image(), learn_kernel.TARGET),
    N_("Random 5×5, 3×3 kernel"): (convolution.random_ints((5, 5), 3), convolution.random_ints((3, 3), 4)),
}
LEARNING_RATES = (0.001, 0.003, 0.01, 0.02, 0.03, 0.033, 0.034, 0.04, 0.06, 0.1)


def cross_correlation() -> None:
    st.latex(r"Y_{i,j} = \sum_{a=0}^{h-1}\sum_{b=0}^{w-1} X_{i+a,\,j+b}\,K_{a,b}")
    start = st.selectbox(
        _("Start from"),
        list(CORR_STARTS),
        format_func=_,
        **ui.keep("learn-corr-start", next(iter(CORR_STARTS))),
    )
    x0, k0 = CORR_STARTS[start]
    left, right = st.columns(2)
    left.caption(_("Input X — edit any cell"))
    number = list(CORR_STARTS).index(start)  # each start gets fresh editors
    x = left.data_editor(grid_frame(x0), key=f"learn-corr-x-{number}", hide_index=True, num_rows="dynamic")
    right.caption(_("Kernel K — edit any cell"))
    k = right.data_editor(grid_frame(k0), key=f"learn-corr-k-{number}", hide_index=True)
    lesson = convolution.correlation_lesson(x.to_numpy(dtype=float), k.to_numpy(dtype=float))
    steps = lesson.steps
    if st.session_state.get("learn-corr-step", 0) >= len(steps):
        st.session_state["learn-corr-step"] = 0
    index = (
        st.slider(_("Window position"), 0, len(steps) - 1, **ui.keep("learn-corr-step", 0))
        if len(steps) > 1
        else 0
    )
    step = steps[index]
    kh, kw = lesson.kernel.shape
    cols = st.columns(3)
    with cols[0]:
        grid(lesson.x, _("X: the window"), highlight=[(step.row, step.col, kh, kw)])
    with cols[1]:
        grid(lesson.kernel, "K")
    with cols[2]:
        grid(lesson.output, "Y = corr2d(X, K)", highlight=[(step.row, step.col, 1, 1)])
    terms = " + ".join(
        f"{a:g}\\cdot{b:g}" for a, b in zip(step.window.ravel(), lesson.kernel.ravel(), strict=True)
    )
    st.latex(rf"Y_{{{step.row},{step.col}}} = {terms} = {step.total:g}")
    agreement(lesson.output, lesson.torch_output, "nn.Conv2d(1, 1, kernel_size, bias=False)")
    st.subheader(_("A true convolution flips the kernel"))
    st.latex(r"(X \star K)_{i,j} = \sum_{a,b} X_{i+a,\,j+b}\,K_{h-1-a,\;w-1-b}")
    cols = st.columns(2)
    with cols[0]:
        grid(lesson.flipped, _("K turned by 180°"))
    with cols[1]:
        grid(lesson.convolution, _("true convolution"))
    notice(
        _(
            "Each output cell is one window of the input multiplied cell by cell with the kernel and summed; "
            "`nn.Conv2d` computes exactly this cross-correlation, it does not flip the kernel. A true "
            "convolution equals cross-correlation with the flipped kernel, and since the kernel is learned, "
            "deep learning never needs the flip."
        )
    )


def learning_a_kernel() -> None:
    st.latex(
        r"L(w) = \sum_{i,j}\big(w_0 X_{i,j} + w_1 X_{i,j+1} - Y_{i,j}\big)^2 \qquad w \leftarrow w - \eta\,\nabla L"
    )
    cols = st.columns(3)
    rate = cols[0].select_slider(_("Learning rate η"), LEARNING_RATES, **ui.keep("learn-kernel-lr", 0.03))
    steps = cols[1].slider(_("Steps"), 1, 60, **ui.keep("learn-kernel-steps", 10))
    seed = cols[2].number_input(_("Random start (seed)"), 0, 999, **ui.keep("learn-kernel-seed", 0))
    lesson = learn_kernel.learn_kernel(float(rate), int(steps), int(seed))
    kernel = lesson.final_kernel
    if lesson.diverged_at is not None:
        st.error(
            _(
                "Diverged: with η = {rate} the loss grew past {limit:.0e} at step {step}, so the run stopped "
                "there. Steps above η = 2/λ_max = {critical:.4f} overshoot the minimum by more each time; "
                "lower the learning rate.",
                rate=rate,
                limit=learn_kernel.DIVERGED_LOSS,
                step=lesson.diverged_at,
                critical=lesson.critical_rate,
            ),
            icon=":material/trending_up:",
        )
    elif lesson.diverging:
        st.error(
            _(
                "Diverging: η = {rate} is above 2/λ_max = {critical:.4f}, so every step overshoots and the "
                "loss grows about ×{growth:.3g} per step; lower the learning rate.",
                rate=rate,
                critical=lesson.critical_rate,
                growth=lesson.growth_per_step,
            ),
            icon=":material/trending_up:",
        )
    metrics = st.columns(3)
    metrics[0].metric(_("Loss after the last step shown"), f"{lesson.losses[-1]:.4g}")
    metrics[1].metric(_("Learned kernel"), f"[{kernel[0]:.3f}, {kernel[1]:.3f}]")
    metrics[2].metric(_("Largest stable η (2 / λ_max)"), f"{lesson.critical_rate:.4f}")
    cols = st.columns(2)
    cols[0].plotly_chart(plots_learn.loss_figure(lesson.losses, lesson.diverged_at, tr=_), **FIT)
    cols[1].plotly_chart(plots_learn.kernel_figure(lesson.kernels, learn_kernel.TARGET[0], tr=_), **FIT)
    cols = st.columns(2)
    with cols[0]:
        grid(lesson.x, "X (6×8)")
    with cols[1]:
        grid(lesson.y, "Y = corr2d(X, [1, −1])", zmid=0.0, colorscale="RdBu")
    notice(
        _(
            "With a small η the loss falls steadily and the kernel settles on [1, −1], the edge detector that "
            "made Y; the tutorial's η = 0.03 sits just under the limit 2/λ_max ≈ 0.033 and zig-zags on the "
            "way. Past that limit every step overshoots further and the loss explodes."
        )
    )


def padding_and_stride() -> None:
    cols = st.columns(4)
    size = cols[0].slider(_("Input size n"), 1, 16, **ui.keep("learn-pad-size", 8))
    kernel = cols[1].slider(_("Kernel k"), 1, 7, **ui.keep("learn-pad-kernel", 3))
    padding = cols[2].slider(_("Padding p"), 0, 4, **ui.keep("learn-pad-padding", 1))
    stride = cols[3].slider(_("Stride s"), 1, 4, **ui.keep("learn-pad-stride", 2))
    st.latex(plots_arith.output_size_latex("Conv2d", "H", size, kernel, stride, padding, tr=calculator_text))
    lesson = convolution.padding_lesson(size, kernel, padding, stride)
    oh, ow = lesson.output
    torch_h, torch_w = lesson.torch_output
    st.caption(
        _(
            "`nn.Conv2d` returns {torch_h}×{torch_w}; the formula says {oh}×{ow}.",
            torch_h=torch_h,
            torch_w=torch_w,
            oh=oh,
            ow=ow,
        )
    )
    if st.session_state.get("learn-pad-position", 0) >= oh * ow:
        st.session_state["learn-pad-position"] = 0
    position = (
        st.slider(_("Output cell"), 0, oh * ow - 1, **ui.keep("learn-pad-position", 0)) if oh * ow > 1 else 0
    )
    figure = plots_arith.sliding_window_figure(
        (size, size),
        (kernel, kernel),
        (stride, stride),
        padding,
        (1, 1),
        (oh, ow),
        divmod(position, ow),
        tr=calculator_text,
    )
    st.plotly_chart(figure, **FIT)
    st.markdown(_("**The tutorial's examples** (8×8 input):"))
    st.dataframe(
        pd.DataFrame(
            {
                "kernel": f"{e.kernel[0]}×{e.kernel[1]}",
                "padding": f"{e.padding[0]}, {e.padding[1]}",
                "stride": f"{e.stride[0]}, {e.stride[1]}",
                _("formula"): f"{e.output[0]}×{e.output[1]}",
                "nn.Conv2d": f"{e.torch_output[0]}×{e.torch_output[1]}",
            }
            for e in convolution.padding_examples()
        ),
        hide_index=True,
    )
    st.page_link(
        ui.PAGES["calculator"], label=_("Try any layer in the conv calculator"), icon=":material/calculate:"
    )
    notice(
        _(
            "Padding p = (k − 1)/2 with stride 1 keeps the size; stride s divides it by about s because the "
            "window only starts at every s-th cell. The floor drops any cells the last window cannot reach."
        )
    )


def channels() -> None:
    cols = st.columns(3)
    c_in = cols[0].slider(_("Input channels"), 1, 3, **ui.keep("learn-ch-in", 2))
    c_out = cols[1].slider(_("Output channels"), 1, 3, **ui.keep("learn-ch-out", 2))
    seed = cols[2].number_input(_("Numbers (seed)"), 0, 999, **ui.keep("learn-ch-seed", 0))
    lesson = convolution.channels_lesson(int(c_in), int(c_out), 3, 2, int(seed))
    st.latex(r"Y_{o} = \sum_{i=0}^{C_\text{in}-1} \operatorname{corr2d}(X_i,\,K_{o,i})")
    if st.session_state.get("learn-ch-show", 0) >= c_out:
        st.session_state["learn-ch-show"] = 0
    shown = st.radio(
        _("Output channel to build"), range(c_out), horizontal=True, **ui.keep("learn-ch-show", 0)
    )
    cols = st.columns(c_in + 1)
    for i in range(c_in):
        with cols[i]:
            grid(lesson.x[i], f"X{i}")
            grid(lesson.kernels[shown, i], f"K{shown},{i}")
            grid(lesson.pairs[shown, i], f"corr2d(X{i}, K{shown},{i})")
    with cols[-1]:
        grid(lesson.output[shown], _("Y{o} = sum", o=shown))
    stacked = ", ".join(f"Y{o}" for o in range(c_out))
    st.markdown(_("**All output channels, stacked:** {channels}", channels=stacked))
    cols = st.columns(c_out)
    for o in range(c_out):
        with cols[o]:
            grid(lesson.output[o], f"Y{o}")
    agreement(lesson.output, lesson.torch_output, f"nn.Conv2d({c_in}, {c_out}, 2, bias=False)")
    st.subheader(_("1×1 convolution = a fully connected layer at every pixel"))
    st.latex(
        r"Y_{:,p} = W\,X_{:,p} \quad\Longrightarrow\quad Y = W \cdot \operatorname{reshape}(X,\ C_\text{in} \times HW)"
    )
    pointwise = convolution.pointwise_lesson(int(c_in), int(c_out), 3, int(seed))
    cols = st.columns(3)
    with cols[0]:
        grid(pointwise.weights, f"W ({c_out}×{c_in})")
    with cols[1]:
        grid(pointwise.pixels, _("X as {c_in}×9 (a column per pixel)", c_in=c_in))
    with cols[2]:
        grid(pointwise.product, f"W·X ({c_out}×9)")
    agreement(pointwise.output, pointwise.torch_output, f"nn.Conv2d({c_in}, {c_out}, 1, bias=False)")
    notice(
        _(
            "Each output channel has its own kernel for every input channel, and the input channels' results "
            "are added; output channels are simply stacked. A 1×1 kernel mixes channels pixel by pixel, which "
            "is one matrix product with the pixels as columns."
        )
    )


def matrix_multiplication() -> None:
    cols = st.columns(6)
    size = cols[0].slider(_("Input size"), 2, 6, **ui.keep("learn-mm-size", 4))
    kernel = cols[1].slider(_("Kernel"), 1, 4, **ui.keep("learn-mm-kernel", 2))
    stride = cols[2].slider(_("Stride"), 1, 3, **ui.keep("learn-mm-stride", 1))
    padding = cols[3].slider(_("Padding"), 0, 2, **ui.keep("learn-mm-padding", 0))
    chans = cols[4].slider(_("Input channels"), 1, 2, **ui.keep("learn-mm-in", 1))
    c_out = cols[5].slider(_("Output channels"), 1, 2, **ui.keep("learn-mm-out", 1))
    lesson = convolution.unfold_lesson(size, kernel, stride, padding, chans, c_out, seed=0)
    st.latex(r"\underbrace{Y}_{C_\text{out}\times L} = \underbrace{W}_{C_\text{out}\times C_\text{in}k^2}\;"
             r"\underbrace{\operatorname{unfold}(X)}_{C_\text{in}k^2\times L}")  # fmt: skip
    cols = st.columns(chans)
    for c in range(chans):
        with cols[c]:
            grid(lesson.x[c], _("X channel {c}", c=c))
    cols = st.columns([1, 3])
    with cols[0]:
        grid(lesson.rows, _("kernels as rows"))
    with cols[1]:
        grid(lesson.columns, _("F.unfold(X): a column per window ({n})", n=lesson.columns.shape[1]))
    rows = ", ".join(lesson.column_labels)
    st.caption(_("Rows of the unfolded matrix, top to bottom: {rows}", rows=rows))
    cols = st.columns([3, 1])
    with cols[0]:
        grid(lesson.product, _("kernel rows × unfolded X"))
    with cols[1]:
        for o in range(c_out):
            grid(lesson.output[o], _("reshaped, channel {o}", o=o))
    agreement(lesson.output, lesson.torch_output, "F.conv2d")
    notice(
        _(
            "Unfolding copies every window into a column, so the whole convolution becomes one matrix product "
            "— which is how fast libraries compute it. The price is memory: each input cell is copied into up "
            "to k² columns."
        )
    )
