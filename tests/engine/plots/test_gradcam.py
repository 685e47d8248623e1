"""The Grad-CAM page's pictures (cnndash.plots.gradcam): pixel values, layouts and figure data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnndash.plots import gradcam as plots_cam


def test_heatmap_and_overlay():
    cam = np.zeros((4, 6), dtype=np.float32)
    cam[0, 0] = 1.0
    heat = plots_cam.heatmap_rgb(cam, "jet")
    assert heat.shape == (4, 6, 3) and heat.dtype == np.uint8
    assert heat[0, 0, 0] > 100 and heat[0, 0, 2] < 50  # jet: 1 is red
    assert heat[1, 1, 2] > 100 and heat[1, 1, 0] < 50  # jet: 0 is blue
    image = np.full((4, 6, 3), 200, dtype=np.uint8)
    np.testing.assert_array_equal(plots_cam.overlay(image, cam, "jet", 0.0), image)
    np.testing.assert_array_equal(plots_cam.overlay(image, cam, "jet", 1.0), heat)
    gray = Image.new("L", (12, 8), 128)  # grayscale and a different size: converted and resized
    assert plots_cam.overlay(gray, cam, "gray", 0.5).shape == (4, 6, 3)
    with pytest.raises(ValueError, match="colour map"):
        plots_cam.heatmap_rgb(cam, "rainbow-unicorn")
    with pytest.raises(ValueError, match="Opacity"):
        plots_cam.overlay(image, cam, "jet", 1.5)


def test_overlay_keeps_rgb_channel_order():
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    out = plots_cam.overlay(red, np.zeros((4, 4), dtype=np.float32), "gray", 0.0)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(plots_cam.model_view(red, 2)[0, 0]) == (255, 0, 0)


def test_grids_and_png():
    maps = np.random.default_rng(0).normal(size=(5, 4, 4)).astype(np.float32)
    grid = plots_cam.feature_map_grid(maps, ncols=3, min_side=8)
    assert grid.shape == (2 * (8 + 2) + 2, 3 * (8 + 2) + 2, 3)
    filters = np.random.default_rng(1).uniform(size=(6, 5, 5, 1)).astype(np.float32)
    gap = plots_cam.FILTER_GAP_PX  # filters are set apart more than feature maps
    assert plots_cam.filter_grid(filters, ncols=6, min_side=5).shape == (5 + 2 * gap, 6 * (5 + gap) + gap, 3)
    labelled = plots_cam.filter_grid(filters, ncols=3, min_side=100, labels=[f"#{i}" for i in range(6)])
    side = 5 * 20  # 5×5 weights enlarged by a whole factor to at least 100 px
    assert labelled.shape == (2 * (side + plots_cam.LABEL_STRIP + gap) + gap, 3 * (side + gap) + gap, 3)
    png = plots_cam.png_bytes(grid)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), grid)


def test_probability_figure():
    fig = plots_cam.probability_figure(["a", "b", "c"], [0.2, 0.7, 0.1], top=2)
    bar = fig.data[0]
    assert list(bar.y) == ["a", "b"]  # most probable on top (last in a horizontal bar chart)
    assert list(bar.x) == pytest.approx([0.2, 0.7])


def test_to_rgb_uint8_accepts_grey_float_and_pil_images():
    grey = np.array([[0.0, 0.5], [1.0, 0.25]], dtype=np.float32)  # floats in [0, 1] are scaled to 0..255
    out = plots_cam.to_rgb_uint8(grey)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[:, :, 0].tolist() == [[0, 128], [255, 64]]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # grey stays grey
    assert plots_cam.to_rgb_uint8(np.full((1, 1, 1), 300.0))[0, 0].tolist() == [255, 255, 255]  # clipped
    assert plots_cam.to_rgb_uint8(Image.new("L", (3, 2), 7)).shape == (2, 3, 3)
    with pytest.raises(ValueError, match="shape"):
        plots_cam.to_rgb_uint8(np.zeros((2, 2, 4), dtype=np.uint8))


def test_heatmap_clips_out_of_range_and_nan_values():
    cam = np.array([[-1.0, np.nan, 2.0]], dtype=np.float32)
    np.testing.assert_array_equal(
        plots_cam.heatmap_rgb(cam, "gray"), plots_cam.heatmap_rgb(np.array([[0.0, 0.0, 1.0]]), "gray")
    )
    assert plots_cam.heatmap_rgb(np.array([[0.0, 1.0]]), "gray").tolist() == [[[0, 0, 0], [255, 255, 255]]]


def test_overlay_blends_linearly():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    cam = np.ones((2, 2), dtype=np.float32)  # white in "gray"
    out = plots_cam.overlay(image, cam, "gray", 0.25)
    assert out.tolist() == [[[139] * 3] * 2] * 2  # 0.75 * 100 + 0.25 * 255 = 138.75, rounded


def test_upscale_and_image_grid_layout():
    tile = np.arange(4, dtype=np.uint8).reshape(2, 2)
    big = plots_cam.upscale(np.stack([tile] * 3, axis=-1), 3)
    assert big.shape == (6, 6, 3) and big[:3, :3, 0].tolist() == [[0] * 3] * 3 and big[5, 5, 0] == 3
    assert plots_cam.upscale(tile, 0).shape == (2, 2)  # factors below 1 leave the image alone
    tiles = [np.full((2, 3, 3), v, dtype=np.uint8) for v in (10, 20, 30)]
    grid = plots_cam.image_grid(tiles, ncols=2, pad=1, background=255)
    assert grid.shape == (2 * (2 + 1) + 1, 2 * (3 + 1) + 1, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 5, 0] == 20 and grid[4, 1, 0] == 30
    assert grid[0, 0, 0] == 255 and grid[4, 5, 0] == 255  # padding and the empty fourth cell
    with pytest.raises(ValueError, match="No images"):
        plots_cam.image_grid([])


def test_feature_map_grid_scales_each_map_and_blanks_constant_ones():
    maps = np.stack([np.array([[0.0, 10.0]]), np.full((1, 2), 5.0)]).astype(np.float32)
    grid = plots_cam.feature_map_grid(maps, cmap="gray", ncols=2, min_side=2)
    # each 1x2 map is enlarged 1x (its longest side already reaches 2 px) and framed by 2 px of padding
    assert grid.shape == (1 + 2 * 2, 2 * (2 + 2) + 2, 3)
    assert grid[2, 2:4, 0].tolist() == [0, 255]  # its own min -> black, max -> white
    assert grid[2, 6:8, 0].tolist() == [0, 0]  # a constant map carries nothing: all black
    with pytest.raises(ValueError, match="feature maps"):
        plots_cam.feature_map_grid(np.zeros((0, 2, 2)))


def test_probability_figure_labels_colours_and_height():
    fig = plots_cam.probability_figure(["cat", "dog", "owl"], [0.1, 0.6, 0.3])
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["cat", "owl", "dog"]  # most probable last: drawn on top
    assert list(bar.text) == ["10.0%", "30.0%", "60.0%"]
    assert list(bar.marker.color) == ["#1f77b4", "#1f77b4", "#d62728"]  # the prediction stands out
    assert fig.layout.xaxis.title.text == "probability" and tuple(fig.layout.xaxis.range) == (0, 1)
    assert fig.layout.height == max(160, 28 * 3 + 60)


def test_labelled_grid_and_grayscale_model_view():
    import numpy as np
    from PIL import Image

    from cnndash.plots import gradcam as plots_cam

    tiles = [np.full((20, 30, 3), 128, np.uint8)] * 3
    plain = plots_cam.image_grid(tiles, ncols=3)
    labelled = plots_cam.image_grid(tiles, ncols=3, labels=["features.0", "features.3", "x"])
    assert labelled.shape[0] == plain.shape[0] + plots_cam.LABEL_STRIP
    assert (labelled[2 : 2 + plots_cam.LABEL_STRIP] < 128).any()  # the labels are drawn
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    grey = plots_cam.model_view(red, 8, channels=1)
    assert grey.shape == (8, 8, 3) and (grey[..., 0] == grey[..., 1]).all()
    assert (plots_cam.model_view(red, 8)[..., 0] == 255).all()


def test_what_the_model_sees_is_its_input_with_transparency_on_white():
    """Grad-CAM's "what the model sees", the gallery sheets and the augmentation preview show a transparent
    image exactly as training decodes it (on white), not as PIL's convert would (on black)."""
    from cnndash.augment import augment_samples
    from cnndash.plots.dataset import contact_sheet
    from cnndash.preprocess import image_to_uint8
    from tests.fixtures import transparent_png

    sticker = transparent_png()  # a red square on transparent black
    for channels in (1, 3):
        seen = plots_cam.model_view(sticker, 32, channels)
        model_input = image_to_uint8(sticker, channels=channels, size=32).permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(seen, np.repeat(model_input, 3 // channels, axis=-1))
        assert tuple(seen[0, 0]) == (255, 255, 255)
    assert tuple(contact_sheet([sticker], columns=1, cell=48).getpixel((0, 0))) == (255, 255, 255)
    (preview,) = augment_samples([], sticker, n=1)
    assert preview.mode == "RGB" and preview.getpixel((0, 0)) == (255, 255, 255)
    assert tuple(plots_cam.to_rgb_uint8(sticker)[0, 0]) == (255, 255, 255)
