"""The Data & augmentation page's **Augmentation** section: the step editor next to a seeded preview grid
on a sample photo, a dataset image or an uploaded image, then the pipeline as code and JSON to download
and saving it by name (the Training page lists saved pipelines)."""

from __future__ import annotations

import json

import streamlit as st
from PIL import Image

import ui
from cnndash import augment, data
from cnndash.preprocess import open_preview_image
from cnndash.text import N_
from ui import i18n
from ui.data.datasets import DEFAULT_DATASET, dataset_label, dataset_options
from ui.data.pipeline_builder import pipeline_builder

_ = i18n.translator("data")

PREVIEW_WIDTH = 120  # px per augmented sample on screen
SAMPLE_PHOTO_SIDE = 256  # sample photos are previewed at this short side (they are 427×640)
MAX_UPLOAD_SIDE = 1024  # single uploaded images are shrunk to this long side for the preview
IMAGE_SOURCES = [N_("Sample photo"), N_("Dataset image"), N_("Uploaded image")]
SAMPLE_COUNTS = [4, 8, 16, 32]  # augmented samples the preview offers
DEFAULT_SAMPLES = 8


@st.cache_resource(show_spinner=False)
def _sample_photos() -> dict[str, Image.Image]:
    photos = data.sample_photos()
    out = {}
    for name, photo in photos.items():
        scale = SAMPLE_PHOTO_SIDE / min(photo.size)
        out[name] = photo.resize(
            (round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BILINEAR
        )
    return out


def _enlarge(image: Image.Image, side: int) -> Image.Image:
    """Small images (8×8 digits) are scaled up with nearest neighbour so pixels stay visible."""
    if max(image.size) >= side:
        return image
    factor = max(1, side // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def _resample() -> None:
    st.session_state["aug-seed"] = int(st.session_state.get("aug-seed", 0)) + 1


# --------------------------------------------------------------------------------------------------
# The image to preview on


def _choose_image() -> tuple[Image.Image | None, str]:
    # Once a dataset is chosen (or uploaded), the preview starts on its images.
    first = IMAGE_SOURCES[1] if ui.workspace.get("dataset", options=dataset_options()) else IMAGE_SOURCES[0]
    source = st.radio(
        _("Image source"), IMAGE_SOURCES, format_func=_, horizontal=True, **ui.keep("aug-source", first)
    )
    if source == "Sample photo":
        return _sample_photo()
    if source == "Dataset image":
        return _dataset_image()
    return _uploaded_image()


def _sample_photo() -> tuple[Image.Image, str]:
    photos = _sample_photos()
    name = st.selectbox(_("Photo"), list(photos), **ui.keep("aug-photo", options=photos))
    return photos[name], _(
        "scikit-learn sample photo {name}, previewed at {side} px short side",
        name=name,
        side=SAMPLE_PHOTO_SIDE,
    )


def _dataset_image() -> tuple[Image.Image, str]:
    a, b = st.columns([2, 1])
    options = dataset_options()
    name = a.selectbox(
        _("Dataset"),
        options,
        format_func=dataset_label,
        **ui.workspace.bind("dataset", "aug-dataset", default=DEFAULT_DATASET, options=options),
    )
    ds = ui.load_dataset(name)
    last = max(len(ds.train) - 1, 0)
    if st.session_state.get("aug-index", 0) > last:  # kept from a larger dataset
        st.session_state["aug-index"] = 0
    index = b.number_input(_("Image index (train split)"), 0, last, **ui.keep("aug-index", 0))
    image, target = ds.train[int(index)]
    return image, _(
        "{name} train image {index}: class '{cls}'",
        name=ui.text(name),
        index=int(index),
        cls=ui.text(ds.classes[target]),
    )


def _uploaded_image() -> tuple[Image.Image | None, str]:
    file = st.file_uploader(_("Upload an image"), type=ui.image_types(), key="aug-image")
    if file is None:
        st.info(_("Upload a .png/.jpg image to preview the pipeline on it."))
        return None, ""
    image = open_preview_image(file.getvalue(), file.name, MAX_UPLOAD_SIDE)
    return image, ui.md("{name} ({width}×{height})", name=file.name, width=image.width, height=image.height)


# --------------------------------------------------------------------------------------------------
# The section


def _preview(spec: list[dict]) -> None:
    """The chosen image and ``spec`` applied to it n times from a seed."""
    with ui.user_errors():
        image, caption = _choose_image()
        a, b, c = st.columns([3, 2, 2], vertical_alignment="bottom")
        n = a.select_slider(_("Augmented samples"), SAMPLE_COUNTS, **ui.keep("aug-n", DEFAULT_SAMPLES))
        seed = b.number_input(_("Seed"), min_value=0, step=1, **ui.keep("aug-seed", 0))
        c.button(_("Resample"), key="aug-resample", on_click=_resample, help=_("Draw new samples (seed + 1)"))
        if image is not None:
            samples = augment.augment_samples(spec, image, n=int(n), seed=int(seed))
            with st.container(key="aug-preview"):
                st.image(_enlarge(image, PREVIEW_WIDTH), caption=_("Original"), width=PREVIEW_WIDTH)
                st.image(
                    [_enlarge(s, PREVIEW_WIDTH) for s in samples],
                    caption=[f"#{k + 1}" for k in range(len(samples))],
                    width=PREVIEW_WIDTH,
                    output_format="JPEG",  # encodes several times faster than PNG
                )
            st.caption(
                _(
                    "Original: {caption}. Sample k is the k-th call of the pipeline after "
                    "`torch.manual_seed({seed})`, as in the exported code.",
                    caption=caption,
                    seed=int(seed),
                )
            )


def _use_it(spec: list[dict]) -> None:
    """The spec as code and JSON to download, and saved by name for the Training page."""
    with ui.user_errors():
        code = augment.pipeline_code(spec)
        code_col, save_col = st.columns([3, 2], gap="large")
        with code_col:
            st.code(code, language="python")
            d1, d2 = st.columns(2)
            d1.download_button(
                _("Download code"), code, "augmentation.py", "text/x-python", key="aug-download-code"
            )
            d2.download_button(
                _("Download spec (JSON)"),
                json.dumps(spec, indent=2),
                "augmentation.json",
                "application/json",
                key="aug-download-json",
            )
        with save_col:
            st.text_input(
                _("Pipeline name"), placeholder=_("e.g. flips-and-jitter"), **ui.keep("aug-save-name", "")
            )
            if st.button(_("Save pipeline"), key="aug-save"):
                name = (st.session_state.get("aug-save-name") or "").strip()
                path = augment.save_pipeline(name, spec)
                ui.workspace.put("pipeline", name)  # Training starts on the pipeline just saved
                st.success(
                    _(
                        "Saved '{name}' ({path}). The Training page lists it under augmentation.",
                        name=ui.text(name),
                        path=ui.text(path),
                    )
                )
            st.caption(
                _(
                    "Training applies this spec per image, then converts to float and normalises with the "
                    "dataset's mean/std unless the spec has its own Normalize."
                )
            )


def augmentation_tab() -> None:
    """The Augmentation section: editor and preview side by side, then the code and saving."""
    build, preview = st.columns([1, 1], gap="large")
    with build:
        st.subheader(_("Pipeline"))
        spec = pipeline_builder()
    with preview:
        st.subheader(_("Preview"))
        _preview(spec)
    st.subheader(_("Use it"))

    _use_it(spec)
