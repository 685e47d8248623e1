"""cnndash.data: built-ins, image folders, splits, and safe extraction of uploaded zips."""

from __future__ import annotations

import io
import stat
import zipfile
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
    ValidationReport,
    check_dataset_name,
    compute_mean_std,
    dataset_name_from,
    dataset_report,
    delete_dataset,
    extract_image_zip,
    generate_shapes,
    import_dataset_zip,
    list_datasets,
    load_dataset,
    sample_photos,
    stratified_split,
    validate_image_folder,
)
from cnndash.plots_data import class_counts_figure, contact_sheet, image_sizes_figure


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


def test_image_list_indexing():
    arr = np.arange(2 * 3 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 3)
    images = ImageList([0, 1], array=arr)
    assert len(images) == 2
    assert images[-1][1] == 1
    with pytest.raises(IndexError):
        images[2]


# --- uploaded zips ------------------------------------------------------------------------------


def png_bytes(colour=(200, 30, 30), size=(6, 5), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour if mode != "L" else 128).save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path: Path, entries: dict[str, bytes | None], *, compression=zipfile.ZIP_DEFLATED) -> Path:
    """Entries: name -> bytes, or None for a directory entry."""
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in entries.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name if name.endswith("/") else name + "/"), b"")
            else:
                zf.writestr(name, data)
    return path


def good_entries(prefix: str = "", classes=("cat", "dog"), per_class: int = 3) -> dict[str, bytes | None]:
    entries: dict[str, bytes | None] = {}
    for k, cls in enumerate(classes):
        for i in range(per_class):
            entries[f"{prefix}{cls}/{i}.png"] = png_bytes((k * 90, i * 40, 100))
    return entries


def snapshot(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def assert_rejected(tmp_path: Path, zip_path: Path, match: str, **limits) -> None:
    """The zip is refused with a message matching ``match`` and nothing is left on disk."""
    before = snapshot(tmp_path)
    dest = tmp_path / "out" / "ds"
    with pytest.raises(DatasetError, match=match):
        extract_image_zip(zip_path, dest, **limits)
    after = snapshot(tmp_path)
    assert after - before <= {"out"}, f"left behind: {after - before}"
    assert not dest.exists()
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/cnndash-abs-evil.png").exists()


def test_good_zip_extracts_and_loads(tmp_path):
    zip_path = write_zip(tmp_path / "pets.zip", good_entries())
    root = extract_image_zip(zip_path, tmp_path / "out")
    assert root == tmp_path / "out"
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["cat", "dog"]
    ds = load_dataset(root, val_fraction=0.34)
    assert ds.classes == ["cat", "dog"] and len(ds.train) + len(ds.val) == 6
    # no staging folder left behind
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".extract-")]


def test_macos_style_archive_is_accepted_and_metadata_reported(tmp_path):
    entries: dict[str, bytes | None] = {"pets/": None, "pets/cat/": None, "pets/dog/": None}
    entries.update(good_entries("pets/"))
    entries.update(
        {
            "pets/.DS_Store": b"\x00\x00\x00\x01Bud1" + bytes(100),
            "__MACOSX/": None,
            "__MACOSX/pets/": None,
            "__MACOSX/pets/._.DS_Store": b"\x00\x05\x16\x07" + bytes(60),
            "__MACOSX/pets/cat/._0.png": b"\x00\x05\x16\x07" + bytes(60),
            "pets/cat/notes.txt": b"hello",
        }
    )
    zip_path = write_zip(tmp_path / "mac.zip", entries)
    root = extract_image_zip(zip_path, tmp_path / "out")
    assert root == tmp_path / "out" / "pets"
    assert not (tmp_path / "out" / "__MACOSX").exists()
    assert not (root / ".DS_Store").exists()
    report = validate_image_folder(tmp_path / "out", name="pets")
    assert report.classes == ["cat", "dog"] and report.counts == {"cat": 3, "dog": 3}
    reasons = {s.path: s.reason for s in report.skipped}
    assert "macOS" in reasons["__MACOSX/pets/cat/._0.png"]
    assert reasons["pets/.DS_Store"] == "hidden file"
    assert reasons["pets/cat/notes.txt"] == "not an image (.txt)"


def test_train_val_layout_in_zip(tmp_path):
    entries = good_entries("train/")
    entries.update(good_entries("val/", per_class=1))
    root = extract_image_zip(write_zip(tmp_path / "tv.zip", entries), tmp_path / "out")
    ds = load_dataset(root)
    assert len(ds.train) == 6 and ds.val.targets == [0, 1]


