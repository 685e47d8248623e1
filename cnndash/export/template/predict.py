"""Classify images with an exported cnndash model — needs only Pillow, NumPy and onnxruntime or torch.

    python predict.py IMAGES_OR_FOLDERS… [--engine onnx|torchscript] [--top-k K]

prints CSV ``path,predicted,probability`` (plus ``top2,p2,…`` with ``--top-k``), one row per image.

The preprocessing is cnndash's own recipe for validation images, reproduced without cnndash:

1. decode with Pillow (no EXIF rotation);
2. convert to ``L`` (1-channel model) or ``RGB``; transparent pixels are composited on white first;
3. resize to the model's input size with torch's antialiased bilinear uint8 resize (the Pillow-SIMD
   algorithm: int16 fixed-point weights, horizontal pass then vertical pass, each rounded to uint8) —
   :func:`resize_uint8` is a NumPy port that is bit-exact with ``torchvision``'s ``TF.resize``;
4. float32 = uint8 / 255, shape ``(N, C, H, W)``. Normalisation and softmax happen inside the model.

This file is copied verbatim into every bundle; cnndash's tests import the same file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
HERE = Path(__file__).resolve().parent


# The same decoding rules as cnndash.preprocess (kept in step by cnndash's tests):
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})  # scaled to 8 bits (>> 8)
REDUCIBLE_MODES = frozenset({"L", "RGB", "RGBA", "LA", "I", "F", "CMYK", "YCbCr"})  # Image.reduce takes these
DECODE_MIN_SIDE = 1024  # large images are reduced while decoding to a shorter side of 1024..2047 px


def convert_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as ``mode`` (``"L"`` or ``"RGB"``): 16-bit grayscale scaled to 8 bits, transparent pixels
    (alpha channel or transparent colour) composited on white, everything else Pillow's own conversion."""
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image)
        if pixels.dtype != np.uint16:
            pixels = np.clip(pixels, 0, 65535)
        image = Image.fromarray((pixels >> 8).astype(np.uint8), "L")
    if "A" in image.mode.upper() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == mode else image.convert(mode)


