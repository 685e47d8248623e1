"""New image files for a trained run: images, folders and zips in, probabilities, flags and CSV out.

What ``python -m cnndash predict --run RUN_DIR PATHS…`` and the Evaluation page's Predict tab share:

- :func:`image_sources` (paths) and :func:`upload_sources` (uploaded files) list the images to classify,
  opening zips in place and expanding folders; nothing is decoded until a batch needs it;
- :func:`predict_sources` runs them through :func:`cnndash.evaluate.predict.predict_images` (the run's own
  validation preprocessing) in bounded batches;
- :func:`prediction_flags` marks what should not be trusted silently (low confidence, other channels);
- :func:`predictions_table` ranks the classes of each image for a table (the Predict tab's);
- :func:`predictions_csv` writes ``path,predicted,probability[,top2,p2,…]``, the format of a bundle's
  ``predict.py`` too.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cnndash.data.images import IMAGE_EXTENSIONS
from cnndash.data.limits import (
    ARCHIVE_RATIO_FLOOR,
    MAX_ARCHIVE_RATIO,
    MAX_ZIP_ENTRY_BYTES,
    MAX_ZIP_FILES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    RATIO_FLOOR,
)
from cnndash.evaluate.metrics import EvaluationError
from cnndash.evaluate.predict import ProgressCallback, predict_images
from cnndash.preprocess import GRAY_MODES, open_image
from cnndash.runs import Run, load_run
from cnndash.tables import spreadsheet_safe
from cnndash.text import N_, Phrase

# What `predict` and the Evaluation page's Predict tab classify (TIFF too: scanners and microscopes).
PREDICT_EXTENSIONS = (*IMAGE_EXTENSIONS, ".tif", ".tiff")
MAX_MEMBER_BYTES = MAX_ZIP_ENTRY_BYTES  # one image inside a zip; bigger members are refused, not read


@dataclass(frozen=True)
class ImageSource:
    """One image to classify: ``name`` for the CSV (``a.zip/dir/b.png`` inside a zip) and its bytes."""

    name: str
    read: Callable[[], bytes]

    def open(self) -> Image.Image:
        return open_image(self.read(), self.name)


def _is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return name.lower().endswith(PREDICT_EXTENSIONS) and not base.startswith(".") and "__MACOSX/" not in name


class _OpenZip:
    """One zip opened once — its central directory parsed once, not once per member — whose members are
    read one at a time under the limits of ``data import`` (:mod:`cnndash.data.limits`): sizes the headers
    declare are checked up front, and what is really read is counted and cut off at the same bounds."""

    def __init__(self, archive: zipfile.ZipFile, label: str, archive_bytes: int) -> None:
        self._archive, self._label = archive, label
        self._lock = threading.Lock()  # a ZipFile reads through one file position
        self._read_total = 0
        self._total_limit = min(
            MAX_ZIP_TOTAL_BYTES, max(ARCHIVE_RATIO_FLOOR, MAX_ARCHIVE_RATIO * archive_bytes)
        )

    def read(self, member: zipfile.ZipInfo) -> bytes:
        with self._lock, self._archive.open(member) as handle:
            data = handle.read(MAX_ZIP_ENTRY_BYTES + 1)  # what the header says is not trusted
            if len(data) > MAX_ZIP_ENTRY_BYTES:
                raise _too_big(member.filename, self._label)
            self._read_total += len(data)
            if self._read_total > self._total_limit:
                raise EvaluationError(
                    "{label} unpacks to more than {total_limit:.0f} MiB; refusing it as a possible zip bomb. Split "
                    "it into smaller zips.",
                    label=repr(self._label),
                    total_limit=self._total_limit / 2**20,
                )
            return data


def _too_big(member: str, label: str) -> EvaluationError:
    return EvaluationError(
        "{member} in {label} is larger than {max_zip_entry_bytes} MiB uncompressed; images up to "
        "{max_zip_entry_bytes} MiB are read. Remove it from the zip.",
        member=repr(member),
        label=repr(label),
        max_zip_entry_bytes=MAX_ZIP_ENTRY_BYTES // 2**20,
    )


def _check_members(infos: list[zipfile.ZipInfo], members: list[zipfile.ZipInfo], label: str) -> None:
    """The limits of ``data import`` on what the zip's headers declare (before anything is read)."""
    if len(infos) > MAX_ZIP_FILES:
        raise EvaluationError(
            "{label} has {n_infos:,} entries; at most {max_zip_files:,} are read. Split it into smaller "
            "zips.",
            label=repr(label),
            n_infos=len(infos),
            max_zip_files=MAX_ZIP_FILES,
        )
    for member in members:
        if member.file_size > MAX_ZIP_ENTRY_BYTES:
            raise _too_big(member.filename, label)
        if member.file_size > RATIO_FLOOR and member.file_size > MAX_ZIP_RATIO * max(member.compress_size, 1):
            raise EvaluationError(
                "{member_filename} in {label} expands more than {max_zip_ratio}× its compressed size; refusing "
                "it as a possible zip bomb.",
                member_filename=repr(member.filename),
                label=repr(label),
                max_zip_ratio=MAX_ZIP_RATIO,
            )
    if sum(m.file_size for m in members) > MAX_ZIP_TOTAL_BYTES:
        raise EvaluationError(
            "The images in {label} unpack to more than {max_zip_total_bytes} GiB; split the zip.",
            label=repr(label),
            max_zip_total_bytes=MAX_ZIP_TOTAL_BYTES // 2**30,
        )


