"""What an image-folder dataset contains, for people: the report shown on the Data page after an upload."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from pathlib import Path

from cnndash.data.folders import Items, find_dataset_root, scan_image_folder
from cnndash.data.images import DatasetError
from cnndash.preprocess import GRAY_MODES, SIXTEEN_BIT_MODES, ImageDecodeError, image_header

IMPORT_RECORD = ".cnndash-import.json"  # hidden file in a stored dataset: skipped files from the upload
FEW_IMAGES = 10  # a class with fewer images than this gets a warning
IMBALANCE_RATIO = 3.0  # largest / smallest class above this gets a warning


@dataclass(frozen=True)
class SkippedFile:
    """A file of an uploaded archive that is not part of the dataset, and why."""

    path: str
    reason: str


@dataclass
class ValidationReport:
    """What an uploaded dataset contains, for people: shown on the page after an upload."""

    name: str
    root: Path
    classes: list[str]
    counts: dict[str, int]  # images per class (train + val)
    split_counts: dict[str, dict[str, int]]  # {"train": {...}, "val": {...}} or {"all": {...}}
    sizes: dict[tuple[int, int], int]  # (h, w) -> number of images
    modes: dict[str, int]  # PIL mode -> number of images
    skipped: list[SkippedFile]
    warnings: list[str]

    @property
    def num_images(self) -> int:
        return sum(self.counts.values())


def validate_image_folder(root: Path, *, name: str | None = None) -> ValidationReport:
    """Scan an image-folder dataset and report classes, counts, sizes, modes, skipped files, warnings."""
    root = Path(root)
    data_root = find_dataset_root(root)
    classes, parts = scan_image_folder(data_root)
    return report_of(name or root.name, data_root, classes, parts, _read_skipped(data_root, root))


def report_of(
    name: str, root: Path, classes: list[str], parts: dict[str, Items], skipped: list[SkippedFile]
) -> ValidationReport:
    """The report of image files already sorted into ``parts`` (what a dataset version holds)."""
    split_counts = {
        part: {c: sum(1 for _, t in items if t == i) for i, c in enumerate(classes)}
        for part, items in parts.items()
    }
    counts = {c: sum(sc.get(c, 0) for sc in split_counts.values()) for c in classes}
    sizes, modes = _sizes_and_modes(parts)
    return ValidationReport(
        name=name,
        root=root,
        classes=classes,
        counts=counts,
        split_counts=split_counts,
        sizes=sizes,
        modes=modes,
        skipped=skipped,
        warnings=_warnings(counts, modes),
    )


def _sizes_and_modes(parts: dict[str, Items]) -> tuple[dict[tuple[int, int], int], dict[str, int]]:
    """How many images have each (h, w) and each PIL mode, reading only the headers."""
    sizes: collections.Counter[tuple[int, int]] = collections.Counter()
    modes: collections.Counter[str] = collections.Counter()
    for items in parts.values():
        for path, _ in items:
            try:
                width, height, mode = image_header(path)
            except ImageDecodeError as exc:
                raise DatasetError(str(exc)) from None
            sizes[(height, width)] += 1
            modes[mode] += 1
    return dict(sizes), dict(modes)


def _read_skipped(*folders: Path) -> list[SkippedFile]:
    """The skipped files listed in the first ``IMPORT_RECORD`` found in ``folders`` ([] if none)."""
    for folder in folders:
        record = folder / IMPORT_RECORD
        if record.is_file():
            try:
                data = json.loads(record.read_text())
                return [SkippedFile(str(p), str(r)) for p, r in data.get("skipped", [])]
            except (ValueError, TypeError):
                return []
    return []


def _warnings(counts: dict[str, int], modes: dict[str, int]) -> list[str]:
    """Few images in a class, class imbalance, mixed image modes."""
    warnings: list[str] = []
    few = [f"{c} ({n})" for c, n in counts.items() if n < FEW_IMAGES]
    if few:
        warnings.append(
            f"Very few images in {', '.join(few)}: fewer than {FEW_IMAGES} per class gives unreliable "
            "training and validation; add more images."
        )
    largest = max(counts, key=lambda c: counts[c])
    smallest = min(counts, key=lambda c: counts[c])
    if counts[smallest] and counts[largest] / counts[smallest] > IMBALANCE_RATIO:
        warnings.append(
            f"Class imbalance: {largest!r} has {counts[largest]} images but {smallest!r} only "
            f"{counts[smallest]} ({counts[largest] / counts[smallest]:.1f}×); accuracy will favour the "
            "large classes — add images or watch per-class accuracy."
        )
    warnings.extend(_mode_notes(modes))
    return warnings


def _mode_notes(modes: dict[str, int]) -> list[str]:
    """What decoding will do to these modes, worded as :func:`cnndash.preprocess.convert_mode` does it."""
    notes: list[str] = []
    # As load_image_folder decides: grayscale only when every image is a grayscale mode.
    target = "grayscale" if all(m in GRAY_MODES for m in modes) else "RGB"
    families = {_mode_family(m) for m in modes}
    if len(families) > 1:
        listed = ", ".join(f"{m}: {n}" for m, n in sorted(modes.items()))
        alpha = " (transparent areas become white)" if "with transparency" in families else ""
        notes.append(f"Mixed image modes ({listed}): every image will be converted to {target}{alpha}.")
    deep = sum(n for m, n in modes.items() if m in SIXTEEN_BIT_MODES)
    if deep:
        notes.append(
            f"{deep} image(s) are 16-bit grayscale: they are scaled to 8 bits (0–65535 becomes 0–255), "
            "as the models take 8-bit pixels."
        )
    return notes


def _mode_family(mode: str) -> str:
    if "A" in mode.upper():  # RGBA, LA, PA, La, RGBa
        return "with transparency"
    if mode in GRAY_MODES:
        return "grayscale"
    return "colour"