def _reduction(width: int, height: int) -> int:
    return max(1, min(width, height) // DECODE_MIN_SIDE)


def decode_reduced(image: Image.Image) -> Image.Image:
    """Load ``image``, downscaled while decoding when it is large (JPEG draft, then Image.reduce)."""
    factor = _reduction(image.width, image.height)
    if factor > 1:
        image.draft(image.mode, (image.width // factor, image.height // factor))
    image.load()
    factor = _reduction(image.width, image.height)
    if factor == 1:
        return image
    if image.mode not in REDUCIBLE_MODES:
        image = convert_mode(image, "L" if image.mode in GRAY_MODES else "RGB")
    return image.reduce(factor)


def _int16_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Tap indices ``(out, taps)``, integer weights ``(out, taps)`` and their precision (bits).

    torch's ``_compute_indices_int16_weights_aa`` for bilinear, antialias=True, align_corners=False.
    """
    scale = in_size / out_size
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    taps = int(np.ceil(support)) * 2 + 1
    index = np.zeros((out_size, taps), dtype=np.int64)
    weight = np.zeros((out_size, taps), dtype=np.float64)
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)  # int() truncates toward zero, as the C cast does
        xsize = min(int(center + support + 0.5), in_size) - xmin
        j = np.arange(xsize)
        w = np.maximum(0.0, 1.0 - np.abs((j + xmin - center + 0.5) * invscale))
        total = w.sum()
        weight[i, :xsize] = w / total if total != 0.0 else w
        index[i, :xsize] = xmin + j
        index[i, xsize:] = xmin  # weight 0: any valid index
    w_max = weight.max()
    precision = 0
    while precision < 22 and int(0.5 + w_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    return index, (0.5 + weight * (1 << precision)).astype(np.int64), precision


def _resample_first_axis(pixels: np.ndarray, out_size: int) -> np.ndarray:
    """One separable pass along axis 0 of an int32 array of uint8 values (rows gathered whole: fast)."""
    index, weight, precision = _int16_weights(pixels.shape[0], out_size)
    weight = weight.astype(np.int32).reshape((out_size, index.shape[1]) + (1,) * (pixels.ndim - 1))
    # int32 is enough: 255 * (sum of weights ≈ 2**precision ≤ 2**22) < 2**31.
    acc = np.full((out_size, *pixels.shape[1:]), 1 << (precision - 1), dtype=np.int32)
    for tap in range(index.shape[1]):
        acc += pixels[index[:, tap]] * weight[:, tap]
    return np.clip(acc >> precision, 0, 255)


def resize_uint8(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(C, H, W)`` uint8 -> ``(C, height, width)`` uint8, bit-exact with torch's antialiased bilinear."""
    if pixels.shape[-2:] == (height, width):
        return pixels
    out = pixels.transpose(2, 0, 1).astype(np.int32)  # (W, C, H)
    if out.shape[0] != width:  # horizontal pass first, as torch does
        out = _resample_first_axis(out, width)
    out = np.ascontiguousarray(out.transpose(2, 1, 0))  # (H, C, width)
    if out.shape[0] != height:
        out = _resample_first_axis(out, height)
    return np.ascontiguousarray(out.transpose(1, 0, 2), dtype=np.uint8)


def image_to_array(image: Image.Image, channels: int, size: tuple[int, int]) -> np.ndarray:
    """A decoded image -> ``(C, H, W)`` float32 in [0, 1] at the model's input size."""
    image = convert_mode(image, "L" if channels == 1 else "RGB")
    pixels = np.array(image, dtype=np.uint8, copy=True)
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    resized = resize_uint8(pixels, int(size[0]), int(size[1]))
    return resized.astype(np.float32) / np.float32(255.0)


def load_image(path: Path) -> Image.Image:
    """Decode ``path``; an unreadable file raises ValueError naming it."""
    try:
        with Image.open(path) as image:
            image.seek(0)  # first frame, as cnndash reads it
            return decode_reduced(image)
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"{str(path)!r} is not an image Pillow can read ({exc})") from exc


def image_paths(inputs: list[str]) -> list[Path]:
    """Files as given; folders expanded to their images (recursively, sorted)."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise ValueError(f"folder {str(item)!r} contains no images")
            paths.extend(found)
        elif item.is_file():
            paths.append(item)
        else:
            raise ValueError(f"{str(item)!r} does not exist")
    return paths


class Model:
    """The bundle's model through onnxruntime (``onnx``) or torch (``torchscript``)."""

    def __init__(self, bundle: Path = HERE, engine: str = "onnx") -> None:
        self.card = json.loads((bundle / "model.json").read_text(encoding="utf-8"))
        self.engine = engine
        if engine == "onnx":
            import onnxruntime  # optional: only the chosen engine must be installed

            self.session = onnxruntime.InferenceSession(
                str(bundle / "model.onnx"), providers=["CPUExecutionProvider"]
            )
            self.input_name = self.session.get_inputs()[0].name
        elif engine == "torchscript":
            import torch

            with warnings.catch_warnings():  # torch.jit is deprecated in recent torch, still supported
                warnings.simplefilter("ignore", FutureWarning)
                self.module = torch.jit.load(str(bundle / "model.torchscript.pt"), map_location="cpu")
            self.module.eval()
        else:
            raise ValueError(f"unknown engine {engine!r}; choose onnx or torchscript")

    def preprocess(self, images: list[Image.Image]) -> np.ndarray:
        channels, size = int(self.card["channels"]), self.card["input_size"]
        if not images:
            return np.zeros((0, channels, int(size[0]), int(size[1])), dtype=np.float32)
        return np.stack([image_to_array(image, channels, size) for image in images])

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` float32 in [0, 1] -> ``(N, K)`` class probabilities."""
        if self.engine == "onnx":
            return self.session.run(None, {self.input_name: batch})[0]
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(batch)).numpy()

    def predict(self, images: list[Image.Image]) -> np.ndarray:
        return self.probabilities(self.preprocess(images))


# A text cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (a file named
# "=HYPERLINK(…).png" would be a live link): such cells get a leading apostrophe, shown as text. The same
# rule as cnndash.tables (kept in step by cnndash's tests).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """``value`` unchanged, unless it is a string a spreadsheet would read as a formula: then ``'`` + it."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(paths: list, probs: np.ndarray, classes: list[str], top_k: int, out=sys.stdout) -> None:
    """``path,predicted,probability[,top2,p2,…]`` rows (probabilities with 6 decimals); file and class
    names that a spreadsheet would read as formulas are written as text (:func:`spreadsheet_safe`)."""
    top_k = max(1, min(top_k, len(classes)))
    header = ["path", "predicted", "probability"]
    for rank in range(2, top_k + 1):
        header += [f"top{rank}", f"p{rank}"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for path, row in zip(paths, probs, strict=True):
        order = np.argsort(-row, kind="stable")[:top_k]
        cells = [spreadsheet_safe(str(path))]
        for idx in order:
            cells += [spreadsheet_safe(str(classes[idx])), f"{float(row[idx]):.6f}"]
        writer.writerow(cells)


BATCH = 64  # images per forward pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify images with this exported cnndash model.")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--engine", choices=["onnx", "torchscript"], default="onnx")
    parser.add_argument("--top-k", type=int, default=1, help="also list the next K-1 classes")
    args = parser.parse_args(argv)
    try:
        paths = image_paths(args.images)
        model = Model(HERE, args.engine)
        chunks = []
        for start in range(0, len(paths), BATCH):
            chunks.append(model.predict([load_image(p) for p in paths[start : start + BATCH]]))
    except (ValueError, OSError, ImportError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    write_csv(paths, np.concatenate(chunks), model.card["classes"], args.top_k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
