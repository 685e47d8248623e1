"""cnndash.plots.dataset: the Data page's figures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnndash.plots.dataset import class_counts_figure, contact_sheet, image_sizes_figure


def test_class_counts_figure_stacks_train_and_val():
    fig = class_counts_figure(["a", "b"], {"train": {"a": 4, "b": 3}, "val": {"a": 1, "b": 1}})
    assert [t.name for t in fig.data] == ["train", "val"]
    assert list(fig.data[0].y) == [4, 3] and list(fig.data[1].y) == [1, 1]
    assert fig.layout.barmode == "stack" and list(fig.data[0].x) == ["a", "b"]


def test_image_sizes_figure_has_one_point_per_size():
    fig = image_sizes_figure({(32, 48): 10, (64, 64): 1})
    (trace,) = fig.data
    assert list(trace.x) == [48, 64] and list(trace.y) == [32, 64]
    assert trace.marker.size[0] > trace.marker.size[1]


def test_contact_sheet_places_every_image():
    tiles = [
        Image.new("RGB", (8, 8), (255, 0, 0)),
        Image.new("L", (4, 8), 255),
        Image.new("RGB", (8, 8), (0, 0, 255)),
    ]
    sheet = contact_sheet(tiles, columns=2, cell=16, gap=2)
    assert sheet.size == (34, 34) and sheet.mode == "RGB"
    pixels = np.asarray(sheet)
    assert tuple(pixels[8, 8]) == (255, 0, 0)  # first cell, centre
    assert tuple(pixels[8, 18 + 8]) == (255, 255, 255)  # second cell (gray image, white)
    assert tuple(pixels[18 + 8, 8]) == (0, 0, 255)  # third cell on the second row
    with pytest.raises(ValueError):
        contact_sheet([])