def _zip_sources(path: Path | None, data: bytes | None = None, name: str = "") -> list[ImageSource]:
    """The images inside a zip file at ``path`` or held in ``data``, the zip opened once for all of them."""
    label = str(path) if path is not None else name
    try:
        archive = zipfile.ZipFile(path if path is not None else io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise EvaluationError(
            "{label} is not a readable zip file ({exc}).", label=repr(label), exc=exc
        ) from exc
    members = sorted(
        (m for m in infos if not m.is_dir() and _is_image_name(m.filename)), key=lambda m: m.filename
    )
    _check_members(infos, members, label)
    size = path.stat().st_size if path is not None else len(data or b"")
    opened = _OpenZip(archive, label, size)
    return [ImageSource(f"{label}/{m.filename}", partial(opened.read, m)) for m in members]


def upload_sources(uploads: Sequence[tuple[str, bytes]]) -> list[ImageSource]:
    """Uploaded ``(file name, bytes)``: images as they are, zips opened (an empty zip is an error)."""
    sources: list[ImageSource] = []
    for name, data in uploads:
        if name.lower().endswith(".zip"):
            found = _zip_sources(None, data, name)
            if not found:
                raise EvaluationError(
                    "The zip {name} contains no images ({predict_extensions}).",
                    name=repr(name),
                    predict_extensions=", ".join(PREDICT_EXTENSIONS),
                )
            sources.extend(found)
        else:
            sources.append(ImageSource(name, lambda data=data: data))
    return sources


def image_sources(paths: Sequence[str | os.PathLike]) -> list[ImageSource]:
    """Images named by ``paths``: image files as given, folders searched recursively, zips opened.

    Raises :class:`EvaluationError` for a path that does not exist and for a folder or zip with no image.
    Whether each file decodes is checked when it is opened (:class:`ImageDecodeError`).
    """
    sources: list[ImageSource] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_image_name(p.as_posix()))
            found_sources = [ImageSource(str(p), p.read_bytes) for p in found]
        elif path.is_file() and zipfile.is_zipfile(path):
            found_sources = _zip_sources(path)
        elif path.is_file():
            sources.append(ImageSource(str(path), path.read_bytes))
            continue
        else:
            raise EvaluationError(
                "{path} does not exist; pass image files, folders or zips.", path=repr(str(path))
            )
        if not found_sources:
            kind = "folder" if path.is_dir() else "zip"
            raise EvaluationError(
                "The {kind} {path} contains no images ({predict_extensions}).",
                kind=kind,
                path=repr(str(path)),
                predict_extensions=", ".join(PREDICT_EXTENSIONS),
            )
        sources.extend(found_sources)
    if not sources:
        raise EvaluationError("No images given; pass image files, folders or zips.")
    return sources


