"""Data & augmentation page: pick or upload a dataset, inspect it, and build an augmentation pipeline
with a seeded preview grid, code export and saving by name (the Training page lists saved pipelines)."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

import ui
from cnndash import augment, data, paths, plots_data

GALLERY_CELL = 72  # px per gallery thumbnail
PREVIEW_WIDTH = 120  # px per augmented sample on screen
SAMPLE_PHOTO_SIDE = 256  # sample photos are previewed at this short side (they are 427×640)
MAX_UPLOAD_SIDE = 1024  # single uploaded images are shrunk to this long side for the preview
TABLE_MAX_CLASSES = 30  # above this, class counts go to a scrollable dataframe
GALLERY_MAX_CLASSES = 12  # above this, the gallery shows the classes picked in a multiselect

st.title("Data & augmentation")

# Streamlit forgets the state of widgets that were not drawn in a run; the two sections below are drawn
# one at a time, so keep their choices alive across section switches (and give them their defaults).
WIDGET_DEFAULTS: dict[str, Any] = {
    "data-dataset": "shapes",
    "data-val-fraction": 0.2,
    "data-gallery-n": 8,
    "aug-source": "Sample photo",
    "aug-photo": None,
    "aug-dataset": "shapes",
    "aug-index": 0,
    "aug-n": 8,
    "aug-seed": 0,
    "aug-save-name": "",
}
for _key, _default in WIDGET_DEFAULTS.items():
    if _key in st.session_state:
        st.session_state[_key] = st.session_state[_key]
    elif _default is not None:
        st.session_state[_key] = _default


# --------------------------------------------------------------------------------------------------
# Cached engine calls


def _stamp(name: str) -> int:
    """Changes when an uploaded dataset folder is replaced, so cached loads are not stale."""
    folder = data.datasets_dir() / name
    return folder.stat().st_mtime_ns if name not in data.BUILTIN_DATASETS and folder.is_dir() else 0


@st.cache_resource(show_spinner="Loading dataset…", max_entries=6)
def _load(name: str, val_fraction: float, data_dir: str, stamp: int) -> data.ImageSet:
    return data.load_dataset(name, data_dir=Path(data_dir), val_fraction=val_fraction, seed=0)


def load(name: str, val_fraction: float = 0.2) -> data.ImageSet:
    return _load(name, val_fraction, str(paths.data_dir()), _stamp(name))


@st.cache_data(show_spinner=False, max_entries=6)
def _report(name: str, data_dir: str, stamp: int) -> data.ValidationReport:
    return data.dataset_report(name, data_dir=Path(data_dir))


@st.cache_data(show_spinner="Computing mean and std…", max_entries=6)
def _mean_std(name: str, data_dir: str, stamp: int) -> tuple[list[float], list[float]]:
    return data.compute_mean_std(_load(name, 0.2, data_dir, stamp).train)


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


def import_upload() -> None:
    """Import a freshly uploaded zip once (the uploader keeps the file across reruns)."""
    uploaded = st.session_state.get("data-upload")
    if uploaded is None or st.session_state.get("data-upload-done") == uploaded.file_id:
        return
    st.session_state["data-upload-done"] = uploaded.file_id
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = Path(tmp) / "upload.zip"
        zip_path.write_bytes(uploaded.getvalue())
        try:
            report = data.import_dataset_zip(
                zip_path, data.dataset_name_from(uploaded.name), on_exists="suffix"
            )
        except ValueError as exc:
            st.session_state["data-upload-result"] = ("error", str(exc))
            return
    wanted = data.dataset_name_from(uploaded.name)
    note = f" (a dataset named '{wanted}' already existed)" if report.name != wanted else ""
    st.session_state["data-upload-result"] = (
        "ok",
        f"Stored as '{report.name}'{note}: {report.num_images} images.",
    )
    st.session_state["data-dataset"] = report.name


def delete_selected() -> None:
    name = st.session_state.get("data-dataset")
    try:
        data.delete_dataset(name)
    except ValueError as exc:
        st.session_state["data-message"] = ("error", str(exc))
        return
    st.session_state["data-message"] = ("ok", f"Deleted dataset '{name}'.")
    st.session_state["data-dataset"] = "shapes"
    st.session_state["data-delete-confirm"] = False


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
        st.warning(warning, icon=":material/warning:")
    sizes = ", ".join(
        f"{w}×{h} ({n})" for (h, w), n in sorted(report.sizes.items(), key=lambda kv: -kv[1])[:8]
    )
    more = f" and {len(report.sizes) - 8} more" if len(report.sizes) > 8 else ""
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
    per_class = st.slider("Images per class", 1, 16, key="data-gallery-n")
    shown = list(range(ds.num_classes))
    if ds.num_classes > GALLERY_MAX_CLASSES:
        chosen = [c for c in st.session_state.get("data-gallery-classes", []) if c in ds.classes]
        st.session_state["data-gallery-classes"] = chosen or ds.classes[:GALLERY_MAX_CLASSES]
        picked = st.multiselect("Classes to show", ds.classes, key="data-gallery-classes")
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
            st.image(sheet, caption=f"{ds.classes[i]} ({counts[i]} train images)")


def datasets_tab() -> None:
    st.file_uploader(
        "Upload an image-folder zip",
        type=["zip"],
        key="data-upload",
        help="One folder per class (cats/*.jpg, dogs/*.jpg), or train/<class>/… and val/<class>/…; "
        "optionally inside one top-level folder. __MACOSX and hidden files are ignored.",
    )
    import_upload()
    uploaded = st.session_state.get("data-upload")
    result = st.session_state.get("data-upload-result")
    if uploaded is not None and result is not None:
        (st.success if result[0] == "ok" else st.error)(result[1])
    show_message("data-message")

    options = dataset_options()
    if st.session_state.get("data-dataset") not in options:
        st.session_state["data-dataset"] = "shapes"

    left, right = st.columns([2, 1])
    name = left.selectbox("Dataset", options, key="data-dataset", format_func=dataset_label)
    val_fraction = right.slider("Validation fraction", 0.05, 0.5, step=0.05, key="data-val-fraction")
    if name in data.BUILTIN_DATASETS:
        st.caption(data.BUILTIN_DATASETS[name])

    with ui.user_errors():
        ds = load(name, val_fraction)
        a, b, c, d = st.columns(4)
        a.metric("Classes", ds.num_classes)
        b.metric("Train images", len(ds.train))
        c.metric("Val images", len(ds.val))
        size = f"{ds.image_size[1]}×{ds.image_size[0]}" if ds.image_size else "mixed"
        d.metric("Size · channels", f"{size} · {ds.channels}")
        if name not in data.BUILTIN_DATASETS:
            render_report(_report(name, str(paths.data_dir()), _stamp(name)))
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
            st.checkbox(f"Yes, delete '{name}' from {data.datasets_dir()}", key="data-delete-confirm")
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
        return st.session_state.get("aug-dataset") or "shapes"
    return st.session_state.get("data-dataset") or "shapes"


def dataset_stats() -> tuple[str, list[float], list[float]] | None:
    name = stats_dataset()
    try:
        mean, std = _mean_std(name, str(paths.data_dir()), _stamp(name))
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
        cols = st.columns(min(len(args), 3))
        for k, (arg, value) in enumerate(args):
            box = cols[k % len(cols)]
            key = f"aug-{uid}-{arg}"
            if isinstance(value, bool):
                new[arg] = box.checkbox(arg, value=value, key=key)
            elif isinstance(value, (int, float)):
                new[arg] = number_widget(arg, value, key, box)
            elif isinstance(value, str) and arg in augment.CHOICES:
                options = list(augment.CHOICES[arg])
                new[arg] = box.selectbox(
                    arg, options, index=options.index(value) if value in options else 0, key=key
                )
            elif (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                and arg not in ("mean", "std", "padding")
            ):
                names = ("h", "w") if arg == "size" else ("min", "max")
                inner = box.columns(2)
                new[arg] = [
                    number_widget(f"{arg} {names[j]}", value[j], f"{key}-{names[j]}", inner[j])
                    for j in range(2)
                ]
            elif isinstance(value, list):
                new[arg] = list_widget(arg, value, key, box)
            else:
                text = box.text_input(f"{arg} (JSON)", value=json.dumps(value), key=key)
                try:
                    new[arg] = json.loads(text)
                except ValueError:
                    new[arg] = text
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
        a.selectbox("Saved pipelines", saved, key="aug-load-name")
        b.button("Load", key="aug-load", on_click=load_saved)
    if not steps:
        st.info("No steps yet: the preview shows the image unchanged. Add a step below.")
    for pos, pair in enumerate(list(steps)):
        pair[1] = step_editor(pos, pair[0], pair[1], len(steps))
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    a.selectbox(
        "Add a step",
        list(augment.OPS),
        key="aug-add-op",
        format_func=lambda op: f"{op} ({augment.OPS[op].group})",
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
        "Image source", ["Sample photo", "Dataset image", "Uploaded image"], key="aug-source", horizontal=True
    )
    if source == "Sample photo":
        photos = _sample_photos()
        name = st.selectbox("Photo", list(photos), key="aug-photo")
        return photos[
            name
        ], f"scikit-learn sample photo {name}, previewed at {SAMPLE_PHOTO_SIDE} px short side"
    if source == "Dataset image":
        a, b = st.columns([2, 1])
        options = dataset_options()
        if st.session_state.get("aug-dataset") not in options:
            st.session_state["aug-dataset"] = "shapes"
        name = a.selectbox("Dataset", options, key="aug-dataset", format_func=dataset_label)
        ds = load(name)
        last = max(len(ds.train) - 1, 0)
        if st.session_state.get("aug-index", 0) > last:
            st.session_state["aug-index"] = 0
        index = b.number_input("Image index (train split)", 0, last, key="aug-index")
        image, target = ds.train[int(index)]
        return image, f"{name} train image {index}: class '{ds.classes[target]}'"
    file = st.file_uploader(
        "Upload an image", type=[e.lstrip(".") for e in data.IMAGE_EXTENSIONS], key="aug-image"
    )
    if file is None:
        st.info("Upload a .png/.jpg image to preview the pipeline on it.")
        return None, ""
    try:
        with Image.open(io.BytesIO(file.getvalue())) as img:
            image = img.convert("RGB") if img.mode not in ("L", "RGB") else img.copy()
    except (OSError, ValueError) as exc:
        raise data.DatasetError(f"{file.name} is not an image this app can read ({exc}).") from None
    if max(image.size) > MAX_UPLOAD_SIDE:
        image.thumbnail((MAX_UPLOAD_SIDE, MAX_UPLOAD_SIDE))
    return image, f"{file.name} ({image.width}×{image.height})"


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
            n = a.select_slider("Augmented samples", [4, 8, 16, 32], key="aug-n")
            seed = b.number_input("Seed", min_value=0, step=1, key="aug-seed")
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
            st.text_input("Pipeline name", key="aug-save-name", placeholder="e.g. flips-and-jitter")
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
if "data-section" not in st.session_state:
    wanted = str(st.query_params.get("section", "")).capitalize()
    st.session_state["data-section"] = wanted if wanted in SECTIONS else SECTIONS[0]
section = st.radio("Section", SECTIONS, key="data-section", horizontal=True, label_visibility="collapsed")
if section == "Datasets":
    datasets_tab()
else:
    augmentation_tab()
