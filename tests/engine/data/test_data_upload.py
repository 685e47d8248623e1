"""cnndash.data: safe extraction of uploaded zips, and the dataset store that imports them."""

from __future__ import annotations

import io
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cnndash.data import (
    DatasetError,
    ValidationReport,
    check_dataset_name,
    dataset_name_from,
    dataset_report,
    delete_dataset,
    extract_image_zip,
    import_dataset_zip,
    list_datasets,
    load_dataset,
    validate_image_folder,
)

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


def test_image_that_does_not_decode_is_rejected_when_bad_images_are_refused(tmp_path):
    """By default such a file is skipped and reported (tests/engine/data/test_hostile_uploads.py); refusing stays an option."""
    entries = good_entries()
    entries["dog/broken.jpg"] = b"\xff\xd8\xff\xe0 definitely not a jpeg"
    zip_path = write_zip(tmp_path / "broken.zip", entries)
    assert_rejected(tmp_path, zip_path, r"dog/broken\.jpg does not decode", bad_images="refuse")


def test_one_class_is_rejected(tmp_path):
    zip_path = write_zip(tmp_path / "one.zip", good_entries(classes=("cat",)))
    assert_rejected(tmp_path, zip_path, "at least 2")


def test_empty_class_is_rejected(tmp_path):
    entries = good_entries()
    entries["bird/"] = None
    entries["fish/readme.txt"] = b"no fish yet"
    assert_rejected(tmp_path, write_zip(tmp_path / "empty.zip", entries), "bird, fish .* no images")


# --- the dataset store ---------------------------------------------------------------------------


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
    # One content extracted once (the store's contents/ folder holds nothing else but its owner locks).
    stored = [p for p in (tmp_path / "data" / "contents").iterdir() if not p.name.startswith(".")]
    assert len(stored) == 1 and a.root.is_relative_to(stored[0])


def test_imports_at_the_same_time_each_get_their_own_intact_dataset(tmp_path):
    zip_path = write_zip(tmp_path / "pets.zip", good_entries(per_class=4))
    bad_path = write_zip(tmp_path / "bad.zip", good_entries(classes=("cat",)))
    results: dict[int, object] = {}
    start = threading.Barrier(8)

    def work(k: int) -> None:
        start.wait()
        try:
            source = bad_path if k % 4 == 3 else zip_path
            results[k] = import_dataset_zip(source, "pets", data_dir=tmp_path / "data", on_exists="suffix")
        except DatasetError as exc:
            results[k] = exc

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reports = [r for r in results.values() if isinstance(r, ValidationReport)]
    assert len(reports) == 6 and all(isinstance(results[k], DatasetError) for k in (3, 7))
    names = sorted(r.name for r in reports)
    assert len(set(names)) == 6 and list_datasets(tmp_path / "data") == names
    for name in names:
        assert dataset_report(name, data_dir=tmp_path / "data").counts == {"cat": 4, "dog": 4}
