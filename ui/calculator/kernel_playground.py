"""The conv calculator's Kernel playground tab: a classic kernel (blur, sharpen, Sobel, …) or a custom 3×3 /
5×5 one applied with stride, padding and dilation to a sample photo or an upload, input and output side by
side.

Images and kernels come from :mod:`cnndash.kernels`; photos, uploads (shrunk to a
:data:`PLAYGROUND_SIDE` px long side so the convolution stays instant), convolved outputs and their PNG
encoding are cached. The tab is an ``st.fragment``: a change reruns this tab only.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

import ui
from cnndash import kernels
from cnndash.text import N_
from ui.calculator.kept import kept, number

_ = ui.i18n.translator("calculator")

PLAYGROUND_SIDE = 320  # px: photos and uploads are shrunk to this long side (convolution stays instant)


@st.cache_data(show_spinner=False)
def _photo(name: str, grayscale: bool) -> np.ndarray:
    return kernels.sample_photo(name, max_side=PLAYGROUND_SIDE, grayscale=grayscale)


@st.cache_data(show_spinner=False, max_entries=32)
def _upload(data: bytes, name: str, grayscale: bool) -> np.ndarray:
    return kernels.load_image(data, PLAYGROUND_SIDE, name, grayscale=grayscale)


@st.cache_data(show_spinner=False, max_entries=32)
def _convolve(image, kernel: tuple[tuple[float, ...], ...], stride: int, padding: int, dilation: int):
    """The displayed output as PNG bytes (encoded once, not on every rerun) and its size."""
    output = kernels.to_display(kernels.apply_kernel(image, kernel, stride, padding, dilation), kernel)
    return _png(output), output.shape[:2]


@st.cache_data(show_spinner=False, max_entries=32)
def _png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _image(cols) -> np.ndarray | None:
    """The chosen photo or upload as the kernels take it; None while nothing is uploaded."""
    sources = ("Sample photo", "Upload")  # kept in the workspace as English keys; shown translated
    source = cols[0].radio(
        _("Image"),
        sources,
        format_func=lambda s: _("Sample photo") if s == "Sample photo" else _("Upload"),
        horizontal=True,
        **kept("kernel-source", sources[0], options=sources),
    )
    gray = cols[2].toggle(_("Grayscale"), **kept("kernel-grayscale", False))
    image = None
    with ui.user_errors():
        if source == "Sample photo":
            photos = kernels.SAMPLE_PHOTOS
            name = cols[1].selectbox(_("Photo"), photos, **kept("kernel-photo", photos[0], options=photos))
            image = _photo(name, gray)
        else:
            upload = cols[1].file_uploader(_("PNG or JPEG"), type=ui.image_types(), key="kernel-upload")
            if upload is not None:
                image = _upload(upload.getvalue(), upload.name, gray)
    return image


def _kernel(choice: str) -> tuple[tuple[float, ...], ...]:
    """The chosen kernel, shown as a table (an editable one for ``custom``)."""
    if choice == "custom":
        size = st.radio(_("Custom kernel size"), (3, 5), horizontal=True, key="kernel-custom-size")
        start = [[1.0 if (r, c) == (size // 2, size // 2) else 0.0 for c in range(size)] for r in range(size)]
        table = st.data_editor(pd.DataFrame(start), key=f"kernel-custom-{size}", width="content")
        return tuple(tuple(float(v) for v in row) for row in table.to_numpy())
    kernel = tuple(tuple(float(v) for v in row) for row in kernels.KERNELS[choice])
    st.dataframe(pd.DataFrame(kernel).round(3), width="content", key="kernel-weights")
    return kernel


@st.fragment
def kernel_playground() -> None:
    """The Kernel playground tab: image, kernel and its settings, input and output (reruns on its own)."""
    image = _image(st.columns([2, 2, 1]))
    cols = st.columns(4)
    names = [*kernels.KERNELS, N_("custom")]
    choice = cols[0].selectbox(
        _("Kernel"), names, format_func=_, **kept("kernel-name", names[0], options=names)
    )  # each name marked in cnndash.kernels (and "custom" here: N_)
    stride = number(cols[1], _("Stride"), 1, 16, 1, "kernel-stride")
    padding = number(cols[2], _("Padding"), 0, 32, 1, "kernel-padding")
    dilation = number(cols[3], _("Dilation"), 1, 16, 1, "kernel-dilation")
    kernel = _kernel(choice)
    if image is None:
        st.info(_("Upload an image to convolve it."), icon=":material/upload:")
        return
    with ui.user_errors():
        shown, (out_h, out_w) = _convolve(image, kernel, stride, padding, dilation)
        left, right = st.columns(2)
        caption_in = _("input {h}×{w}", h=image.shape[0], w=image.shape[1])
        left.image(_png(image), caption=caption_in, width="stretch")
        right.image(shown, caption=_("output {h}×{w}", h=out_h, w=out_w), width="stretch")
        st.caption(
            _(
                "Each colour channel is convolved with the same kernel (F.conv2d, groups = channels). "
                "Edge kernels show |output| stretched to white; the others are clipped to 0–255."
            )
        )
