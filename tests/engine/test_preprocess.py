"""Preprocessing: one conversion, resize, normalisation and statistics for every path into a model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cnndash.preprocess import (
    ImageDecodeError,
    array_to_uint8,
    channel_stats,
    convert_mode,
    image_to_uint8,
    images_to_uint8,
    normalize_batch,
    open_image,
    open_preview_image,
    stats_indices,
)


def test_uint8_decoding_is_the_same_for_arrays_and_pil_images():
    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, size=(5, 8, 8, 1), dtype=np.uint8)
    from_array = array_to_uint8(array, size=28)
    from_pil = images_to_uint8([Image.fromarray(a[..., 0], "L") for a in array], channels=1, size=28)
    assert from_array.shape == (5, 1, 28, 28) and from_array.dtype == torch.uint8
    assert torch.equal(from_array, from_pil)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparent_pixels_become_white_in_every_mode(mode):
    clear = Image.new("RGBA", (4, 4), (0, 0, 0, 0)).convert(mode)
    for target in ("L", "RGB"):
        assert np.asarray(convert_mode(clear, target)).min() == 255


def test_normalize_batch_matches_the_formula_for_uint8_and_float():
    x = torch.randint(0, 256, (2, 3, 5, 5), dtype=torch.uint8)
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize_batch(x, mean, std), expected)
    torch.testing.assert_close(normalize_batch(x.float() / 255, mean, std), expected)


def test_channel_stats_match_numpy_and_sampling_is_even_and_deterministic():
    x = torch.randint(0, 256, (7, 2, 6, 6), dtype=torch.uint8)
    mean, std = channel_stats(x)
    pixels = x.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(mean, pixels.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(std, pixels.std(axis=(0, 2, 3)), atol=1e-6)
    picks = stats_indices(10_000, limit=100)
    assert len(picks) == 100 and picks[0] == 0 and picks[-1] == 9_999
    assert np.array_equal(picks, stats_indices(10_000, limit=100))
    assert np.array_equal(stats_indices(5), np.arange(5))
    with pytest.raises(ValueError, match="empty"):
        channel_stats(torch.zeros(0, 3, 2, 2, dtype=torch.uint8))


def test_one_image_resizes_like_the_batch_path_and_uploads_that_are_not_images_are_refused():
    image = Image.new("RGB", (30, 10), (10, 200, 30))
    single = image_to_uint8(image, channels=3, size=16)
    assert single.shape == (3, 16, 16)
    assert torch.equal(images_to_uint8([image], channels=3, size=16)[0], single)
    assert image_to_uint8(image, channels=1, size=16).shape == (1, 16, 16)
    with pytest.raises(ImageDecodeError, match=r"notes\.txt"):
        open_image(b"hello", "notes.txt")


def test_a_preview_upload_is_l_or_rgb_and_at_most_max_side():
    def png(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    big = open_preview_image(png(Image.new("RGBA", (300, 120), (0, 0, 0, 0))), "big.png", 100)
    assert big.mode == "RGB" and big.size == (100, 40)
    assert big.getpixel((0, 0)) == (255, 255, 255)  # transparent pixels become white
    small = open_preview_image(png(Image.new("L", (20, 10), 7)), "small.png", 100)
    assert small.mode == "L" and small.size == (20, 10)  # never enlarged
    with pytest.raises(ImageDecodeError, match=r"notes\.txt"):
        open_preview_image(b"hello", "notes.txt", 100)
