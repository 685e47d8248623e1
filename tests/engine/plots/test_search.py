"""The search's parallel-coordinates figure (cnndash.plots.search): one axis per varied setting plus the
validation accuracy, lines coloured by it; categories as ticks, the learning rate on a log10 axis."""

from __future__ import annotations

import math

import pytest

from cnndash.plots.search import parallel_coordinates_figure

ROWS = [
    {"number": 0, "lr": 3e-3, "model": "lenet", "value": 0.9, "state": "complete"},
    {"number": 1, "lr": 1e-3, "model": "vgg", "value": 0.5, "state": "pruned"},
    {"number": 2, "lr": 2e-2, "model": "vgg", "value": None, "state": "failed"},
]


def test_one_axis_per_setting_and_the_accuracy_coloured_by_it():
    fig = parallel_coordinates_figure(ROWS)
    (trace,) = fig.data
    assert trace.type == "parcoords"
    dims = {d.label: d for d in trace.dimensions}
    assert list(dims) == ["model", "learning rate (log)", "validation accuracy"]
    assert list(dims["model"].ticktext) == ["lenet", "vgg"] and list(dims["model"].values) == [0, 1]
    assert list(dims["learning rate (log)"].values) == pytest.approx([math.log10(3e-3), -3.0])
    assert "0.001" in dims["learning rate (log)"].ticktext and "0.003" in dims["learning rate (log)"].ticktext
    assert list(trace.line.color) == [0.9, 0.5] and list(dims["validation accuracy"].values) == [0.9, 0.5]
    assert fig.layout.meta["left_out"] == 1  # the failed trial has no accuracy to colour


def test_a_search_of_the_learning_rate_only_has_two_axes():
    fig = parallel_coordinates_figure([{"number": 0, "lr": 1e-3, "value": 0.7, "state": "complete"}])
    assert [d.label for d in fig.data[0].dimensions] == ["learning rate (log)", "validation accuracy"]
