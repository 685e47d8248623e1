"""Datasets the tests share, built on disk from nothing: the hostile-names dataset, its tiny trained run, and
the messy phone-export zip.

- **Hostile names** (:func:`hostile_names_zip`, :func:`make_hostile_home`): class folders and files named
  like Markdown links, Streamlit colour directives and icons, HTML with an ``onerror``, LaTeX, spreadsheet
  formulas, right-to-left text and 200-character names; a dataset name that is Markdown at the start of a
  line; a run whose folder name (``train --out``) holds markup and a right-to-left override. Small enough to
  train in a second or two. Every page's AppTest and ``tests/e2e/test_hostile_names.py`` open it.
- **A messy phone export** (:func:`messy_phone_zip`): what a phone's "export to zip" on a Mac gives —
  ``__MACOSX/`` AppleDouble files and ``.DS_Store`` junk, JPEG, PNG, WebP, GIF and BMP photos, a CMYK JPEG,
  a transparent PNG, and one truncated JPEG (``rocket/truncated.jpg``).
"""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

# --------------------------------------------------------------------------------------------------
# Hostile names

LINK = "[Log in again](https:evil.example)"
DIRECTIVES = ":red[alarm] :smile: **bold**"
HTML_IMAGE = "<img src=x onerror=alert(1)>"
LATEX = "$x^2$ and $$y$$"
FORMULA = '=HYPERLINK("https:evil.example";"open")'
RIGHT_TO_LEFT = "שלום مرحبا 42"
CODE = "`code` <b>bold <a href=https:evil.example>x"
LONG = ("_Long class name with *stars* " * 8)[:200]
# The class folders, one per kind of markup (sorted as the dataset sorts its classes). A folder name cannot
# hold '/', so no closing tags, no ":material/…:" icon and no "/C" here (file names have the same limit).
HOSTILE_CLASSES = sorted([LINK, DIRECTIVES, HTML_IMAGE, LATEX, FORMULA, RIGHT_TO_LEFT, CODE, LONG])
# File names inside the classes (an index is appended: "<name>-3.png").
HOSTILE_FILES = [
    "[click](https:evil.example)",
    "<img src=y onerror=alert(2)>",
    "$f$",
    "=HYPERLINK(1)",
    ":blue[f]",
    ("file name " * 20)[:190],
]
HOSTILE_DATASET = "1.__bold__"  # a valid dataset name that is an ordered list and bold text in Markdown
HOSTILE_RUN = "[Run](https:evil.example) $r$ :red[run] \u202egnp.exe"  # a `train --out` folder name
# What a page must never render from these names: a link, an image, a colour or an icon directive, LaTeX.
HOSTILE_TEXTS = [*HOSTILE_CLASSES, *HOSTILE_FILES, HOSTILE_DATASET, HOSTILE_RUN]
IMAGES_PER_CLASS = 6
IMAGE_SIDE = 16


