"""cnndash.data: built-ins, image lists, splits and image folders (uploads: test_data_upload.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndash.data import (
    BUILTIN_DATASETS,
    SHAPE_CLASSES,
    DatasetError,
    ImageList,
    ImageSet,
    generate_shapes,
    load_dataset,
    sample_photos,
    stratified_split,
)


def make_folder(root: Path, classes: dict[str, int], *, size=(12, 10), mode="RGB") -> Path:
    """Write ``count`` tiny PNGs per class folder under ``root``."""
    for name, count in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            colour = (i * 20) % 256 if mode == "L" else ((i * 20) % 256, 10, 200)
            Image.new(mode, (size[1], size[0]), colour).save(root / name / f"{i:03d}.png")
    return root


# --- built-ins ----------------------------------------------------------------------------------


def test_builtin_names_listed():
    for name in ("digits", "shapes", "mnist", "fashion_mnist", "cifar10"):
        assert BUILTIN_DATASETS.get(name)


def test_digits_is_8x8_grayscale_uint8_with_ten_classes():
    ds = load_dataset("digits")
    assert isinstance(ds, ImageSet)
    assert ds.classes == [str(i) for i in range(10)]
    assert ds.channels == 1 and ds.image_size == (8, 8)
    assert len(ds.train) + len(ds.val) == 1797
    arr = ds.train.uint8_array()
    assert arr is not None and arr.dtype == np.uint8 and arr.shape[1:] == (8, 8, 1)
    assert arr.max() == 255 and arr.min() == 0
    image, label = ds.train[0]
    assert image.mode == "L" and image.size == (8, 8) and 0 <= label < 10
    assert np.array_equal(np.asarray(image), arr[0, ..., 0])


def test_split_is_stratified_deterministic_and_seeded():
    a = load_dataset("digits", val_fraction=0.25, seed=3)
    b = load_dataset("digits", val_fraction=0.25, seed=3)
    c = load_dataset("digits", val_fraction=0.25, seed=4)
    assert a.val.targets == b.val.targets
    assert np.array_equal(a.val.uint8_array(), b.val.uint8_array())
    assert not np.array_equal(a.val.uint8_array(), c.val.uint8_array())
    total = np.bincount(a.train.targets + a.val.targets, minlength=10)
    val_counts = np.bincount(a.val.targets, minlength=10)
    assert np.all(np.abs(val_counts - total * 0.25) <= 1)


def test_stratified_split_keeps_a_training_image_per_class():
    train, val = stratified_split([0, 0, 1, 1, 1, 2], val_fraction=0.9, seed=0)
    assert sorted(train + val) == list(range(6))
    assert {0, 1, 2} <= {[0, 0, 1, 1, 1, 2][i] for i in train}


def test_shapes_has_masks_balanced_classes_and_is_deterministic():
    ds = load_dataset("shapes:count=90,size=32")
    assert ds.classes == SHAPE_CLASSES and ds.channels == 3 and ds.image_size == (32, 32)
    assert len(ds.train) + len(ds.val) == 90
    masks = ds.train.masks
    assert masks is not None and masks.dtype == bool and masks.shape == (len(ds.train), 32, 32)
    assert all(m.any() and not m.all() for m in masks)
    counts = np.bincount(ds.train.targets + ds.val.targets)
    assert counts.tolist() == [30, 30, 30]
    again = load_dataset("shapes:count=90,size=32")
    assert np.array_equal(ds.train.uint8_array(), again.train.uint8_array())
    other = generate_shapes(count=90, size=32, seed=1)[0]
    assert not np.array_equal(generate_shapes(count=90, size=32, seed=0)[0], other)


def test_shapes_mask_marks_the_shape_pixels():
    images, masks, _ = generate_shapes(count=30, size=48, seed=0)
    for image, mask in zip(images[:10], masks[:10], strict=True):
        inside = image[mask].astype(float).mean(axis=0)
        outside = image[~mask].astype(float).mean(axis=0)
        assert np.abs(inside - outside).sum() > 60  # shape colour differs from the background


def test_shapes_rejects_bad_options():
    with pytest.raises(DatasetError, match="count"):
        load_dataset("shapes:count=1")
    with pytest.raises(DatasetError, match="colour"):
        load_dataset("shapes:colour=red")
    with pytest.raises(DatasetError, match="integer"):
        load_dataset("shapes:size=big")
    with pytest.raises(DatasetError, match="GiB of memory"):
        load_dataset("shapes:count=90000,size=512")


def test_torchvision_dataset_without_files_says_where_to_put_them(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "torchvision" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message
    with pytest.raises(DatasetError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_sample_photos_are_real_rgb_photos():
    photos = sample_photos()
    assert set(photos) == {"china.jpg", "flower.jpg"}
    assert all(p.mode == "RGB" and p.size == (640, 427) for p in photos.values())


def test_unknown_dataset_and_bad_val_fraction():
    with pytest.raises(DatasetError, match="Unknown dataset"):
        load_dataset("no-such-dataset")
    with pytest.raises(DatasetError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)


# --- image folders ------------------------------------------------------------------------------


def test_image_folder_classes_sorted_and_split(tmp_path):
    make_folder(tmp_path / "ds", {"zebra": 6, "ant": 4, "mole": 5})
    ds = load_dataset(tmp_path / "ds", val_fraction=0.5, seed=0)
    assert ds.classes == ["ant", "mole", "zebra"]
    assert ds.channels == 3 and ds.image_size == (12, 10)
    assert len(ds.train) + len(ds.val) == 15
    assert ds.val.class_counts(3) == [2, 2, 3]  # round(n * 0.5), Python's round-half-even
    image, _ = ds.val[0]
    assert image.mode == "RGB" and image.size == (10, 12)
    assert ds.train.uint8_array() is None


def test_image_folder_with_wrapper_and_train_val(tmp_path):
    root = tmp_path / "wrapper" / "pets"
    make_folder(root / "train", {"cat": 3, "dog": 3}, mode="L")
    make_folder(root / "val", {"cat": 1, "dog": 2}, mode="L")
    ds = load_dataset(tmp_path / "wrapper")
    assert ds.classes == ["cat", "dog"] and ds.channels == 1
    assert len(ds.train) == 6 and ds.val.targets == [0, 1, 1]
    assert ds.train[0][0].mode == "L"


def test_uploaded_dataset_found_by_name(tmp_path):
    make_folder(tmp_path / "datasets" / "mine", {"a": 3, "b": 3})
    ds = load_dataset("mine", data_dir=tmp_path)
    assert ds.name == "mine" and ds.classes == ["a", "b"]


def test_mixed_sizes_and_modes(tmp_path):
    make_folder(tmp_path / "ds", {"a": 2}, size=(8, 8), mode="L")
    make_folder(tmp_path / "ds", {"b": 2}, size=(9, 9), mode="RGB")
    ds = load_dataset(tmp_path / "ds", val_fraction=0.5)
    assert ds.channels == 3 and ds.image_size is None
    assert all(ds.train[i][0].mode == "RGB" for i in range(len(ds.train)))


def test_folder_with_one_class_or_empty_class_is_rejected(tmp_path):
    make_folder(tmp_path / "one", {"only": 3})
    (tmp_path / "one" / "readme.txt").write_text("not a class")
    with pytest.raises(DatasetError, match="at least 2"):
        load_dataset(tmp_path / "one")
    make_folder(tmp_path / "empty", {"a": 3, "b": 3})
    (tmp_path / "empty" / "c").mkdir()
    with pytest.raises(DatasetError, match=r"c in .* no images"):
        load_dataset(tmp_path / "empty")


def test_transparent_pixels_become_white_in_grayscale_and_rgb_folders(tmp_path):
    """Files are opened with preprocess.convert_mode: one transparency rule for every mode."""
    for mode, (transparent, opaque), folder in (
        ("LA", ((0, 0), (40, 255)), "gray"),
        ("RGBA", ((0, 0, 0, 0), (40, 40, 40, 255)), "rgb"),
    ):
        for cls in ("a", "b"):
            (tmp_path / folder / cls).mkdir(parents=True)
            image = Image.new(mode, (2, 1), transparent)
            image.putpixel((1, 0), opaque)
            image.save(tmp_path / folder / cls / "0.png")
            image.save(tmp_path / folder / cls / "1.png")
    gray = load_dataset(tmp_path / "gray", val_fraction=0.5)
    rgb = load_dataset(tmp_path / "rgb", val_fraction=0.5)
    assert gray.channels == 1 and rgb.channels == 3
    assert np.asarray(gray.train[0][0]).tolist() == [[255, 40]]
    assert np.asarray(rgb.train[0][0]).tolist() == [[[255, 255, 255], [40, 40, 40]]]


def test_image_list_indexing():
    arr = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3)
    images = ImageList([0, 1], array=arr)
    assert len(images) == 2
    assert images[-1][1] == 1
    with pytest.raises(IndexError):
        images[2]


def test_first_of_classes_picks_the_first_images_of_each_class_in_order():
    arr = np.zeros((6, 2, 2, 1), dtype=np.uint8)
    images = ImageList([1, 0, 1, 1, 2, 0], array=arr)
    assert images.first_of_classes([0, 1], 2) == {0: [1, 5], 1: [0, 2]}
    assert images.first_of_classes(range(4), 1) == {0: [1], 1: [0], 2: [4], 3: []}
