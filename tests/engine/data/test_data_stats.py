"""cnndash.data.compute_mean_std: the same statistics training normalises with."""

from __future__ import annotations

import numpy as np
import pytest

from cnndash.data import DatasetError, ImageList, compute_mean_std, load_dataset
from cnndash.preprocess import array_to_uint8, channel_stats, images_to_uint8, stats_indices
from tests.engine.data.test_data import make_folder


def test_compute_mean_std_matches_numpy_for_memory_and_files(tmp_path):
    ds = load_dataset("shapes:count=30,size=16")
    mean, std = compute_mean_std(ds.train)
    pixels = ds.train.uint8_array().astype(np.float64) / 255
    assert np.allclose(mean, pixels.mean(axis=(0, 1, 2))) and np.allclose(std, pixels.std(axis=(0, 1, 2)))
    assert len(mean) == 3
    # Two differently coloured training images per class, so the std is not floored (see below).
    make_folder(tmp_path / "ds", {"a": 4, "b": 4}, size=(4, 4), mode="L")
    folder = load_dataset(tmp_path / "ds", val_fraction=0.5)
    assert len(folder.train) == 4
    values = np.concatenate(
        [np.asarray(folder.train[i][0], dtype=float).ravel() / 255 for i in range(len(folder.train))]
    )
    fmean, fstd = compute_mean_std(folder.train)
    assert np.allclose(fmean, [values.mean()]) and np.allclose(fstd, [values.std()])
    assert values.std() > 0.01


def test_compute_mean_std_is_channel_stats_of_the_decoded_split_for_memory_and_files(tmp_path):
    """The Data page's numbers are training's: channel_stats of the split decoded at the training size."""
    ds = load_dataset("shapes:count=30,size=16")
    array = ds.train.uint8_array()
    picks = stats_indices(len(ds.train))
    for size in (16, 24, 9):
        expected = channel_stats(array_to_uint8(array[picks], size=size))
        assert compute_mean_std(ds.train, size=size) == expected
    assert compute_mean_std(ds.train) == channel_stats(array_to_uint8(array, size=16))
    # A grayscale in-memory split measured as RGB: decoded through PIL like training does.
    digits = load_dataset("digits").train
    gray_as_rgb = images_to_uint8([digits[int(i)][0] for i in stats_indices(len(digits))], channels=3, size=8)
    mean, std = compute_mean_std(digits, channels=3)
    assert (mean, std) == channel_stats(gray_as_rgb) and len(mean) == 3 and mean[0] == mean[1] == mean[2]
    make_folder(tmp_path / "ds", {"a": 4, "b": 4}, size=(6, 6), mode="RGB")
    files = load_dataset(tmp_path / "ds", val_fraction=0.5).train
    decoded = images_to_uint8([files[i][0] for i in range(len(files))], channels=3, size=12)
    assert compute_mean_std(files, size=12) == channel_stats(decoded)


def test_compute_mean_std_measures_the_images_training_measures_on_big_splits():
    ds = load_dataset("shapes:count=2400,size=16", val_fraction=0.1)
    n = len(ds.train)
    picks = stats_indices(n)
    assert len(picks) < n  # more images than are measured: the evenly spaced picks count, not all
    expected = channel_stats(array_to_uint8(ds.train.uint8_array()[picks], size=16))
    assert compute_mean_std(ds.train) == expected


def test_compute_mean_std_floors_a_constant_channel_like_training():
    constant = np.full((1, 5, 5, 3), 7, dtype=np.uint8)
    mean, std = compute_mean_std(ImageList([0], array=constant))
    assert mean == pytest.approx([7 / 255] * 3) and std == [0.001] * 3


def test_compute_mean_std_needs_a_size_for_mixed_or_non_square_images(tmp_path):
    make_folder(tmp_path / "wide", {"a": 2, "b": 2}, size=(4, 6))
    wide = load_dataset(tmp_path / "wide", val_fraction=0.5).train
    with pytest.raises(DatasetError, match=r"4×6 pixels, not square; pass size="):
        compute_mean_std(wide)
    assert len(compute_mean_std(wide, size=5)[0]) == 3
    make_folder(tmp_path / "mixed", {"a": 2}, size=(4, 4))
    make_folder(tmp_path / "mixed", {"b": 2}, size=(8, 8))
    mixed = load_dataset(tmp_path / "mixed", val_fraction=0.5).train
    with pytest.raises(DatasetError, match=r"different sizes .* pass size="):
        compute_mean_std(mixed)
    with pytest.raises(DatasetError, match="empty"):
        compute_mean_std(mixed.subset([]))
    with pytest.raises(DatasetError, match="channels must be 1"):
        compute_mean_std(mixed, channels=4, size=4)
