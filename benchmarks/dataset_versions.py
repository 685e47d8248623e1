"""Benchmark: dataset version edits and what versions cost against the data quota.

Prints, for the figures issue 22 asks for (docs/reliability.md, "Datasets and versions"):

- the seconds of one ``merge`` of two classes in a version of a dataset of 6,000 images, and of one
  ``rename`` of a class of 16,000 images, each next to the seconds of making the version (a baseline
  measured in the same run: an edit should cost far less than copying the manifest);
- the bytes the quota counts once a dataset has 6 versions, next to the bytes the dataset stores, and
  whether a 4-image import then still fits a quota set to twice the dataset's size.

It uses only the public API, so the same script measures the code before and after a change.

    python benchmarks/dataset_versions.py [--merge-images 6000] [--rename-images 16000]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image

from cnndash import data
from cnndash.data import versions


def _zip(path: Path, counts: dict[str, int], size: int = 8, seed: int = 0) -> Path:
    """An image-folder zip: ``counts[class]`` small random PNGs per class."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for cls, n in counts.items():
            for i in range(n):
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
                archive.writestr(f"{cls}/{i:05d}.png", buffer.getvalue())
    return path


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _fresh_data_dir(root: Path, name: str) -> None:
    os.environ["CNNDASH_DATA_DIR"] = str(root / name)


def merge_figure(tmp: Path, images: int) -> None:
    _fresh_data_dir(tmp, "merge")
    per = images // 3
    data.import_dataset(_zip(tmp / "m.zip", {"a": per, "b": per, "c": images - 2 * per}), "m")
    made = _timed(lambda: versions.create_version("m", "m-v"))
    merged = _timed(lambda: versions.merge_classes("m-v", ["a", "b"], "ab"))
    print(f"merge 2 classes, {images} images: {merged:.2f} s (making the version: {made:.2f} s)")


def rename_figure(tmp: Path, images: int) -> None:
    _fresh_data_dir(tmp, "rename")
    data.import_dataset(_zip(tmp / "r.zip", {"big": images, "small": 10}), "r")
    made = _timed(lambda: versions.create_version("r", "r-v"))
    renamed = _timed(lambda: versions.rename_class("r-v", "big", "huge"))
    print(f"rename one class of {images} images: {renamed:.2f} s (making the version: {made:.2f} s)")


def quota_figure(tmp: Path) -> None:
    _fresh_data_dir(tmp, "quota")
    report = data.import_dataset(_zip(tmp / "q.zip", {"a": 700, "b": 700}, size=16), "q")
    stored = sum(
        f.stat().st_size for f in Path(data.load_dataset(report.name).root).rglob("*") if f.is_file()
    )
    for k in range(6):
        versions.create_version("q", f"q-v{k}")
    counted = _quota_counted()
    os.environ[data.DATA_QUOTA_ENV] = str(max(1, round(2 * stored / 2**20)))
    try:
        data.import_dataset(_zip(tmp / "four.zip", {"x": 2, "y": 2}), "four")
        verdict = "accepted"
    except ValueError as exc:
        verdict = f"refused ({str(exc)[:70]}…)"
    finally:
        del os.environ[data.DATA_QUOTA_ENV]
    print(
        f"quota with 6 versions: counts {counted / 2**20:.2f} MiB for a dataset of {stored / 2**20:.2f} MiB; "
        f"a 4-image import under a {2 * stored / 2**20:.1f} MiB quota: {verdict}"
    )


def _quota_counted() -> int:
    """What the quota charges for the data folder now (the ledger, or the folder walk before it)."""
    used = getattr(data, "quota_used", None)
    if used is not None:
        return int(used())
    from cnndash.data.limits import folder_bytes

    return folder_bytes(Path(os.environ["CNNDASH_DATA_DIR"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merge-images", type=int, default=6000)
    parser.add_argument("--rename-images", type=int, default=16000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        merge_figure(Path(tmp), args.merge_images)
        rename_figure(Path(tmp), args.rename_images)
        quota_figure(Path(tmp))


if __name__ == "__main__":
    main()
