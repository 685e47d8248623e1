"""What an image-folder dataset contains, for people: the report shown on the Data page after an upload, and
the files the upload skipped summarised by reason (:func:`group_skipped`), the real problems first."""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass
from pathlib import Path

from cnndash.data.folders import Items, find_dataset_root, scan_image_folder
from cnndash.data.images import DatasetError
from cnndash.preprocess import GRAY_MODES, SIXTEEN_BIT_MODES, ImageDecodeError, image_header
from cnndash.text import N_, Phrase

IMPORT_RECORD = ".cnndash-import.json"  # hidden file in a stored dataset: skipped files from the upload
FEW_IMAGES = 10  # a class with fewer images than this gets a warning
IMBALANCE_RATIO = 3.0  # largest / smallest class above this gets a warning


@dataclass(frozen=True)
class SkippedFile:
    """A file of an uploaded archive that is not part of the dataset, and why."""

    path: str
    reason: str


# Why a file was skipped, by kind, in the order a person should read them: images that were meant to be
# in the dataset and are not (unreadable, outside every class folder) before files that never were.
SKIP_KINDS = ("unreadable", "outside", "not_image", "system")
PROBLEM_KINDS = frozenset({"unreadable", "outside"})
FILES_LISTED = 3  # files named in one line of the summary; the rest are counted


def skip_kind(reason: str) -> str:
    """The kind (one of :data:`SKIP_KINDS`) of a skip ``reason`` as the archive code words it."""
    if reason.startswith("unreadable"):
        return "unreadable"
    if reason.startswith("not inside a class folder"):
        return "outside"
    if reason.startswith("not an image"):
        return "not_image"
    return "system"  # macOS metadata (__MACOSX), hidden files (.DS_Store, ._*)


def short_reason(reason: str) -> str:
    """What went wrong with an unreadable image, in a word or two: ``truncated``, ``not an image``,
    ``too large``, or the decoder's own first words."""
    lower = reason.lower()
    if "truncated" in lower:
        return Phrase(N_("truncated"))  # our words are Phrases (the page translates them); PIL's stay as data
    if "cannot identify" in lower or "not an image" in lower:
        return Phrase(N_("not an image"))
    if "megapixels" in lower or "decompression bomb" in lower:
        return Phrase(N_("too large"))
    detail = reason.split(":", 1)[-1].strip().removeprefix("does not decode as an image:").strip()
    return detail.split("(")[0].strip().rstrip(".") or Phrase(N_("unreadable"))


def reason_phrase(reason: str) -> str:
    """A skip ``reason`` as the archive words it (and an import record keeps it), as a
    :class:`~cnndash.text.Phrase` a page says in its reader's language; the file's own details stay data."""
    kind = skip_kind(reason)
    if kind == "unreadable":
        return Phrase(
            N_("unreadable image: {detail}"), detail=reason.removeprefix("unreadable image:").strip()
        )
    if kind == "outside":
        return Phrase(N_("not inside a class folder"))
    if kind == "not_image":
        suffix = reason.removeprefix("not an image").strip(" ()")
        return Phrase(
            N_("not an image ({suffix})"),
            suffix=Phrase(N_("no extension")) if suffix == "no extension" else suffix,
        )
    if reason == "hidden file":
        return Phrase(N_("hidden file"))
    if reason.startswith("macOS metadata"):
        return Phrase(N_("macOS metadata (__MACOSX)"))
    return reason


@dataclass(frozen=True)
class SkippedGroup:
    """The skipped files of one kind (:data:`SKIP_KINDS`)."""

    kind: str
    files: tuple[SkippedFile, ...]

    @property
    def problem(self) -> bool:
        """True for images that were meant to be in the dataset and are not (worth a warning)."""
        return self.kind in PROBLEM_KINDS

    def describe(self, listed: int = FILES_LISTED) -> str:
        """One line: how many, why, and the first ``listed`` files when they matter, e.g.
        ``1 unreadable image: rocket/truncated.jpg (truncated)`` or ``281 system files ignored``."""
        n = len(self.files)
        shown = self.files[:listed]
        one = n == 1
        if self.kind in ("unreadable", "outside"):
            if self.kind == "unreadable":  # each file with its reason, translated alone (no words of its own)
                each = {f"f{i}": Phrase(N_("{path} ({why})"), path=f.path, why=short_reason(f.reason))
                        for i, f in enumerate(shown)}  # fmt: skip
                joined = ", ".join(
                    f"{{{key}}}" for key in each
                )  # no words: a template Babel must not extract
                names: str = Phrase(joined, **each)
            else:
                names = ", ".join(f.path for f in shown)
            if n > len(shown):
                names = Phrase(N_("{names} and {n} more"), names=names, n=n - len(shown))
            if self.kind == "unreadable":
                template = (
                    N_("{n:,} unreadable image: {names}") if one else N_("{n:,} unreadable images: {names}")
                )
            else:
                template = (
                    N_("{n:,} image outside every class folder: {names}")
                    if one
                    else N_("{n:,} images outside every class folder: {names}")
                )
            return Phrase(template, n=n, names=names)
        if self.kind == "not_image":
            suffixes = sorted({f.reason.removeprefix("not an image").strip(" ()") for f in self.files})
            template = (
                N_("{n:,} file that is not an image ignored ({suffixes})")
                if one
                else N_("{n:,} files that are not images ignored ({suffixes})")
            )
            return Phrase(template, n=n, suffixes=", ".join(suffixes))
        template = (
            N_("{n:,} system file ignored (__MACOSX, .DS_Store and other hidden files)")
            if one
            else N_("{n:,} system files ignored (__MACOSX, .DS_Store and other hidden files)")
        )
        return Phrase(template, n=n)


