"""Pictures for the Grad-CAM page: heatmaps, overlays, grids of feature maps and filters, PNG bytes.

Pure functions: arrays in, ``uint8`` RGB arrays (or a Plotly figure) out. Images are RGB throughout
(PIL order, never OpenCV's BGR); grayscale images are shown as grey RGB so the heatmap colours stay
visible on them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from matplotlib import colormaps
from PIL import Image, ImageDraw

from cnndash.preprocess import convert_mode, image_to_uint8
from cnndash.text import N_, plotly_text, plotly_ticks

COLORMAPS = ("jet", "turbo", "inferno", "viridis", "magma", "gray")


def _check_cmap(cmap: str) -> None:
    if cmap not in COLORMAPS:
        raise ValueError(f"Unknown colour map {cmap!r}; choose one of {', '.join(COLORMAPS)}.")


def to_rgb_uint8(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array as ``(H, W, 3)`` uint8 RGB; a PIL
    image of any mode is converted as training converts it (transparency on white, CMYK to RGB)."""
    if isinstance(image, Image.Image):
        return np.asarray(convert_mode(image, "RGB"), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr * 255.0 if arr.max() <= 1.0 else arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 1) or (H, W, 3); got {arr.shape}.")
    return np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr


LABEL_STRIP = 14  # px above each tile of a labelled grid (PIL's default font is ~11 px high)
FILTER_GAP_PX = 8  # white space between filter tiles: enlarged weights of neighbouring filters would merge


def model_view(image: Image.Image, size: int | tuple[int, int], channels: int = 3) -> np.ndarray:
    """The image as the model takes it, as ``(H, W, 3)`` uint8 RGB: decoded and resized by the one path
    training uses (:func:`cnndash.preprocess.image_to_uint8`: transparency composited on white, antialiased
    bilinear resize), so what is shown is the model's input itself; with ``channels=1`` (a grayscale model)
    in grey, as the model sees it, not in colour. A non-square ``size`` (h, w) is resized with PIL."""
    h, w = (size, size) if isinstance(size, int) else size
    if h == w:
        pixels = image_to_uint8(image, channels=channels, size=h).permute(1, 2, 0).numpy()
        return to_rgb_uint8(pixels)
    mode = "L" if channels == 1 else "RGB"
    return to_rgb_uint8(convert_mode(image, mode).resize((w, h), Image.Resampling.BILINEAR))


