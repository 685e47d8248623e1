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
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cnndash.data.images import IMAGE_EXTENSIONS
from cnndash.evaluate.metrics import EvaluationError
from cnndash.evaluate.predict import ProgressCallback, predict_images
from cnndash.preprocess import GRAY_MODES, open_image
from cnndash.runs import Run, load_run

# the Evaluation page's Predict tab).

PREDICT_EXTENSIONS = (*IMAGE_EXTENSIONS, ".tif", ".tiff")
MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one image inside a zip; bigger members are refused, not read


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


def _zip_sources(path: Path | None, data: bytes | None = None, name: str = "") -> list[ImageSource]:
    """The images inside a zip file at ``path`` (read member by member) or held in ``data``."""
    label = str(path) if path is not None else name
    try:
        with zipfile.ZipFile(path if path is not None else io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and _is_image_name(m.filename)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise EvaluationError(f"{label!r} is not a readable zip file ({exc}).") from exc
    for member in members:
        if member.file_size > MAX_MEMBER_BYTES:
            raise EvaluationError(
                f"{member.filename!r} in {label!r} is {member.file_size / 2**20:.0f} MiB uncompressed; "
                f"images up to {MAX_MEMBER_BYTES // 2**20} MiB are read. Remove it from the zip."
            )

    def reader(member: str) -> Callable[[], bytes]:
        def read() -> bytes:
            with zipfile.ZipFile(path if path is not None else io.BytesIO(data)) as archive:
                return archive.read(member)

        return read

    members.sort(key=lambda m: m.filename)
    return [ImageSource(f"{label}/{m.filename}", reader(m.filename)) for m in members]


def upload_sources(uploads: Sequence[tuple[str, bytes]]) -> list[ImageSource]:
    """Uploaded ``(file name, bytes)``: images as they are, zips opened (an empty zip is an error)."""
    sources: list[ImageSource] = []
    for name, data in uploads:
        if name.lower().endswith(".zip"):
            found = _zip_sources(None, data, name)
            if not found:
                raise EvaluationError(
                    f"The zip {name!r} contains no images ({', '.join(PREDICT_EXTENSIONS)})."
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
            raise EvaluationError(f"{str(path)!r} does not exist; pass image files, folders or zips.")
        if not found_sources:
            kind = "folder" if path.is_dir() else "zip"
            raise EvaluationError(
                f"The {kind} {str(path)!r} contains no images ({', '.join(PREDICT_EXTENSIONS)})."
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
    """CSV ``path,predicted,probability[,top2,p2,…]``: the format of the CLI and of a bundle's predict.py."""
    top_k = max(1, min(int(top_k), len(classes)))
    header = ["path", "predicted", "probability"]
    for rank in range(2, top_k + 1):
        header += [f"top{rank}", f"p{rank}"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for name, row in zip(names, np.asarray(probs), strict=True):
        cells = [str(name)]
        for idx in np.argsort(-row, kind="stable")[:top_k]:
            cells += [str(classes[idx]), f"{float(row[idx]):.6f}"]
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
            "predicted": [classes[row[0]] for row in ranked],
            "confidence": probs.max(axis=1).astype(float),
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
        reasons = []
        if float(row.max()) < threshold:
            reasons.append(f"low confidence (< {threshold:.0%})")
        is_gray = mode in GRAY_MODES
        if channels == 1 and not is_gray:
            reasons.append("colour image, grayscale model")
        elif channels == 3 and is_gray:
            reasons.append("grayscale image, colour model")
        flags.append("; ".join(reasons))
    return flags