def group_skipped(skipped: list[SkippedFile]) -> list[SkippedGroup]:
    """``skipped`` grouped by kind, problems first (unreadable images, images outside the class folders),
    then non-images, then system junk; empty kinds left out."""
    by_kind: dict[str, list[SkippedFile]] = {kind: [] for kind in SKIP_KINDS}
    for file in skipped:
        by_kind[skip_kind(file.reason)].append(file)
    return [SkippedGroup(kind, tuple(files)) for kind, files in by_kind.items() if files]


def skipped_summary(skipped: list[SkippedFile], listed: int = FILES_LISTED) -> str:
    """:func:`group_skipped` in one line, problems first: ``1 unreadable image: rocket/truncated.jpg
    (truncated); 281 system files ignored (…)``; empty when nothing was skipped."""
    groups = [group.describe(listed) for group in group_skipped(skipped)]
    if len(groups) == 1:
        return groups[0]  # a Phrase: the page shows it in the reader's language
    joined = "; ".join(f"{{g{i}}}" for i in range(len(groups)))  # no words: each group is translated alone
    return Phrase(joined, **{f"g{i}": group for i, group in enumerate(groups)})


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
                raise DatasetError(exc.template, **exc.params) from None  # its words, in any language
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
            Phrase(
                N_(
                    "Very few images in {classes}: fewer than {few} per class gives unreliable training and "
                    "validation; add more images."
                ),
                classes=", ".join(few),
                few=FEW_IMAGES,
            )
        )
    largest = max(counts, key=lambda c: counts[c])
    smallest = min(counts, key=lambda c: counts[c])
    if counts[smallest] and counts[largest] / counts[smallest] > IMBALANCE_RATIO:
        warnings.append(
            Phrase(
                N_(
                    "Class imbalance: {largest} has {n:,} images but {smallest} only {m} ({ratio:.1f}×); accuracy "
                    "will favour the large classes — add images or watch per-class accuracy."
                ),
                largest=repr(largest),
                n=counts[largest],
                smallest=repr(smallest),
                m=counts[smallest],
                ratio=counts[largest] / counts[smallest],
            )
        )

    warnings.extend(_mode_notes(modes))
    return warnings


def _mode_notes(modes: dict[str, int]) -> list[str]:
    """What decoding will do to these modes, worded as :func:`cnndash.preprocess.convert_mode` does it."""
    notes: list[str] = []
    # As load_image_folder decides: grayscale only when every image is a grayscale mode.
    target = Phrase(N_("grayscale")) if all(m in GRAY_MODES for m in modes) else "RGB"
    families = {_mode_family(m) for m in modes}
    if len(families) > 1:
        listed = ", ".join(f"{m}: {n}" for m, n in sorted(modes.items()))
        mixed = (
            N_(
                "Mixed image modes ({modes}): every image will be converted to {target} (transparent areas "
                "become white)."
            )
            if "with transparency" in families
            else N_("Mixed image modes ({modes}): every image will be converted to {target}.")
        )
        notes.append(Phrase(mixed, modes=listed, target=target))
    deep = sum(n for m, n in modes.items() if m in SIXTEEN_BIT_MODES)
    if deep:
        sixteen = (
            N_(
                "{count} image is 16-bit grayscale: scaled to 8 bits (0–65535 becomes 0–255), as the models "
                "take 8-bit pixels."
            )
            if deep == 1
            else N_(
                "{count} images are 16-bit grayscale: scaled to 8 bits (0–65535 becomes 0–255), as the models "
                "take 8-bit pixels."
            )
        )
        notes.append(Phrase(sixteen, count=f"{deep:,}"))
    return notes


def _mode_family(mode: str) -> str:
    if "A" in mode.upper():  # RGBA, LA, PA, La, RGBa
        return "with transparency"
    if mode in GRAY_MODES:
        return "grayscale"
    return "colour"
