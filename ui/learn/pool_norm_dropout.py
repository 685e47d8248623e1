"""Learn's lessons on the layers around convolutions (6–8): max and average pooling with their small shift
invariance, the four normalisation layers and BatchNorm's running statistics, and dropout in train and eval
mode.

One function per lesson draws its controls, grids and formulas; every number comes from
:mod:`cnndash.lessons.pool_norm_dropout`, checked there against ``torch.nn`` and here once more on the
page (:func:`ui.learn.widgets.agreement`).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from cnndash.lessons import pool_norm_dropout as lesson_layers
from cnndash.plots import learn as plots_learn
from ui.learn.widgets import FIT, agreement, grid, grid_frame, notice

_ = ui.i18n.translator("learn")


def pooling() -> None:
    st.latex(r"\text{max: } Y_{i,j} = \max_{a,b} X_{si+a,\,sj+b} \qquad \text{avg: } Y_{i,j} = \tfrac{1}{k^2}\sum_{a,b} X_{si+a,\,sj+b}")  # fmt: skip
    cols = st.columns(4)
    modes = {"max": _("max"), "avg": _("average")}
    mode = cols[0].radio(
        _("Pooling"),
        tuple(modes),
        format_func=modes.get,
        horizontal=True,
        **ui.keep("learn-pool-mode", "max"),
    )
    kernel = cols[1].slider(_("Kernel"), 1, 4, **ui.keep("learn-pool-kernel", 2))
    stride = cols[2].slider(_("Stride"), 1, 4, **ui.keep("learn-pool-stride", 1))
    padding = cols[3].slider(_("Padding"), 0, 2, **ui.keep("learn-pool-padding", 0))
    st.caption(_("Input X — edit any cell"))
    x = st.data_editor(grid_frame(np.arange(16.0).reshape(4, 4)), key="learn-pool-x", hide_index=True)
    lesson = lesson_layers.pool_lesson(x.to_numpy(dtype=float), kernel, stride, padding, mode)
    oh, ow = lesson.output.shape
    if st.session_state.get("learn-pool-position", 0) >= oh * ow:
        st.session_state["learn-pool-position"] = 0
    position = (
        st.slider(_("Output cell"), 0, oh * ow - 1, **ui.keep("learn-pool-position", 0)) if oh * ow > 1 else 0
    )
    row, col = divmod(position, ow)
    cols = st.columns(2)
    with cols[0]:
        window = (row * stride, col * stride, kernel, kernel)
        grid(lesson.padded, _("X, padded (grey)"), highlight=[window], mask=lesson.inside)
    with cols[1]:
        title = _("max pool by hand") if mode == "max" else _("average pool by hand")
        grid(lesson.output, title, highlight=[(row, col, 1, 1)])
    layer = "nn.MaxPool2d" if mode == "max" else "nn.AvgPool2d"
    agreement(lesson.output, lesson.torch_output, f"{layer}({kernel}, {stride}, {padding})")
    st.subheader(_("Small shift invariance"))
    shift = lesson_layers.shift_lesson(kernel, stride, mode)
    cols = st.columns(4)
    for col, values, title in zip(
        cols,
        (shift.x, shift.shifted, shift.pooled, shift.pooled_shifted),
        (_("edge map"), _("shifted 1 px right"), _("pooled"), _("pooled, shifted")),
        strict=True,
    ):
        with col:
            grid(values, title, zmid=0.0, colorscale="RdBu", decimals=1)
    st.metric(
        _("Cells unchanged by the shift"),
        _("{share:.0%} after pooling", share=shift.same_after),
        _(
            "{change:+.0%} vs {before:.0%} before",
            change=shift.same_after - shift.same_before,
            before=shift.same_before,
        ),
    )
    notice(
        _(
            "Max pooling keeps the strongest value in each window, so an edge that moves by one pixel often "
            "lands in the same window and the pooled map barely changes. Padding for max pooling is −∞, for "
            "average pooling 0 (counted in the average by default)."
        )
    )


# --------------------------------------------------------------------------------------------------
# 7–8


def normalisation() -> None:
    kinds = list(lesson_layers.NORMS)
    cols = st.columns(5)
    kind = cols[0].radio(_("Layer"), kinds, **ui.keep("learn-norm-kind", "BatchNorm", options=kinds))
    n = cols[1].slider(_("Batch N"), 1, 4, **ui.keep("learn-norm-n", 3))
    c = cols[2].slider(_("Channels C"), 1, 6, **ui.keep("learn-norm-c", 4))
    groups = cols[3].slider(
        _("Groups G"), 1, 6, **ui.keep("learn-norm-groups", 2), disabled=kind != "GroupNorm"
    )
    size = cols[4].slider("H = W", 1, 4, **ui.keep("learn-norm-size", 2))
    st.latex(r"y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta,\qquad \epsilon = 10^{-5}")
    lesson = lesson_layers.norm_lesson(kind, n, c, size, groups, seed=0)
    st.markdown(_("**{kind}** normalises {what}.", kind=kind, what=_(lesson_layers.NORMS[kind])))
    cols = st.columns(2)
    for key, limit in (("learn-norm-pick-n", n), ("learn-norm-pick-c", c)):
        if st.session_state.get(key, 0) >= limit:
            st.session_state[key] = 0
    pick_n = cols[0].slider(_("Pick sample n"), 0, n - 1, **ui.keep("learn-norm-pick-n", 0)) if n > 1 else 0
    pick_c = cols[1].slider(_("Pick channel c"), 0, c - 1, **ui.keep("learn-norm-pick-c", 0)) if c > 1 else 0
    selected = int(lesson.stat_ids[pick_n, pick_c])
    title = _(
        "Each cell is one {size}×{size} slice; orange = averaged together with (n{n}, c{c})",
        size=size,
        n=pick_n,
        c=pick_c,
    )
    st.plotly_chart(plots_learn.norm_figure(lesson.stat_ids, lesson.means, selected, title, tr=_), **FIT)
    st.caption(
        _(
            "{count} mean(s) and variance(s) for this tensor; the orange one: μ = {mean:.4f}, σ² = {var:.4f} "
            "over {values} values.",
            count=lesson.stat_count,
            mean=lesson.means[selected],
            var=lesson.variances[selected],
            values=lesson.values_per_stat(selected),
        )
    )
    agreement(
        lesson.output,
        lesson.torch_output,
        f"nn.{kind}{'2d' if kind in ('BatchNorm', 'InstanceNorm') else ''}",
    )
    st.subheader(_("BatchNorm's running statistics: train vs eval"))
    cols = st.columns(2)
    momentum = cols[0].slider(_("Momentum"), 0.01, 1.0, step=0.01, **ui.keep("learn-norm-momentum", 0.1))
    batches = cols[1].slider(_("Training batches"), 1, 60, **ui.keep("learn-norm-batches", 10))
    st.latex(r"\hat\mu \leftarrow (1 - m)\,\hat\mu + m\,\mu_\text{batch},\qquad \hat\sigma^2 \leftarrow (1-m)\,\hat\sigma^2 + m\,s^2_\text{batch}")  # fmt: skip
    running = lesson_layers.batchnorm_running(batches, momentum)
    st.plotly_chart(plots_learn.running_stats_figure(running.running_means, running.batch_means, tr=_), **FIT)
    agreement(running.running_means[-1], running.torch_running_mean, "nn.BatchNorm2d.running_mean")
    agreement(running.running_vars[-1], running.torch_running_var, "nn.BatchNorm2d.running_var")
    st.metric(_("Same batch, train vs eval output: largest difference"), f"{running.train_eval_gap:.3f}")
    notice(
        _(
            "All four layers compute the same formula and differ only in which values share a mean; BatchNorm "
            "is the only one that mixes samples, so it depends on the batch. In eval mode it uses the running "
            "averages instead, which start at 0 and 1 and only slowly reach the data's statistics."
        )
    )


def dropout() -> None:
    cols = st.columns(2)
    p = cols[0].slider(_("Drop probability p"), 0.0, 0.9, step=0.05, **ui.keep("learn-drop-p", 0.5))
    seed = cols[1].number_input(_("Random masks (seed)"), 0, 999, **ui.keep("learn-drop-seed", 0))
    lesson = lesson_layers.dropout_lesson(float(p), int(seed))
    with_probability, otherwise = _("with probability"), _("otherwise")
    st.latex(
        rf"y = \begin{{cases}} 0 & \text{{{with_probability} }} p \\ \dfrac{{x}}{{1-p}} = {lesson.scale:.3g}\,x & "
        rf"\text{{{otherwise}}} \end{{cases}} \qquad \mathbb{{E}}[y] = x"
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
                _("model.train(), pass {n}: {kept} of 32 kept", n=i + 1, kept=kept.sum()),
                decimals=1,
                mask=kept,
            )
    grid(lesson.average, _("average of {n} train passes ≈ x", n=lesson.samples), decimals=1)
    notice(
        _(
            "In training every pass drops a different random set and scales the survivors by 1/(1 − p), so "
            "the expected value stays x; in eval mode dropout does nothing. Forgetting `model.eval()` makes "
            "predictions random and weaker."
        )
    )