def test_path_traversal_is_rejected(tmp_path):
    entries = good_entries()
    entries["cat/../../../evil.png"] = png_bytes()
    assert_rejected(tmp_path, write_zip(tmp_path / "evil.zip", entries), r"'\.\.'")


def test_absolute_path_is_rejected(tmp_path):
    entries = good_entries()
    entries["/tmp/cnndash-abs-evil.png"] = png_bytes()
    zip_path = write_zip(tmp_path / "abs.zip", entries)
    assert "/tmp/cnndash-abs-evil.png" in zipfile.ZipFile(zip_path).namelist()
    assert_rejected(tmp_path, zip_path, "absolute path")


def test_windows_drive_path_is_rejected(tmp_path):
    entries = good_entries()
    entries["C:\\evil.png"] = png_bytes()
    assert_rejected(tmp_path, write_zip(tmp_path / "win.zip", entries), "absolute path")


def test_symlink_entry_is_rejected(tmp_path):
    zip_path = write_zip(tmp_path / "link.zip", good_entries())
    with zipfile.ZipFile(zip_path, "a") as zf:
        info = zipfile.ZipInfo("cat/link.png")
        info.create_system = 3  # Unix
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../../../etc/passwd")
    assert_rejected(tmp_path, zip_path, "symbolic link")


def test_high_compression_ratio_bomb_is_rejected(tmp_path):
    entries = good_entries()
    entries["cat/bomb.png"] = bytes(8 * 2**20)  # 8 MiB of zeros deflate to ~8 KiB
    zip_path = write_zip(tmp_path / "bomb.zip", entries)
    assert zip_path.stat().st_size < 100_000
    assert_rejected(tmp_path, zip_path, "zip bomb")


def test_total_size_and_entry_size_limits(tmp_path):
    zip_path = write_zip(tmp_path / "big.zip", good_entries(), compression=zipfile.ZIP_STORED)
    assert_rejected(tmp_path, zip_path, "more than", max_total_bytes=200)
    assert_rejected(tmp_path, zip_path, "possible zip bomb", max_entry_bytes=20)


def test_header_that_understates_size_cannot_bypass_the_total_limit(tmp_path):
    """A header that lies about the size is not trusted: the entry fails its CRC check and is refused."""
    big = bytes(300_000)
    zip_path = write_zip(
        tmp_path / "lie.zip", {**good_entries(), "cat/big.png": big}, compression=zipfile.ZIP_STORED
    )
    data = bytearray(zip_path.read_bytes())
    # Patch the central directory's uncompressed size of cat/big.png to 10 bytes.
    name = b"cat/big.png"
    central = -1
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if bytes(data[pos + 46 : pos + 46 + name_len]) == name:
            data[pos + 24 : pos + 28] = (10).to_bytes(4, "little")
            central = pos
        pos = data.find(b"PK\x01\x02", pos + 4)
    assert central != -1
    zip_path.write_bytes(bytes(data))
    assert zipfile.ZipFile(zip_path).getinfo("cat/big.png").file_size == 10
    with pytest.raises(DatasetError, match=r"cat/big\.png' is corrupt"):
        extract_image_zip(zip_path, tmp_path / "out" / "ds", max_total_bytes=100_000)
    assert not (tmp_path / "out" / "ds").exists()


def test_too_many_files_is_rejected(tmp_path):
    zip_path = write_zip(tmp_path / "many.zip", good_entries(per_class=6))
    assert_rejected(tmp_path, zip_path, "12 entries, more than the 10 allowed", max_files=10)


def test_corrupt_and_non_zip_files_are_rejected(tmp_path):
    good = write_zip(tmp_path / "good.zip", good_entries(), compression=zipfile.ZIP_STORED).read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good[: len(good) // 2])
    assert_rejected(tmp_path, truncated, "not a zip archive")
    flipped = bytearray(good)
    start = good.find(b"IDAT")  # inside the first PNG's stored bytes
    flipped[start : start + 8] = b"XXXXXXXX"
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(flipped))
    assert_rejected(tmp_path, damaged, "corrupt")
    text = tmp_path / "notes.zip"
    text.write_text("this is not an archive")
    assert_rejected(tmp_path, text, "not a zip archive")


def test_only_non_images_is_rejected(tmp_path):
    zip_path = write_zip(tmp_path / "docs.zip", {"a/readme.txt": b"x", "b/data.csv": b"1,2"})
    assert_rejected(tmp_path, zip_path, "no images")


