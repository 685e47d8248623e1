"""What a hostile or careless uploader can send (issue 12), reproduced with real files and real processes.

Each test is one class of attack or accident: memory from tiny uploads, disk from small zips, concurrent
imports, zips whose names collide or break the filesystem, pixel modes, one bad file in an archive, and
names that are data. The engine must answer each with bounded resources and a clear DatasetError /
ImageDecodeError — never an OSError, a traceback, or someone else's files removed.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndash.data import (
    DATA_QUOTA_ENV,
    MIN_FREE_ENV,
    DatasetError,
    ValidationReport,
    archive,
    dataset_report,
    extract_image_zip,
    import_dataset_zip,
    list_datasets,
    load_dataset,
)
from cnndash.preprocess import DECODE_MIN_SIDE, ImageDecodeError, convert_mode, open_image, read_image
from cnndash.store.db import DB_FILE
from tests.conftest import ROOT


def image_bytes(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noise_png(seed: int, size: int = 8) -> bytes:
    rng = np.random.default_rng(seed)
    return image_bytes(Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))


def write_zip(path: Path, entries: dict[str, bytes | None]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            if data is None:
                zf.writestr(zipfile.ZipInfo(name.rstrip("/") + "/"), b"")
            else:
                zf.writestr(name, data)
    return path


def good_entries(per_class: int = 3, classes=("cat", "dog")) -> dict[str, bytes | None]:
    return {f"{c}/{i}.png": noise_png(10 * k + i) for k, c in enumerate(classes) for i in range(per_class)}


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` RGB pixels but holds almost no data (a decompression bomb's
    header: PIL reads only this much before deciding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def truncated_jpeg(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    data = image_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")
    return data[: len(data) // 2]


def stored_bytes(data: Path) -> int:
    """Bytes of the files under the data folder ``data`` but its metadata database."""
    return sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and not p.name.startswith(DB_FILE))


def assert_leaves_nothing(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*")] if folder.exists() else []
    assert leftovers == [] or all(p.is_dir() and not any(p.iterdir()) for p in leftovers), leftovers


# --- 1. memory from tiny uploads ----------------------------------------------------------------------

_PEAK_RSS = textwrap.dedent(
    """
    import resource, sys
    import torch
    from cnndash.training.batches import prepare_data
    from cnndash.data import load_image_folder
    ds = load_image_folder(sys.argv[1])
    data = prepare_data(ds, size=32, spec=[], device=torch.device("cpu"), memory_budget_mb=512, num_workers=0)
    assert data.kind == "memory" and tuple(data.train.x.shape[1:]) == (3, 32, 32)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """
)


def _peak_rss_kib(folder: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, str(folder)], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


def _folder_of(root: Path, image_file: bytes, suffix: str, count: int = 16) -> Path:
    for i in range(count):
        cls = root / ("a" if i % 2 else "b")
        cls.mkdir(parents=True, exist_ok=True)
        (cls / f"{i}{suffix}").write_bytes(image_file)
    return root


def test_training_memory_does_not_grow_with_the_photos_pixel_count(tmp_path):
    """16 flat 8000×8000 PNGs (~20 KB each, 64 MP: accepted) peak at most 1.5× the RSS of 16 small images:
    decoded one at a time, downscaled while decoding, straight into the training-size tensor."""
    big = image_bytes(Image.new("RGB", (8000, 8000), (90, 140, 200)), compress_level=9)
    assert len(big) < 500_000  # a tiny upload
    small = image_bytes(Image.new("RGB", (64, 64), (90, 140, 200)))
    peak_small = _peak_rss_kib(_folder_of(tmp_path / "small", small, ".png"))
    peak_big = _peak_rss_kib(_folder_of(tmp_path / "big", big, ".png"))
    assert peak_big <= 1.5 * peak_small, (peak_big, peak_small)


def test_single_uploads_are_checked_before_decoding_and_big_photos_come_back_downscaled():
    # a 20000×20000 bomb (PIL's own DecompressionBombError) and a 13000×13000 image: clear refusals
    for side in (20_000, 13_000):
        started = time.perf_counter()
        with pytest.raises(ImageDecodeError, match=r"'huge\.png'.*megapixels"):
            open_image(png_header_only(side, side), "huge.png")
        assert time.perf_counter() - started < 1.0  # refused from the header, nothing decoded
    # just over the limit, under PIL's own warning threshold: our limit, from the header
    with pytest.raises(ImageDecodeError, match=r"8001×8000 pixels .* more than the 64 megapixels"):
        read_image(png_header_only(8001, 8000), "wide.png")
    # a 64 MP photo is accepted (API.md) and comes back reduced while decoding
    photo = image_bytes(Image.new("RGB", (8000, 8000), (10, 20, 30)), "JPEG", quality=50)
    image = open_image(photo, "phone.jpg")
    assert DECODE_MIN_SIDE <= min(image.size) < 2 * DECODE_MIN_SIDE
    assert image.getpixel((5, 5)) == pytest.approx((10, 20, 30), abs=3)


def test_a_bomb_inside_a_dataset_folder_is_a_dataset_error_naming_the_file(tmp_path):
    _folder_of(tmp_path / "ds", noise_png(1), ".png", count=6)
    (tmp_path / "ds" / "a" / "bomb.png").write_bytes(png_header_only(20_000, 20_000))
    with pytest.raises(DatasetError, match=r"bomb\.png.*decompression bomb"):
        load_dataset(tmp_path / "ds", data_dir=tmp_path / "data")


# --- 2. disk from small zips --------------------------------------------------------------------------


def test_many_small_entries_of_zeros_are_bounded_archive_wide(tmp_path):
    """~1 MiB of zip holding 1000 × 1 MiB of zeros (each entry below the per-entry ratio floor): refused
    once the archive-wide expansion bound is reached, not after a gigabyte is written."""
    entries = good_entries()
    entries.update({f"cat/zero{i}.png": bytes(2**20) for i in range(1000)})
    zip_path = write_zip(tmp_path / "zeros.zip", entries)
    assert zip_path.stat().st_size < 3 * 2**20
    with pytest.raises(DatasetError, match=r"more than 100× its own size.*zip bomb"):
        extract_image_zip(zip_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unreadable_images_are_deleted_as_they_are_written(tmp_path, monkeypatch):
    """Junk named .png is checked right after it is written, not after everything is extracted: the
    staging folder never holds more than one junk file (measured before each entry is written); the
    upload goes through with the junk skipped and listed."""
    entries = good_entries()
    entries.update({f"dog/junk{i}.png": bytes(2**20) for i in range(30)})
    zip_path = write_zip(tmp_path / "junk.zip", entries)
    on_disk: list[int] = []
    extract_entry = archive._extract_entry

    def measured(zf, info, out_path, **kwargs):
        staging = next(p for p in out_path.parents if p.name.startswith(".extract-"))
        on_disk.append(sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()))
        return extract_entry(zf, info, out_path, **kwargs)

    monkeypatch.setattr(archive, "_extract_entry", measured)
    report = import_dataset_zip(zip_path, "junk", data_dir=tmp_path / "data")
    assert len(on_disk) == 36 and max(on_disk) < 2**20
    assert report.counts == {"cat": 3, "dog": 3}
    junk = [s for s in report.skipped if "junk" in s.path]
    assert len(junk) == 30 and all(s.reason.startswith("unreadable image") for s in junk)
    stored = stored_bytes(tmp_path / "data")
    assert stored < 100_000


def test_flat_bmps_are_stored_as_png_so_the_stored_size_is_honest(tmp_path):
    flat = image_bytes(Image.new("RGB", (500, 500), (0, 120, 0)), "BMP")  # 750 KB each, under the ratio floor
    entries = {f"{c}/{i}.bmp": flat for c in ("cat", "dog") for i in range(3)}
    entries["cat/0.png"] = noise_png(3)  # a name the BMP would take: it becomes 0.bmp.png
    zip_path = write_zip(tmp_path / "flat.zip", entries)
    assert zip_path.stat().st_size < 100_000
    report = import_dataset_zip(zip_path, "flat", data_dir=tmp_path / "data")
    assert report.counts == {"cat": 4, "dog": 3} and report.sizes[(500, 500)] == 6
    files = sorted(p.relative_to(report.root).as_posix() for p in report.root.rglob("*.png"))
    assert files == [
        "cat/0.bmp.png",
        "cat/0.png",
        "cat/1.png",
        "cat/2.png",
        "dog/0.png",
        "dog/1.png",
        "dog/2.png",
    ]
    stored = stored_bytes(tmp_path / "data")
    assert stored < 30_000  # 4.5 MB of BMPs
    assert np.array_equal(
        np.asarray(read_image(report.root / "dog" / "1.png")), np.asarray(Image.open(io.BytesIO(flat)))
    )


def test_the_data_folder_quota_and_free_space_are_enforced_with_messages_naming_them(tmp_path, monkeypatch):
    big = {
        f"{c}/{i}.png": noise_png(i + 7 * k, size=400) for k, c in enumerate(("cat", "dog")) for i in range(3)
    }
    zip_path = write_zip(tmp_path / "big.zip", big)  # ~2.8 MB of noise
    monkeypatch.setenv(DATA_QUOTA_ENV, "2")
    with pytest.raises(DatasetError, match=rf"quota of 2 MiB \({DATA_QUOTA_ENV}"):
        import_dataset_zip(zip_path, "big", data_dir=tmp_path / "data")
    assert list_datasets(tmp_path / "data") == []
    monkeypatch.setenv(DATA_QUOTA_ENV, "100")
    monkeypatch.setenv(MIN_FREE_ENV, str(10**9))  # keep a petabyte free: nothing fits
    with pytest.raises(DatasetError, match=rf"free disk space.*{MIN_FREE_ENV}"):
        import_dataset_zip(zip_path, "big", data_dir=tmp_path / "data")
    assert list_datasets(tmp_path / "data") == []
    monkeypatch.delenv(MIN_FREE_ENV)
    assert import_dataset_zip(zip_path, "big", data_dir=tmp_path / "data").num_images == 6
    monkeypatch.setenv(DATA_QUOTA_ENV, "nonsense")
    with pytest.raises(ValueError, match=DATA_QUOTA_ENV):
        import_dataset_zip(zip_path, "big2", data_dir=tmp_path / "data")


# --- 3. concurrent imports, in real processes ---------------------------------------------------------


def _import_in_process(args: tuple[str, str, str, str]) -> tuple[str, object]:
    zip_path, name, data_dir, on_exists = args
    try:
        report = import_dataset_zip(zip_path, name, data_dir=Path(data_dir), on_exists=on_exists)
        return "ok", report.name
    except DatasetError as exc:
        return "error", str(exc)


def _load_in_process(args: tuple[str, str]) -> str:
    zip_path, data_dir = args
    return str(load_dataset(zip_path, data_dir=Path(data_dir)).root)


def _pool(jobs: int):
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn").Pool(jobs)


@pytest.mark.parametrize("on_exists", ["suffix", "error"])
def test_eight_processes_importing_under_one_name_each_get_their_own_complete_dataset(tmp_path, on_exists):
    good = write_zip(tmp_path / "pets.zip", good_entries(per_class=4))
    bad = write_zip(tmp_path / "bad.zip", good_entries(classes=("cat",)))
    data = tmp_path / "data"
    args = [(str(bad if k % 4 == 3 else good), "pets", str(data), on_exists) for k in range(8)]
    with _pool(8) as pool:
        results = pool.map(_import_in_process, args)
    stored = sorted(value for kind, value in results if kind == "ok")
    errors = [value for kind, value in results if kind == "error"]
    assert len(stored) + len(errors) == 8
    if on_exists == "suffix":
        assert len(stored) == 6 and len(set(stored)) == 6
    else:
        assert stored in ([], ["pets"])  # one name: at most one import owns it
        assert all("already exists" in e or "at least 2" in e for e in errors)
    assert list_datasets(data) == stored  # failures left nothing, successes are all there
    for name in stored:
        assert dataset_report(name, data_dir=data).counts == {"cat": 4, "dog": 4}
    assert not [p for p in (data / "datasets").rglob(".extract-*")]


def test_processes_loading_one_zip_path_at_once_share_one_complete_cache(tmp_path):
    zip_path = write_zip(tmp_path / "pets.zip", good_entries(per_class=5))
    with _pool(6) as pool:
        roots = pool.map(_load_in_process, [(str(zip_path), str(tmp_path / "data"))] * 6)
    assert len(set(roots)) == 1
    contents = tmp_path / "data" / "contents"  # one content; no staging or discarded copies left
    assert sorted(p.name.startswith(".") for p in contents.iterdir() if p.name != ".owners") == [False]
    assert dataset_report_counts(Path(roots[0])) == {"cat": 5, "dog": 5}


def dataset_report_counts(root: Path) -> dict[str, int]:
    return {d.name: len(list(d.iterdir())) for d in sorted(root.iterdir()) if d.is_dir()}


# --- 4. zips whose names collide or break the filesystem ----------------------------------------------


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"cat/x": b"a file", "cat/x/1.png": noise_png(9)}, r"collide"),
        ({"cat/x/1.png": noise_png(9), "cat/x": b"a file"}, r"collide"),
        ({"cat/x/": None, "CAT/X": b"a file"}, r"collide"),
        ({"cat/" + "n" * 300 + ".png": noise_png(9)}, r"at most 255"),
        ({"/".join(["d"] * 3000) + "/1.png": noise_png(9)}, r"nested .* deep"),
        ({"cat/new\nline.png": noise_png(9)}, r"control character"),
        ({"cat/\u202egnp.exe": noise_png(9)}, r"U\+202E"),
        ({"cat/1.png": noise_png(9), "Cat/1.PNG": noise_png(8)}, r"appears twice"),
    ],
)
def test_hostile_entry_names_are_dataset_errors_and_leave_nothing(tmp_path, extra, match):
    zip_path = write_zip(tmp_path / "names.zip", {**good_entries(), **extra})
    with pytest.raises(DatasetError, match=match):
        import_dataset_zip(zip_path, "names", data_dir=tmp_path / "data")
    assert list_datasets(tmp_path / "data") == []
    assert_leaves_nothing(tmp_path / "data" / "datasets")


# --- 5. pixels ----------------------------------------------------------------------------------------


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 … 65520
    data = image_bytes(Image.fromarray(ramp))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = np.asarray(convert_mode(open_image(data, "deep.png"), "L")).astype(int)
    assert (pixels == 255).mean() < 0.01  # clipping made 99.6 % of them 255
    np.testing.assert_array_equal(pixels, ramp >> 8)
    entries = {**good_entries(), **{f"dog/deep{i}.png": data for i in range(2)}}
    report = import_dataset_zip(write_zip(tmp_path / "deep.zip", entries), "deep", data_dir=tmp_path / "data")
    assert any("16-bit" in w and "scaled" in w for w in report.warnings)


@pytest.mark.parametrize("mode", ["LA", "RGBA", "PA", "L-tRNS", "RGB-tRNS", "P-tRNS"])
def test_fully_transparent_images_are_white_in_every_mode_and_on_every_path(tmp_path, mode):
    base, _, trns = mode.partition("-")
    if trns:
        image = Image.new(base, (6, 6), 0 if base != "RGB" else (0, 0, 0))
        data = image_bytes(image, transparency=0 if base != "RGB" else (0, 0, 0))
    elif base != "PA":
        data = image_bytes(Image.new("RGBA", (6, 6), (0, 0, 0, 0)).convert(base))
    image = (
        Image.new("RGBA", (6, 6), (0, 0, 0, 0)).convert(base) if base == "PA" else open_image(data, "c.png")
    )
    for target in ("L", "RGB"):
        assert np.asarray(convert_mode(image, target)).min() == 255
    if base == "PA":
        return  # PNG cannot store PA; decoded files come back as P + tRNS (the P-tRNS case)
    folder = tmp_path / "ds"
    _folder_of(folder, data, ".png", count=4)
    ds = load_dataset(folder, data_dir=tmp_path / "data")
    assert np.asarray(ds.train[0][0]).min() == 255


def test_the_mixed_modes_warning_names_the_mode_the_loader_picks(tmp_path):
    gray = image_bytes(Image.new("L", (6, 6), 100))
    gray_alpha = image_bytes(Image.new("LA", (6, 6), (100, 255)))
    entries = {f"cat/{i}.png": gray for i in range(3)} | {f"dog/{i}.png": gray_alpha for i in range(3)}
    report = import_dataset_zip(write_zip(tmp_path / "g.zip", entries), "g", data_dir=tmp_path / "data")
    (warning,) = [w for w in report.warnings if w.startswith("Mixed image modes")]
    assert "converted to grayscale (transparent areas become white)" in warning
    assert load_dataset("g", data_dir=tmp_path / "data").channels == 1


# --- 6. one bad file does not reject the archive ------------------------------------------------------


def test_a_truncated_jpeg_is_skipped_and_reported_as_truncated(tmp_path):
    entries = {**good_entries(), "dog/IMG_0001.jpg": truncated_jpeg()}
    report = import_dataset_zip(
        write_zip(tmp_path / "phone.zip", entries), "phone", data_dir=tmp_path / "data"
    )
    assert report.counts == {"cat": 3, "dog": 3}
    (skipped,) = [s for s in report.skipped if s.path == "dog/IMG_0001.jpg"]
    assert "truncated" in skipped.reason
    with pytest.raises(ImageDecodeError, match=r"'IMG_0001\.jpg'.*truncated") as refused:
        open_image(truncated_jpeg(), "IMG_0001.jpg")
    assert "upload a" not in str(refused.value)


def test_an_archive_is_refused_only_when_a_class_ends_up_empty_or_too_small(tmp_path):
    entries = {**good_entries(classes=("cat",)), "dog/only.jpg": truncated_jpeg()}
    with pytest.raises(
        DatasetError, match=r"dog.*no images.*unreadable image\(s\) were skipped: dog/only\.jpg"
    ):
        import_dataset_zip(write_zip(tmp_path / "a.zip", entries), "a", data_dir=tmp_path / "data")
    singles = {"cat/1.png": noise_png(1), "dog/1.png": noise_png(2), "dog/2.jpg": truncated_jpeg()}
    with pytest.raises(DatasetError, match="single image"):
        import_dataset_zip(write_zip(tmp_path / "b.zip", singles), "b", data_dir=tmp_path / "data")
    assert list_datasets(tmp_path / "data") == []


# --- 7. names from uploads are data -------------------------------------------------------------------


def test_class_and_file_names_come_back_verbatim_as_plain_strings(tmp_path):
    classes = ("<img src=x onerror=alert(1)>", "**bold** [link](javascript:x) $x$ :red[y]")
    entries = good_entries(classes=classes)
    entries[f"{classes[0]}/<script>alert(1)<.txt"] = b"junk"
    report = import_dataset_zip(write_zip(tmp_path / "x.zip", entries), "x", data_dir=tmp_path / "data")
    assert isinstance(report, ValidationReport)
    assert report.classes == sorted(classes)
    assert all(type(c) is str for c in report.classes) and all(type(k) is str for k in report.counts)
    assert [(s.path, s.reason) for s in report.skipped] == [
        (f"{classes[0]}/<script>alert(1)<.txt", "not an image (.txt)")
    ]
    assert all(type(s.path) is str and type(s.reason) is str for s in report.skipped)
    # Warnings are text (a Phrase is the English string itself, with its template kept for translation).
    assert all(isinstance(w, str) and str(w) == w for w in report.warnings)
    record = json.loads((report.root / ".cnndash-import.json").read_text())
    assert record["skipped"][0][0] == report.skipped[0].path


def test_env_limits_are_checked_and_never_silently_ignored(monkeypatch):
    monkeypatch.setenv("CNNDASH_MAX_IMAGE_PIXELS", "-5")
    with pytest.raises(ValueError, match="CNNDASH_MAX_IMAGE_PIXELS"):
        open_image(noise_png(1), "a.png")
    monkeypatch.setenv("CNNDASH_MAX_IMAGE_PIXELS", "50")
    with pytest.raises(ImageDecodeError, match=r"'a\.png' is 8×8 pixels .* more than the"):
        open_image(noise_png(1), "a.png")
    monkeypatch.delenv("CNNDASH_MAX_IMAGE_PIXELS")
    assert open_image(noise_png(1), "a.png").size == (8, 8)
    assert os.environ.get("CNNDASH_MAX_IMAGE_PIXELS") is None