def predict_sources(
    run: Run | str | os.PathLike,
    sources: Sequence[ImageSource],
    *,
    checkpoint: str = "best",
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
    model=None,
) -> np.ndarray:
    """Probabilities ``(N, K)`` for ``sources``, decoded ``batch_size`` at a time (bounded memory)."""
    run = run if isinstance(run, Run) else load_run(run)
    if model is None:
        model = run.load_model(checkpoint)
    chunks = []
    for start in range(0, len(sources), batch_size):
        images = [source.open() for source in sources[start : start + batch_size]]
        chunks.append(predict_images(run, images, checkpoint=checkpoint, model=model))
        if on_progress is not None:
            on_progress(min(start + batch_size, len(sources)), len(sources))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(run.classes)))


def predictions_csv(names: Sequence[str], probs: np.ndarray, classes: Sequence[str], top_k: int = 1) -> str:
    """CSV ``path,predicted,probability[,top2,p2,…]``: the format of the CLI and of a bundle's predict.py.
    Text cells a spreadsheet would read as a formula get a leading ``'`` (:func:`cnndash.tables.spreadsheet_safe`)."""
    top_k = max(1, min(int(top_k), len(classes)))
    header = ["path", "predicted", "probability"]
    for rank in range(2, top_k + 1):
        header += [f"top{rank}", f"p{rank}"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for name, row in zip(names, np.asarray(probs), strict=True):
        cells = [spreadsheet_safe(str(name))]  # a file named "=HYPERLINK(…).png" stays text in a spreadsheet
        for idx in np.argsort(-row, kind="stable")[:top_k]:
            cells += [spreadsheet_safe(str(classes[idx])), f"{float(row[idx]):.6f}"]
        writer.writerow(cells)
    return out.getvalue()


def predictions_table(
    names: Sequence[str], probs: np.ndarray, classes: Sequence[str], k: int, flags: Sequence[str]
) -> pd.DataFrame:
    """One row per image: ``file``, ``predicted``, ``confidence`` (the top probability), the ranked
    runners-up ``#2`` … ``#k`` as ``"class (p%)"`` and the ``flag`` of :func:`prediction_flags`."""
    probs = np.asarray(probs)
    ranked = np.argsort(-probs, axis=1, kind="stable")
    frame = pd.DataFrame(
        {
            "file": list(names),
            N_("predicted"): [classes[row[0]] for row in ranked],
            N_("confidence"): probs.max(axis=1).astype(float),
        }
    )
    for rank in range(2, k + 1):
        frame[f"#{rank}"] = [
            f"{classes[row[rank - 1]]} ({p[row[rank - 1]]:.1%})" for row, p in zip(ranked, probs, strict=True)
        ]
    frame["flag"] = list(flags)
    return frame


LOW_CONFIDENCE = 0.5  # default threshold on the top probability below which a prediction is flagged


def prediction_flags(
    probs: np.ndarray, image_modes: Sequence[str], channels: int, threshold: float = LOW_CONFIDENCE
) -> list[str]:
    """Why each prediction should not be trusted blindly ("" when nothing is wrong).

    - ``low confidence``: the top probability is below ``threshold`` (the image may be far from every
      class the model knows);
    - ``colour image, grayscale model`` / ``grayscale image, colour model``: the image's channels differ
      from the training images', so it is converted and likely unlike what the model saw.
    """
    flags = []
    for row, mode in zip(np.asarray(probs), image_modes, strict=True):
        reasons: list[str] = []
        if float(row.max()) < threshold:
            reasons.append(Phrase(N_("low confidence (< {threshold:.0%})"), threshold=threshold))
        is_gray = mode in GRAY_MODES
        if channels == 1 and not is_gray:
            reasons.append(N_("colour image, grayscale model"))
        elif channels == 3 and is_gray:
            reasons.append(N_("grayscale image, colour model"))
        # At most two reasons; kept as a Phrase so that a page shows the flag in the reader's language.
        if len(reasons) == 2:
            flags.append(Phrase(N_("{first}; {second}"), first=reasons[0], second=reasons[1]))
        else:
            flags.append(reasons[0] if reasons else "")
    return flags
