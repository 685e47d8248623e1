"""Data & augmentation page: pick or upload a dataset, inspect it, and build an augmentation pipeline
with a seeded preview grid, code export and saving by name (the Training page lists saved pipelines)."""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

import ui
from cnndash import augment, data, paths
from cnndash.models import default_image_size
from cnndash.plots import dataset as plots_data
from cnndash.preprocess import convert_mode, open_image
from cnndash.training.loops import TrainConfig

ui.route_guard()

log = logging.getLogger("cnndash.pages.data")

GALLERY_CELL = 72  # px per gallery thumbnail
PREVIEW_WIDTH = 120  # px per augmented sample on screen
SAMPLE_PHOTO_SIDE = 256  # sample photos are previewed at this short side (they are 427×640)
MAX_UPLOAD_SIDE = 1024  # single uploaded images are shrunk to this long side for the preview
TABLE_MAX_CLASSES = 30  # above this, class counts go to a scrollable dataframe
GALLERY_MAX_CLASSES = 12  # above this, the gallery shows the classes picked in a multiselect

# Every widget of the page keeps its value with ui.keep: the two sections are drawn one at a time, and a
# person goes to the Training page and comes back.
DEFAULT_DATASET = "shapes"
DEFAULT_GALLERY_N = 8  # images per class in the gallery
IMAGE_SOURCES = ["Sample photo", "Dataset image", "Uploaded image"]
SAMPLE_COUNTS = [4, 8, 16, 32]  # augmented samples the preview offers
DEFAULT_SAMPLES = 8
SIZES_LISTED = 8  # image sizes listed in an uploaded dataset's report


# --------------------------------------------------------------------------------------------------
# Cached engine calls (the datasets themselves come from ui.load_dataset)


@st.cache_data(show_spinner=False, max_entries=6)
def _report(name: str, data_dir: str, stamp: int) -> data.ValidationReport:
    return data.dataset_report(name, data_dir=Path(data_dir))


def load_report(name: str) -> data.ValidationReport:
    return _report(name, str(paths.data_dir()), ui.dataset_stamp(name))


@st.cache_data(show_spinner="Computing mean and std…", max_entries=6)
def _mean_std(name: str, data_dir: str, stamp: int) -> tuple[list[float], list[float]]:
    """The statistics training uses: of the training split at TrainConfig's default split, measured at the
    size training picks automatically for the default model."""
    imageset = ui.load_dataset(name)
    size = default_image_size(TrainConfig.model, imageset.image_size)
    return data.compute_mean_std(imageset.train, channels=imageset.channels, size=size)


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


def dataset_options() -> list[str]:
    return list(data.BUILTIN_DATASETS) + data.list_datasets()


def dataset_label(name: str) -> str:
    if name in data.BUILTIN_DATASETS:
        return f"{name} — built-in"
    return f"{name} — uploaded"


