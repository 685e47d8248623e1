"""Kernel playground engine: F.conv2d per channel, output sizes, display scaling, image loading."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cnndash.arith import ShapeError, conv_output_size
from cnndash.kernels import KERNELS, KernelError, apply_kernel, load_image, sample_photo, to_display
from cnndash.preprocess import ImageDecodeError


def _reference(plane: np.ndarray, kernel: np.ndarray, stride: int, padding: int, dilation: int) -> np.ndarray:
    """Cross-correlation written out with loops, as PyTorch defines it."""
    padded = np.pad(plane.astype(np.float64), padding)
    kh, kw = kernel.shape
    oh, ow = conv_output_size(plane.shape, kernel.shape, stride, padding, dilation)
    out = np.zeros((oh, ow))
    for r in range(oh):
        for c in range(ow):
            for i in range(kh):
                for j in range(kw):
                    out[r, c] += kernel[i, j] * padded[r * stride + i * dilation, c * stride + j * dilation]
    return out


@pytest.mark.parametrize(("stride", "padding", "dilation"), [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)])
def test_apply_kernel_matches_a_hand_written_convolution_per_channel(stride, padding, dilation):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    kernel = np.asarray(KERNELS["Sobel x"], dtype=np.float32)
    out = apply_kernel(image, kernel, stride, padding, dilation)
    assert out.shape[:2] == conv_output_size((9, 11), 3, stride, padding, dilation)
    for channel in range(3):
        expected = _reference(image[..., channel], kernel, stride, padding, dilation)
        np.testing.assert_allclose(out[..., channel], expected, rtol=1e-5, atol=1e-3)


def test_identity_keeps_the_image_and_grayscale_stays_2d():
    image = np.arange(30, dtype=np.uint8).reshape(5, 6)
    out = apply_kernel(image, KERNELS["identity"], padding=1)
    assert out.shape == (5, 6)
    np.testing.assert_array_equal(to_display(out, KERNELS["identity"]), image)


def test_display_clips_smoothing_and_stretches_edges():
    kernel = KERNELS["Laplacian edge"]
    out = np.array([[-40.0, 0.0], [10.0, 20.0]])
    shown = to_display(out, kernel)
    assert shown.dtype == np.uint8 and shown[0, 0] == 255 and shown[0, 1] == 0
    assert to_display(np.array([[-5.0, 300.0]]), KERNELS["sharpen"]).tolist() == [[0, 255]]


def test_invalid_settings_raise_value_errors():
    image = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(ShapeError):
        apply_kernel(image, KERNELS["box blur"], dilation=3)  # 7 px footprint on a 4 px image
    with pytest.raises(KernelError, match="rectangular"):
        apply_kernel(image, [[1, 2], [3]])
    with pytest.raises(KernelError, match="number"):
        apply_kernel(image, [[1, float("nan")], [0, 1]])


def test_sample_photo_and_upload():
    photo = sample_photo("flower.jpg", max_side=64)
    assert photo.dtype == np.uint8 and photo.ndim == 3 and max(photo.shape[:2]) == 64
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG")
    assert load_image(buffer.getvalue(), max_side=32).shape[2] == 3
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(b"definitely not a picture")
    with pytest.raises(KernelError, match="sample photo"):
        sample_photo("nope.jpg")


def test_images_come_in_grayscale_too_and_uploads_shrink_like_a_thumbnail():
    gray = sample_photo("flower.jpg", max_side=64, grayscale=True)
    assert gray.dtype == np.uint8 and gray.shape == sample_photo("flower.jpg", max_side=64).shape[:2]
    buffer = io.BytesIO()
    Image.new("RGBA", (640, 100), (0, 0, 255, 0)).save(buffer, format="PNG")  # wide and transparent
    rgb = load_image(buffer.getvalue(), max_side=320)
    assert rgb.shape == (50, 320, 3) and (rgb == 255).all()  # transparency composited on white
    expected = Image.new("RGB", (640, 100), (255, 255, 255))
    expected.thumbnail((320, 320), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(rgb, np.asarray(expected))
    assert load_image(buffer.getvalue(), max_side=320, grayscale=True).shape == (50, 320)
    small = io.BytesIO()
    Image.new("RGB", (20, 10)).save(small, format="PNG")
    assert load_image(small.getvalue(), max_side=320).shape == (10, 20, 3)  # never enlarged