def _png(colour: tuple[int, int, int], seed: int) -> bytes:
    """A small PNG of one colour with a little noise (the classes stay easy to learn)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (IMAGE_SIDE, IMAGE_SIDE, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def hostile_names_zip(path: Path) -> Path:
    """A zip of :data:`HOSTILE_CLASSES` folders holding :data:`IMAGES_PER_CLASS` PNGs with hostile names."""
    with zipfile.ZipFile(path, "w") as archive:
        for k, cls in enumerate(HOSTILE_CLASSES):
            colour = ((k * 97) % 256, (k * 53 + 80) % 256, (k * 31 + 160) % 256)
            for i in range(IMAGES_PER_CLASS):
                stem = HOSTILE_FILES[i % len(HOSTILE_FILES)]
                archive.writestr(f"{cls}/{stem}-{i}.png", _png(colour, k * 100 + i))
    return path


def install_hostile(data_dir: Path, runs_dir: Path, work: Path) -> Path:
    """Import :data:`HOSTILE_DATASET` into ``data_dir`` and train :data:`HOSTILE_RUN` (LeNet, 2 epochs, a few
    seconds) into ``runs_dir``, as a user would (``data import``, ``train --out``); returns the run folder.
    ``work`` holds the zip."""
    from cnndash import data
    from cnndash.training.loops import TrainConfig, train

    runs_dir.mkdir(parents=True, exist_ok=True)
    data.import_dataset_zip(hostile_names_zip(work / "hostile.zip"), HOSTILE_DATASET, data_dir=data_dir)
    saved = {key: os.environ.get(key) for key in ("CNNDASH_DATA_DIR", "CNNDASH_RUNS_DIR")}
    os.environ["CNNDASH_DATA_DIR"], os.environ["CNNDASH_RUNS_DIR"] = str(data_dir), str(runs_dir)
    try:
        # batch 8: 36 training images make 5 steps an epoch (one-cycle needs more than a couple of steps)
        config = TrainConfig(
            dataset=HOSTILE_DATASET, model="lenet", epochs=2, batch_size=8, val_fraction=0.25, seed=0
        )
        train(config, runs_dir / HOSTILE_RUN)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return runs_dir / HOSTILE_RUN


def make_hostile_home(home: Path) -> tuple[Path, Path]:
    """``home/data`` with :data:`HOSTILE_DATASET` imported and ``home/runs`` with :data:`HOSTILE_RUN`
    (:func:`install_hostile`); returns (data folder, runs folder)."""
    data_dir, runs_dir = home / "data", home / "runs"
    install_hostile(data_dir, runs_dir, home)
    return data_dir, runs_dir


def copy_home(source: tuple[Path, Path], target: Path) -> tuple[Path, Path]:
    """A private copy of a (data folder, runs folder) pair under ``target``."""
    data_dir, runs_dir = target / "data", target / "runs"
    shutil.copytree(source[0], data_dir)
    shutil.copytree(source[1], runs_dir)
    return data_dir, runs_dir


# --------------------------------------------------------------------------------------------------
# A phone's export, zipped on a Mac

MESSY_CLASSES = ("rocket", "tree")
MESSY_TRUNCATED = "rocket/truncated.jpg"
MESSY_CMYK = "rocket/IMG_cmyk.jpg"
MESSY_TRANSPARENT = "tree/sticker.png"


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _photo(seed: int, side: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8), "RGB")


def transparent_png() -> Image.Image:
    """An RGBA sticker: a red square on a fully transparent background whose hidden colour is black."""
    pixels = np.zeros((48, 48, 4), dtype=np.uint8)
    pixels[12:36, 12:36] = (220, 30, 30, 255)
    return Image.fromarray(pixels, "RGBA")


def messy_phone_zip(path: Path, *, junk: int = 281, photos_per_class: int = 8) -> Path:
    """A zip as a Mac makes it from a phone's photos: ``photos_per_class`` photos in each of
    :data:`MESSY_CLASSES` in mixed formats, plus a CMYK JPEG, a transparent PNG, a truncated JPEG, and
    ``junk`` system files (``__MACOSX/`` AppleDouble twins and ``.DS_Store``)."""
    formats = [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("gif", "GIF"), ("bmp", "BMP")]
    entries: dict[str, bytes] = {}
    for c, cls in enumerate(MESSY_CLASSES):
        for i in range(photos_per_class):
            suffix, fmt = formats[i % len(formats)]
            entries[f"{cls}/IMG_{c}{i:03d}.{suffix}"] = _encode(_photo(c * 100 + i), fmt)
    entries[MESSY_CMYK] = _encode(_photo(7).convert("CMYK"), "JPEG")
    entries[MESSY_TRANSPARENT] = _encode(transparent_png(), "PNG")
    whole = _encode(_photo(8, side=96), "JPEG")
    entries[MESSY_TRUNCATED] = whole[: len(whole) // 2]
    junk_names = [".DS_Store", *(f"{cls}/.DS_Store" for cls in MESSY_CLASSES)]
    images = sorted(entries)
    for k in range(max(junk - len(junk_names), 0)):
        name = images[k % len(images)]
        folder, _, file = name.rpartition("/")
        junk_names.append(f"__MACOSX/{folder}/._{file}" + (f".{k}" if k >= len(images) else ""))
    with zipfile.ZipFile(path, "w") as archive:
        for name in images:
            archive.writestr(name, entries[name])
        for name in junk_names[:junk]:
            archive.writestr(name, b"\x00\x05\x16\x07" + bytes(28))  # AppleDouble magic, then nothing useful
    return path


# --------------------------------------------------------------------------------------------------
# An easy dataset with a few wrong labels: a model that learns it finds them (a trustworthy check)

NOISY_CLASSES = ("blue", "green", "red")
NOISY_WRONG = "val/red/blue-wrong.png"  # the one wrong label: a blue image filed under red
NOISY_COLOURS = {"blue": (30, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}


def noisy_colours_zip(path: Path, train_per_class: int = 20, val_per_class: int = 10) -> Path:
    """Three solid-colour classes in ``train/`` and ``val/`` folders, every label right but one: the
    validation image :data:`NOISY_WRONG`. A small CNN learns the colours in a second and then disagrees
    with exactly that label (out of sample: it is a validation image), at about 97 % agreement."""
    with zipfile.ZipFile(path, "w") as archive:
        for c, cls in enumerate(NOISY_CLASSES):
            for split, count in (("train", train_per_class), ("val", val_per_class)):
                for i in range(count):
                    archive.writestr(f"{split}/{cls}/{cls}-{i}.png", _png(NOISY_COLOURS[cls], c * 1000 + i))
        archive.writestr(NOISY_WRONG, _png(NOISY_COLOURS["blue"], 999))
    return path
