"""The Learn page's figures: pure functions, checked without a browser."""

from __future__ import annotations

import numpy as np
import pytest

from cnndash.lessons import learn_kernel
from cnndash.lessons import pool_norm_dropout as lesson_layers
from cnndash.plots import learn as plots_learn


def test_grid_figure_shows_every_number_and_the_highlight():
    values = np.array([[0.0, -0.0, 1.5], [2.0, 3.25, -4.0]])
    fig = plots_learn.grid_figure(values, "X", highlight=[(0, 1, 2, 2)], decimals=1)
    heat = fig.data[0]
    assert heat.text.tolist() == [["0", "0", "1.5"], ["2", "3.2", "-4"]]  # −0 shows as 0
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (0.5, 2.5, -0.5, 1.5)
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 on top, like the matrix


def test_grid_figure_masks_cells_and_refuses_other_ranks():
    mask = np.array([[True, False]])
    fig = plots_learn.grid_figure(np.array([[1.0, 2.0]]), mask=mask)
    assert np.isnan(fig.data[0].z[0][1]) and fig.data[0].text[0][1] == "2"
    with pytest.raises(ValueError, match="2-D"):
        plots_learn.grid_figure(np.zeros(3))


def test_grid_figure_with_infinite_padding_stays_drawable():
    padded = np.pad(np.ones((2, 2)), 1, constant_values=-np.inf)
    inside = np.pad(np.ones((2, 2), bool), 1, constant_values=False)
    fig = plots_learn.grid_figure(padded, mask=inside)
    assert fig.data[0].text[0][0] == "-inf" and fig.data[0].zmin == 1.0


def test_loss_and_kernel_figures_mark_divergence():
    lesson = learn_kernel.learn_kernel(0.1, 100)
    fig = plots_learn.loss_figure(lesson.losses, lesson.diverged_at)
    assert fig.layout.yaxis.type == "log"
    assert f"diverged at step {lesson.diverged_at}" in fig.layout.annotations[0].text
    assert len(plots_learn.loss_figure(lesson.losses).layout.annotations) == 0
    kernels = plots_learn.kernel_figure(lesson.kernels, [1.0, -1.0])
    assert [trace.name for trace in kernels.data] == ["w0", "w1"]
    assert [shape.y0 for shape in kernels.layout.shapes] == [1.0, -1.0]


def test_norm_figure_highlights_one_statistic():
    lesson = lesson_layers.norm_lesson("GroupNorm", 2, 4, 2, groups=2)
    fig = plots_learn.norm_figure(lesson.stat_ids, lesson.means, selected=1)
    z = np.array(fig.data[0].z)
    assert z.tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]  # sample 0, channels 2–3 share statistic 1
    assert fig.data[0].text[0][2] == f"μ={lesson.means[1]:.2f}"


def test_running_stats_figure_has_a_line_and_dots_per_channel():
    lesson = lesson_layers.batchnorm_running(5, 0.1, channels=2)
    fig = plots_learn.running_stats_figure(lesson.running_means, lesson.batch_means)
    assert len(fig.data) == 4
    assert len(fig.data[0].y) == 6 and list(fig.data[1].x) == [1, 2, 3, 4, 5]