def test_image_that_does_not_decode_is_rejected(tmp_path):
    entries = good_entries()
    entries["dog/broken.jpg"] = b"\xff\xd8\xff\xe0 definitely not a jpeg"
    assert_rejected(tmp_path, write_zip(tmp_path / "broken.zip", entries), r"dog/broken\.jpg does not decode")


def test_one_class_is_rejected(tmp_path):
    zip_path = write_zip(tmp_path / "one.zip", good_entries(classes=("cat",)))
    assert_rejected(tmp_path, zip_path, "at least 2")


def test_empty_class_is_rejected(tmp_path):
    entries = good_entries()
    entries["bird/"] = None
    entries["fish/readme.txt"] = b"no fish yet"
    assert_rejected(tmp_path, write_zip(tmp_path / "empty.zip", entries), "bird, fish .* no images")


def test_import_store_list_report_delete(tmp_path):
    entries = good_entries(per_class=3)
    entries.update({f"dog/extra{i}.png": png_bytes((0, 0, i), mode="RGB") for i in range(10)})
    entries["cat/gray.png"] = png_bytes(mode="L")
    zip_path = write_zip(tmp_path / "My Pets!.zip", entries)
    report = import_dataset_zip(zip_path, data_dir=tmp_path / "data")
    assert isinstance(report, ValidationReport)
    assert report.name == "My-Pets" and list_datasets(tmp_path / "data") == ["My-Pets"]
    assert report.counts == {"cat": 4, "dog": 13} and report.num_images == 17
    assert report.sizes == {(5, 6): 17} and report.modes == {"RGB": 16, "L": 1}
    warnings = " ".join(report.warnings)
    assert "imbalance" in warnings and "few images" in warnings and "Mixed image modes" in warnings
    # the same name twice never overwrites
    with pytest.raises(DatasetError, match="already exists"):
        import_dataset_zip(zip_path, data_dir=tmp_path / "data")
    second = import_dataset_zip(zip_path, data_dir=tmp_path / "data", on_exists="suffix")
    assert second.name == "My-Pets-2"
    assert list_datasets(tmp_path / "data") == ["My-Pets", "My-Pets-2"]
    ds = load_dataset("My-Pets", data_dir=tmp_path / "data")
    assert ds.classes == ["cat", "dog"] and ds.channels == 3
    assert dataset_report("My-Pets", data_dir=tmp_path / "data").counts == report.counts
    delete_dataset("My-Pets", data_dir=tmp_path / "data")
    assert list_datasets(tmp_path / "data") == ["My-Pets-2"]
    with pytest.raises(DatasetError, match="nothing deleted"):
        delete_dataset("My-Pets", data_dir=tmp_path / "data")


def test_dataset_names_are_checked(tmp_path):
    for bad in ("../up", "a/b", "", ".hidden", "digits"):
        with pytest.raises(DatasetError):
            check_dataset_name(bad)
    assert dataset_name_from("../../x y.zip") == "x-y"


def test_failed_import_leaves_no_dataset(tmp_path):
    zip_path = write_zip(tmp_path / "one.zip", good_entries(classes=("cat",)))
    with pytest.raises(DatasetError):
        import_dataset_zip(zip_path, data_dir=tmp_path / "data")
    assert list_datasets(tmp_path / "data") == []


def test_load_dataset_from_zip_path_is_cached(tmp_path):
    zip_path = write_zip(tmp_path / "pets.zip", good_entries())
    a = load_dataset(zip_path, data_dir=tmp_path / "data")
    b = load_dataset(str(zip_path), data_dir=tmp_path / "data")
    assert a.classes == ["cat", "dog"] and a.root == b.root
    assert len(list((tmp_path / "data" / "cache" / "zips").iterdir())) == 1


def test_compute_mean_std_matches_numpy_for_memory_and_files(tmp_path):
    ds = load_dataset("shapes:count=30,size=16")
    mean, std = compute_mean_std(ds.train)
    pixels = ds.train.uint8_array().astype(np.float64) / 255
    assert np.allclose(mean, pixels.mean(axis=(0, 1, 2))) and np.allclose(std, pixels.std(axis=(0, 1, 2)))
    assert len(mean) == 3
    make_folder(tmp_path / "ds", {"a": 2, "b": 2}, size=(4, 4), mode="L")
    folder = load_dataset(tmp_path / "ds", val_fraction=0.5)
    values = np.concatenate([np.asarray(folder.train[i][0], dtype=float).ravel() / 255 for i in range(2)])
    fmean, fstd = compute_mean_std(folder.train)
    assert np.allclose(fmean, [values.mean()]) and np.allclose(fstd, [values.std()])


# --- figures for the page -----------------------------------------------------------------------


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