def enlarge(image: Image.Image, side: int) -> Image.Image:
    """Small images (8×8 digits) are scaled up with nearest neighbour so pixels stay visible."""
    if max(image.size) >= side:
        return image
    factor = max(1, side // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


# --------------------------------------------------------------------------------------------------
# Datasets tab


# Errors an upload can cause. The engine raises ValueError subclasses (DatasetError) for everything it
# checks; OSError (a full disk, a name the file system refuses) and a zip the zipfile module cannot read
# are caught too, so an upload never ends in a traceback.
UPLOAD_ERRORS = (ValueError, OSError, zipfile.BadZipFile, EOFError)
EXISTS_CHOICES = {
    "replace": "Replace it",
    "keep": "Keep both",
    "cancel": "Cancel",
}


def _import_zip(uploaded: Any, name: str, on_exists: str) -> data.ValidationReport:
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "upload.zip"
        zip_path.write_bytes(uploaded.getvalue())
        return data.import_dataset_zip(zip_path, name, on_exists=on_exists)


def _replace_dataset(uploaded: Any, name: str) -> data.ValidationReport:
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "upload.zip"
        zip_path.write_bytes(uploaded.getvalue())
        return data.replace_dataset_zip(zip_path, name)


def import_upload(choice: str | None = None) -> None:
    """Import a freshly uploaded zip once (the uploader keeps the file across reruns). A name that is
    already taken waits for ``choice`` (one of :data:`EXISTS_CHOICES`), asked for by :func:`ask_exists`."""
    uploaded = st.session_state.get("data-upload")
    if uploaded is None or st.session_state.get("data-upload-done") == uploaded.file_id:
        return
    wanted = data.dataset_name_from(uploaded.name)
    if choice is None and wanted in data.list_datasets():
        st.session_state["data-upload-exists"] = uploaded.file_id
        return
    st.session_state.pop("data-upload-exists", None)
    st.session_state["data-upload-done"] = uploaded.file_id
    if choice == "cancel":
        st.session_state["data-upload-result"] = (
            "ok",
            f"Upload cancelled: '{ui.text(wanted)}' is unchanged.",
        )
        return
    try:
        if choice == "replace":
            report = _replace_dataset(uploaded, wanted)
        else:
            report = _import_zip(uploaded, wanted, "suffix")
    except UPLOAD_ERRORS as exc:
        log.info("upload %r refused: %s", uploaded.name, exc)
        st.session_state["data-upload-result"] = ("error", ui.text(exc))
        return
    verb = "Replaced" if choice == "replace" else "Stored as"
    note = " (next to the existing one)" if report.name != wanted else ""
    skipped = f"; {len(report.skipped)} files skipped (listed below)" if report.skipped else ""
    st.session_state["data-upload-result"] = (
        "ok",
        f"{verb} '{ui.text(report.name)}'{note}: {report.num_images} images{skipped}.",
    )
    st.session_state["data-upload-name"] = report.name
    st.session_state["data-dataset"] = report.name


def ask_exists() -> None:
    """Ask what to do with an upload whose dataset name is taken: replace, keep both, or cancel."""
    uploaded = st.session_state.get("data-upload")
    if uploaded is None or st.session_state.get("data-upload-exists") != uploaded.file_id:
        return
    wanted = data.dataset_name_from(uploaded.name)
    with st.container(border=True):
        st.warning(f"A dataset named '{ui.text(wanted)}' already exists.", icon=":material/warning:")
        cols = st.columns(len(EXISTS_CHOICES))
        for col, (choice, label) in zip(cols, EXISTS_CHOICES.items(), strict=True):
            col.button(
                label,
                key=f"data-upload-{choice}",
                on_click=import_upload,
                args=(choice,),
                type="primary" if choice == "keep" else "secondary",
                help=f"Keep both: stores the upload as '{ui.text(wanted)}-2' (or the next free number)."
                if choice == "keep"
                else None,
            )


def delete_selected() -> None:
    name = st.session_state.get("data-dataset")
    try:
        data.delete_dataset(name)
    except UPLOAD_ERRORS as exc:
        st.session_state["data-message"] = ("error", ui.text(exc))
        return
    st.session_state["data-message"] = ("ok", f"Deleted dataset '{ui.text(name)}'.")
    st.session_state["data-dataset"] = DEFAULT_DATASET
    st.session_state["data-delete-confirm"] = False
    if st.session_state.get("data-upload-name") == name:  # the upload message no longer holds
        st.session_state.pop("data-upload-result", None)


def show_message(key: str) -> None:
    message = st.session_state.pop(key, None)
    if message is None:
        return
    kind, text = message
    if kind == "ok":
        st.success(text, icon=":material/check_circle:")
    else:
        st.error(text, icon=":material/error:")


def class_table(ds: data.ImageSet) -> None:
    train = ds.train.class_counts(ds.num_classes)
    val = ds.val.class_counts(ds.num_classes)
    rows = [
        {"class": c, "train": t, "val": v, "total": t + v}
        for c, t, v in zip(ds.classes, train, val, strict=True)
    ]
    if len(rows) > TABLE_MAX_CLASSES:
        st.dataframe(rows, hide_index=True, width="stretch", height=320)
    else:
        st.table(rows)


def render_report(report: data.ValidationReport) -> None:
    for warning in report.warnings:
        st.warning(ui.text(warning), icon=":material/warning:")
    by_count = sorted(report.sizes.items(), key=lambda kv: -kv[1])
    sizes = ", ".join(f"{w}×{h} ({n})" for (h, w), n in by_count[:SIZES_LISTED])
    more = f" and {len(report.sizes) - SIZES_LISTED} more" if len(report.sizes) > SIZES_LISTED else ""
    modes = ", ".join(f"{m} ({n})" for m, n in sorted(report.modes.items()))
    st.markdown(f"**Image sizes** (width×height): {sizes}{more}  \n**Modes**: {modes}")
    if len(report.sizes) > 1:
        st.plotly_chart(plots_data.image_sizes_figure(report.sizes), key="data-sizes-chart")
    if report.skipped:
        with st.expander(f"Files skipped during upload ({len(report.skipped)})"):
            st.dataframe(
                [{"file": s.path, "why": s.reason} for s in report.skipped], hide_index=True, width="stretch"
            )


def render_gallery(ds: data.ImageSet) -> None:
    per_class = st.slider("Images per class", 1, 16, **ui.keep("data-gallery-n", DEFAULT_GALLERY_N))
    shown = list(range(ds.num_classes))
    if ds.num_classes > GALLERY_MAX_CLASSES:
        chosen = [c for c in st.session_state.get("data-gallery-classes", []) if c in ds.classes]
        st.session_state["data-gallery-classes"] = chosen or ds.classes[:GALLERY_MAX_CLASSES]
        picked = st.multiselect("Classes to show", ds.classes, **ui.keep("data-gallery-classes"))
        shown = [ds.classes.index(c) for c in picked]
    by_class: dict[int, list[int]] = {i: [] for i in shown}
    for index, target in enumerate(ds.train.targets):
        if target in by_class and len(by_class[target]) < per_class:
            by_class[target].append(index)
    counts = ds.train.class_counts(ds.num_classes)
    cols = st.columns(2)
    for slot, i in enumerate(shown):
        if not by_class[i]:
            continue
        sheet = plots_data.contact_sheet(
            [ds.train[k][0] for k in by_class[i]], columns=per_class, cell=GALLERY_CELL
        )
        with cols[slot % 2]:
            st.image(sheet, caption=f"{ui.text(ds.classes[i])} ({counts[i]} train images)")


def datasets_tab() -> None:
    st.file_uploader(
        "Upload an image-folder zip",
        type=["zip"],
        key="data-upload",
        help="One folder per class (cats/*.jpg, dogs/*.jpg), or train/<class>/… and val/<class>/…; "
        "optionally inside one top-level folder. __MACOSX and hidden files are ignored.",
    )
    import_upload()
    ask_exists()
    uploaded = st.session_state.get("data-upload")
    result = st.session_state.get("data-upload-result")
    stored = st.session_state.get("data-upload-name")
    if result is not None and result[0] == "ok" and stored and stored not in data.list_datasets():
        st.session_state.pop("data-upload-result")  # the dataset was deleted since (e.g. by the CLI)
        result = None
    if uploaded is not None and result is not None:
        (st.success if result[0] == "ok" else st.error)(result[1])
    show_message("data-message")

    options = dataset_options()
    left, right = st.columns([2, 1])
    name = left.selectbox(
        "Dataset",
        options,
        format_func=dataset_label,
        **ui.keep("data-dataset", DEFAULT_DATASET, options=options),
    )
    val_fraction = right.slider(
        "Validation fraction", 0.05, 0.5, step=0.05, **ui.keep("data-val-fraction", TrainConfig.val_fraction)
    )
    if name in data.BUILTIN_DATASETS:
        st.caption(data.BUILTIN_DATASETS[name])

    with ui.user_errors():
        ds = ui.load_dataset(name, val_fraction)
        a, b, c, d = st.columns(4)
        a.metric("Classes", ds.num_classes)
        b.metric("Train images", len(ds.train))
        c.metric("Val images", len(ds.val))
        size = f"{ds.image_size[1]}×{ds.image_size[0]}" if ds.image_size else "mixed"
        d.metric("Size · channels", f"{size} · {ds.channels}")
        if name not in data.BUILTIN_DATASETS:
            render_report(load_report(name))
        chart, table = st.columns([3, 2])
        split = {
            "train": dict(zip(ds.classes, ds.train.class_counts(ds.num_classes), strict=True)),
            "val": dict(zip(ds.classes, ds.val.class_counts(ds.num_classes), strict=True)),
        }
        chart.plotly_chart(plots_data.class_counts_figure(ds.classes, split), key="data-counts-chart")
        with table:
            class_table(ds)
        st.subheader("Gallery")
        render_gallery(ds)

    if name not in data.BUILTIN_DATASETS:
        with st.expander("Delete this dataset"):
            st.checkbox(
                f"Yes, delete '{ui.text(name)}' from {ui.text(data.datasets_dir())}",
                key="data-delete-confirm",
            )
            st.button(
                "Delete dataset",
                key="data-delete",
                type="primary",
                on_click=delete_selected,
                disabled=not st.session_state.get("data-delete-confirm"),
            )


# --------------------------------------------------------------------------------------------------
# Augmentation tab: the pipeline lives in st.session_state["aug-steps"] as [id, step] pairs; the id
# keeps a step's widgets attached to it when steps are reordered.


def steps_state() -> list[list[Any]]:
    if "aug-steps" not in st.session_state:
        st.session_state["aug-next-id"] = 1
        st.session_state["aug-steps"] = [[0, augment.default_step("RandomHorizontalFlip")]]
    return st.session_state["aug-steps"]


def set_spec(spec: list[dict]) -> None:
    first = st.session_state.get("aug-next-id", 1)
    st.session_state["aug-steps"] = [[first + k, dict(step)] for k, step in enumerate(spec)]
    st.session_state["aug-next-id"] = first + len(spec)


def current_spec() -> list[dict]:
    return [dict(step) for _, step in steps_state()]


def stats_dataset() -> str:
    """The dataset whose statistics Normalize is offered: the previewed one, else the Datasets choice."""
    if st.session_state.get("aug-source") == "Dataset image":
        return st.session_state.get("aug-dataset") or DEFAULT_DATASET
    return st.session_state.get("data-dataset") or DEFAULT_DATASET


def dataset_stats() -> tuple[str, list[float], list[float]] | None:
    name = stats_dataset()
    try:
        mean, std = _mean_std(name, str(paths.data_dir()), ui.dataset_stamp(name))
    except ValueError:
        return None
    return name, mean, std


def add_step() -> None:
    op = st.session_state.get("aug-add-op")
    steps = steps_state()
    new_steps = []
    if op == "Normalize":
        if not any(step["op"] == "ToDtype" for _, step in steps):
            new_steps.append(augment.default_step("ToDtype"))
        stats = dataset_stats()
        new_steps.append(augment.normalize_step(stats[1], stats[2]) if stats else augment.default_step(op))
    else:
        new_steps.append(augment.default_step(op))
    for step in new_steps:
        steps.append([st.session_state["aug-next-id"], step])
        st.session_state["aug-next-id"] += 1


def move_step(uid: int, delta: int) -> None:
    steps = steps_state()
    pos = next(i for i, (sid, _) in enumerate(steps) if sid == uid)
    target = pos + delta
    if 0 <= target < len(steps):
        steps[pos], steps[target] = steps[target], steps[pos]


def remove_step(uid: int) -> None:
    st.session_state["aug-steps"] = [pair for pair in steps_state() if pair[0] != uid]


def use_dataset_stats(uid: int) -> None:
    stats = dataset_stats()
    if stats is None:
        return
    for pair in steps_state():
        if pair[0] == uid:
            pair[1] = augment.normalize_step(stats[1], stats[2])
            for arg in ("mean", "std"):
                st.session_state.pop(f"aug-{uid}-{arg}", None)


def apply_json() -> None:
    text = st.session_state.get("aug-json", "")
    try:
        spec = json.loads(text)
        augment.validate_spec(spec)
    except ValueError as exc:
        st.session_state["aug-message"] = ("error", f"The JSON spec was not applied: {exc}")
        return
    set_spec(spec)


def load_saved() -> None:
    name = st.session_state.get("aug-load-name")
    try:
        set_spec(augment.load_pipeline(name))
    except ValueError as exc:
        st.session_state["aug-message"] = ("error", str(exc))
        return
    st.session_state["aug-save-name"] = name
    st.session_state["aug-message"] = ("ok", f"Loaded pipeline '{name}'.")


def resample() -> None:
    st.session_state["aug-seed"] = int(st.session_state.get("aug-seed", 0)) + 1


def number_widget(label: str, value: Any, key: str, container) -> Any:
    if isinstance(value, int):
        return container.number_input(label, value=value, step=1, key=key)
    return container.number_input(label, value=float(value), step=0.05, format="%.3f", key=key)


def list_widget(label: str, value: list, key: str, container) -> list:
    """A free-form list (mean, std, 4-side padding) as comma-separated numbers."""
    text = container.text_input(label, value=", ".join(f"{v:g}" for v in value), key=key)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        numbers = [int(p) if p.lstrip("-").isdigit() else float(p) for p in parts]
    except ValueError:
        return [text]  # the spec check names the argument
    return numbers


def is_number_pair(arg: str, value: Any) -> bool:
    """A (min, max) or (h, w) pair drawn as two number inputs (mean/std/padding are free-form lists)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and arg not in ("mean", "std", "padding")
    )


def arg_widget(arg: str, value: Any, key: str, box) -> Any:
    """The widget for one argument of a step, chosen by the type of its current value."""
    if isinstance(value, bool):
        return box.checkbox(arg, value=value, key=key)
    if isinstance(value, (int, float)):
        return number_widget(arg, value, key, box)
    if isinstance(value, str) and arg in augment.CHOICES:
        options = list(augment.CHOICES[arg])
        return box.selectbox(arg, options, index=options.index(value) if value in options else 0, key=key)
    if is_number_pair(arg, value):
        names = ("h", "w") if arg == "size" else ("min", "max")
        inner = box.columns(2)
        return [number_widget(f"{arg} {names[j]}", value[j], f"{key}-{names[j]}", inner[j]) for j in range(2)]
    if isinstance(value, list):
        return list_widget(arg, value, key, box)
    text = box.text_input(f"{arg} (JSON)", value=json.dumps(value), key=key)
    try:
        return json.loads(text)
    except ValueError:
        return text  # the spec check names the argument


def step_editor(pos: int, uid: int, step: dict, count: int) -> dict:
    op = step["op"]
    with st.container(border=True, key=f"aug-step-{uid}"):
        st.markdown(f"**{pos + 1}. {op}** — {augment.OPS[op].description}")
        bar = st.container(horizontal=True, gap="small")
        bar.button(
            "Up",
            icon=":material/arrow_upward:",
            key=f"aug-{uid}-up",
            on_click=move_step,
            args=(uid, -1),
            disabled=pos == 0,
            type="tertiary",
        )
        bar.button(
            "Down",
            icon=":material/arrow_downward:",
            key=f"aug-{uid}-down",
            on_click=move_step,
            args=(uid, 1),
            disabled=pos == count - 1,
            type="tertiary",
        )
        bar.button(
            "Remove",
            icon=":material/close:",
            key=f"aug-{uid}-remove",
            on_click=remove_step,
            args=(uid,),
            type="tertiary",
        )
        args = [(k, v) for k, v in step.items() if k != "op"]
        new = {"op": op}
        if not args:
            st.caption("No parameters.")
            return new
        # Single values share a row of up to three columns; a (min, max) or (h, w) pair gets a row of its own,
        # so that its two inputs are wide enough for their labels and steppers (RandomResizedCrop's scale
        # and ratio were unreadable at a sixth of the page).
        singles = [(arg, value) for arg, value in args if not is_number_pair(arg, value)]
        values = {}
        if singles:
            cols = st.columns(min(len(singles), 3))
            for k, (arg, value) in enumerate(singles):
                values[arg] = arg_widget(arg, value, f"aug-{uid}-{arg}", cols[k % len(cols)])
        for arg, value in args:
            if is_number_pair(arg, value):
                values[arg] = arg_widget(arg, value, f"aug-{uid}-{arg}", st.container())
        new.update((arg, values[arg]) for arg, _ in args)
        if op == "Normalize":
            name = stats_dataset()
            st.button(
                f"Use the mean/std of '{name}'",
                key=f"aug-{uid}-stats",
                on_click=use_dataset_stats,
                args=(uid,),
            )
    return new


def pipeline_builder() -> list[dict]:
    steps = steps_state()
    show_message("aug-message")
    saved = augment.list_pipelines()
    if saved:
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        a.selectbox("Saved pipelines", saved, **ui.keep("aug-load-name", options=saved))
        b.button("Load", key="aug-load", on_click=load_saved)
    if not steps:
        st.info("No steps yet: the preview shows the image unchanged. Add a step below.")
    for pos, pair in enumerate(list(steps)):
        pair[1] = step_editor(pos, pair[0], pair[1], len(steps))
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    a.selectbox(
        "Add a step",
        list(augment.OPS),
        format_func=lambda op: f"{op} ({augment.OPS[op].group})",
        **ui.keep("aug-add-op"),
    )
    b.button("Add step", key="aug-add", on_click=add_step, type="primary")
    spec = current_spec()
    text = json.dumps(spec, indent=1)
    if st.session_state.get("aug-json-source") != text or "aug-json" not in st.session_state:
        st.session_state["aug-json-source"] = text
        st.session_state["aug-json"] = text
    with st.expander("Edit the spec as JSON"):
        st.text_area("Pipeline spec", key="aug-json", height=200)
        st.button("Apply JSON", key="aug-json-apply", on_click=apply_json)
    return spec


def choose_image() -> tuple[Image.Image | None, str]:
    source = st.radio(
        "Image source", IMAGE_SOURCES, horizontal=True, **ui.keep("aug-source", IMAGE_SOURCES[0])
    )
    if source == "Sample photo":
        return sample_photo()
    if source == "Dataset image":
        return dataset_image()
    return uploaded_image()


def sample_photo() -> tuple[Image.Image, str]:
    photos = _sample_photos()
    name = st.selectbox("Photo", list(photos), **ui.keep("aug-photo", options=photos))
    return photos[name], f"scikit-learn sample photo {name}, previewed at {SAMPLE_PHOTO_SIDE} px short side"


def dataset_image() -> tuple[Image.Image, str]:
    a, b = st.columns([2, 1])
    options = dataset_options()
    name = a.selectbox(
        "Dataset",
        options,
        format_func=dataset_label,
        **ui.keep("aug-dataset", DEFAULT_DATASET, options=options),
    )
    ds = ui.load_dataset(name)
    last = max(len(ds.train) - 1, 0)
    if st.session_state.get("aug-index", 0) > last:  # kept from a larger dataset
        st.session_state["aug-index"] = 0
    index = b.number_input("Image index (train split)", 0, last, **ui.keep("aug-index", 0))
    image, target = ds.train[int(index)]
    return image, f"{ui.text(name)} train image {index}: class '{ui.text(ds.classes[target])}'"


def uploaded_image() -> tuple[Image.Image | None, str]:
    file = st.file_uploader("Upload an image", type=ui.image_types(), key="aug-image")
    if file is None:
        st.info("Upload a .png/.jpg image to preview the pipeline on it.")
        return None, ""
    image = open_image(file.getvalue(), file.name)
    if image.mode not in ("L", "RGB"):
        image = convert_mode(image, "RGB")
    if max(image.size) > MAX_UPLOAD_SIDE:
        image.thumbnail((MAX_UPLOAD_SIDE, MAX_UPLOAD_SIDE))
    return image, f"{ui.text(file.name)} ({image.width}×{image.height})"


def augmentation_tab() -> None:
    build, preview = st.columns([1, 1], gap="large")
    with build:
        st.subheader("Pipeline")
        spec = pipeline_builder()
    with preview:
        st.subheader("Preview")
        with ui.user_errors():
            image, caption = choose_image()
            a, b, c = st.columns([3, 2, 2], vertical_alignment="bottom")
            n = a.select_slider("Augmented samples", SAMPLE_COUNTS, **ui.keep("aug-n", DEFAULT_SAMPLES))
            seed = b.number_input("Seed", min_value=0, step=1, **ui.keep("aug-seed", 0))
            c.button("Resample", key="aug-resample", on_click=resample, help="Draw new samples (seed + 1)")
            if image is not None:
                samples = augment.augment_samples(spec, image, n=int(n), seed=int(seed))
                with st.container(key="aug-preview"):
                    st.image(enlarge(image, PREVIEW_WIDTH), caption="Original", width=PREVIEW_WIDTH)
                    st.image(
                        [enlarge(s, PREVIEW_WIDTH) for s in samples],
                        caption=[f"#{k + 1}" for k in range(len(samples))],
                        width=PREVIEW_WIDTH,
                        output_format="JPEG",  # encodes several times faster than PNG
                    )
                st.caption(
                    f"Original: {caption}. Sample k is the k-th call of the pipeline after "
                    f"torch.manual_seed({int(seed)}), as in the exported code."
                )
    st.subheader("Use it")
    with ui.user_errors():
        code = augment.pipeline_code(spec)
        code_col, save_col = st.columns([3, 2], gap="large")
        with code_col:
            st.code(code, language="python")
            d1, d2 = st.columns(2)
            d1.download_button(
                "Download code", code, "augmentation.py", "text/x-python", key="aug-download-code"
            )
            d2.download_button(
                "Download spec (JSON)",
                json.dumps(spec, indent=2),
                "augmentation.json",
                "application/json",
                key="aug-download-json",
            )
        with save_col:
            st.text_input(
                "Pipeline name", placeholder="e.g. flips-and-jitter", **ui.keep("aug-save-name", "")
            )
            if st.button("Save pipeline", key="aug-save"):
                name = (st.session_state.get("aug-save-name") or "").strip()
                path = augment.save_pipeline(name, spec)
                st.success(f"Saved '{name}' ({path}). The Training page lists it under augmentation.")
            st.caption(
                "Training applies this spec per image, then converts to float and normalises with the "
                "dataset's mean/std unless the spec has its own Normalize."
            )


# A radio rather than st.tabs: only the chosen section runs, so an upload does not also redraw the
# preview grid and vice versa. ``/data?section=augmentation`` opens the second one directly.
SECTIONS = ["Datasets", "Augmentation"]


def main() -> None:
    st.title("Data & augmentation")
    wanted = str(st.query_params.get("section", "")).capitalize()
    section = st.radio(
        "Section",
        SECTIONS,
        horizontal=True,
        label_visibility="collapsed",
        **ui.keep("data-section", wanted if wanted in SECTIONS else SECTIONS[0]),
    )
    if section == "Datasets":
        datasets_tab()
    else:
        augmentation_tab()


main()