def heatmap_rgb(cam: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """A ``(H, W)`` map in ``[0, 1]`` coloured with ``cmap``: ``(H, W, 3)`` uint8."""
    _check_cmap(cmap)
    values = np.clip(np.nan_to_num(np.asarray(cam, dtype=np.float32)), 0.0, 1.0)
    rgba = colormaps[cmap](values)
    return (rgba[..., :3] * 255 + 0.5).astype(np.uint8)


def overlay(
    image: Image.Image | np.ndarray, cam: np.ndarray, cmap: str = "jet", alpha: float = 0.5
) -> np.ndarray:
    """Blend the coloured map over the image: ``(1 - alpha) * image + alpha * heatmap``, ``(H, W, 3)`` uint8.

    The image is resized to the map's size when they differ.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Opacity must be between 0 and 1, got {alpha}.")
    rgb = to_rgb_uint8(image)
    h, w = np.asarray(cam).shape
    if rgb.shape[:2] != (h, w):
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))
    heat = heatmap_rgb(cam, cmap).astype(np.float32)
    out = (1.0 - alpha) * rgb.astype(np.float32) + alpha * heat
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement so small maps and filters stay crisp on screen."""
    factor = max(int(factor), 1)
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def image_grid(
    images: Sequence[np.ndarray],
    ncols: int = 8,
    pad: int = 2,
    background: int = 255,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """Tile equally sized ``(h, w, 3)`` uint8 images into one ``uint8`` image, ``ncols`` per row; with
    ``labels``, each tile gets its label written in a strip above it (so a downloaded grid says what
    each tile is)."""
    if not images:
        raise ValueError("No images to put in a grid.")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images; give one label per image.")
    tiles = [to_rgb_uint8(im) for im in images]
    h, w = tiles[0].shape[:2]
    label_h = LABEL_STRIP if labels is not None else 0
    ncols = max(1, min(ncols, len(tiles)))
    nrows = -(-len(tiles) // ncols)
    cell_h = h + label_h
    grid = np.full((nrows * (cell_h + pad) + pad, ncols * (w + pad) + pad, 3), background, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, ncols)
        y, x = pad + r * (cell_h + pad), pad + c * (w + pad)
        grid[y + label_h : y + cell_h, x : x + w] = tile
    if labels is None:
        return grid
    canvas = Image.fromarray(grid)
    draw = ImageDraw.Draw(canvas)
    for i, label in enumerate(labels):
        r, c = divmod(i, ncols)
        draw.text(
            (pad + c * (w + pad) + 2, pad + r * (cell_h + pad) + 1), str(label)[: max(4, w // 6)], fill=0
        )
    return np.asarray(canvas)


def feature_map_grid(
    maps: np.ndarray, cmap: str = "viridis", ncols: int = 8, min_side: int = 64
) -> np.ndarray:
    """Feature maps ``(k, h, w)`` as one image, each map min-max scaled on its own and enlarged to at
    least ``min_side`` pixels."""
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"Expected feature maps of shape (k, h, w) with k >= 1; got {maps.shape}.")
    factor = max(1, -(-min_side // max(maps.shape[1:])))
    tiles = []
    for m in maps:
        rng = float(m.max() - m.min())
        scaled = (m - m.min()) / rng if rng > 0 else np.zeros_like(m)
        tiles.append(upscale(heatmap_rgb(scaled, cmap), factor))
    return image_grid(tiles, ncols=ncols)


def filter_grid(
    filters: np.ndarray, ncols: int = 8, min_side: int = 48, labels: Sequence[str] | None = None
) -> np.ndarray:
    """First-layer filters ``(n, kh, kw, 1|3)`` in ``[0, 1]`` as one enlarged image grid (tiles of at least
    ``min_side`` px, pixels kept square and sharp), each tile under its label when ``labels`` are given."""
    filters = np.asarray(filters, dtype=np.float32)
    if filters.ndim != 4 or filters.shape[-1] not in (1, 3):
        raise ValueError(f"Expected filters of shape (n, kh, kw, 1|3); got {filters.shape}.")
    factor = max(1, -(-min_side // max(filters.shape[1:3])))
    tiles = [upscale(to_rgb_uint8(np.clip(f, 0, 1)), factor) for f in filters]
    return image_grid(tiles, ncols=ncols, pad=FILTER_GAP_PX, labels=labels)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3)`` (or grey) uint8 image as PNG."""
    buf = io.BytesIO()
    Image.fromarray(to_rgb_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()


def probability_figure(
    classes: Sequence[str], probabilities: Sequence[float], top: int = 10, *, tr: Callable[[str], str] = str
) -> go.Figure:
    """Horizontal bars of the ``top`` class probabilities, most probable on top; ``tr`` translates the axis."""
    probs = np.asarray(probabilities, dtype=float)
    order = np.argsort(-probs, kind="stable")[:top][::-1]
    fig = go.Figure(
        go.Bar(
            x=probs[order],
            y=[plotly_text(classes[i]) for i in order],
            orientation="h",
            text=[f"{p:.1%}" for p in probs[order]],
            textposition="auto",
            marker_color=["#d62728" if i == order[-1] else "#1f77b4" for i in order],
        )
    )
    fig.update_layout(
        xaxis={"range": [0, 1], "tickformat": ".0%", "title": tr(N_("probability"))},
        yaxis=plotly_ticks([classes[i] for i in order]),
        height=max(160, 28 * len(order) + 60),
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
    )
    return fig
