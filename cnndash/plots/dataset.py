"""Figure builders for the Data & augmentation page: data in, Plotly figure (or PIL image) out.

Pure functions, no Streamlit: the page passes their results to ``st.plotly_chart`` / ``st.image``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import plotly.graph_objects as go
from PIL import Image, ImageOps

from cnndash.preprocess import convert_mode
from cnndash.text import N_, plotly_texts, plotly_ticks, plural

SPLIT_LABELS = {"all": N_("images"), "train": N_("train"), "val": N_("val")}
SPLIT_COLOURS = {"all": "#4C78A8", "train": "#4C78A8", "val": "#F58518"}
FIGURE_HEIGHT = 320  # px: two figures side by side fit on a laptop screen above the gallery
MARGINS = {"l": 40, "r": 10, "t": 50, "b": 40}  # px: room for the axis titles and the figure title
# Marker diameters (px) in the image-size scatter: the smallest point, plus up to this much for the
# most common size; the area grows with the count (diameter with its square root).
MARKER_MIN = 10
MARKER_EXTRA = 30


def class_counts_figure(
    classes: Sequence[str],
    split_counts: Mapping[str, Mapping[str, int]],
    *,
    title: str = N_("Images per class"),
    tr: Callable[[str], str] = str,
) -> go.Figure:
    """Stacked bar chart of images per class, one bar segment per split (``{"train": {cls: n}, ...}``);
    ``tr`` translates the title, axes and legend."""
    fig = go.Figure()
    labels = plotly_texts(classes)  # class names from an upload, drawn as text
    for split, counts in split_counts.items():
        values = [int(counts.get(c, 0)) for c in classes]
        fig.add_bar(
            x=labels,
            y=values,
            name=tr(SPLIT_LABELS[split]) if split in SPLIT_LABELS else split,
            marker_color=SPLIT_COLOURS.get(split),
            text=values,
            textposition="inside" if len(split_counts) > 1 else "outside",
            customdata=[plural(v, "image") for v in values],
            hovertemplate="%{x}: %{customdata}<extra>" + SPLIT_LABELS.get(split, split) + "</extra>",
        )
    fig.update_layout(
        title=tr(title),
        barmode="stack",
        xaxis_title=tr(N_("class")),
        yaxis_title=tr(N_("images")),
        xaxis={"type": "category", **plotly_ticks(classes)},
        showlegend=len(split_counts) > 1,
        margin=MARGINS,
        height=FIGURE_HEIGHT,
    )
    return fig


def image_sizes_figure(sizes: Mapping[tuple[int, int], int], *, tr: Callable[[str], str] = str) -> go.Figure:
    """Scatter of image width × height, marker area by how many images have that size; ``tr`` translates
    the title and axes."""
    items = sorted(sizes.items())
    counts = [n for _, n in items]
    largest = max(counts) if counts else 1
    fig = go.Figure(
        go.Scatter(
            x=[w for (_, w), _ in items],
            y=[h for (h, _), _ in items],
            mode="markers",
            marker={
                "size": [MARKER_MIN + MARKER_EXTRA * (n / largest) ** 0.5 for n in counts],
                "color": SPLIT_COLOURS["all"],
            },
            text=[f"{w}×{h}: {plural(n, 'image')}" for (h, w), n in items],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title=tr(N_("Image sizes")),
        xaxis_title=tr(N_("width (px)")),
        yaxis_title=tr(N_("height (px)")),
        margin=MARGINS,
        height=FIGURE_HEIGHT,
    )
    return fig


def contact_sheet(
    images: Sequence[Image.Image], *, columns: int = 8, cell: int = 96, gap: int = 4
) -> Image.Image:
    """One RGB image with ``images`` in a grid, each fitted (aspect kept) into a ``cell``×``cell`` square;
    every mode converted as training converts it (transparency on white)."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * cell + (columns - 1) * gap, rows * cell + (rows - 1) * gap), "white")
    for k, image in enumerate(images):
        fitted = ImageOps.contain(
            convert_mode(image, "RGB"),
            (cell, cell),
            Image.Resampling.NEAREST if max(image.size) < cell else Image.Resampling.BILINEAR,
        )
        r, c = divmod(k, columns)
        x = c * (cell + gap) + (cell - fitted.width) // 2
        y = r * (cell + gap) + (cell - fitted.height) // 2
        sheet.paste(fitted, (x, y))
    return sheet
