"""The Data & augmentation page's **Datasets** section: upload or import a zip (asking what to do when its
name is taken), pick a dataset, see its counts, upload report, class table and gallery, delete it.

Also the dataset choice both sections share (:func:`dataset_options`, :func:`dataset_label`,
:data:`DEFAULT_DATASET`) and :func:`show_message`, the one-shot message a callback leaves for the next run.
"""

from __future__ import annotations

import logging
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import streamlit as st

import ui
from cnndash import data, paths
from cnndash.data.report import group_skipped, reason_phrase, skipped_summary
from cnndash.plots import dataset as plots_data
from cnndash.text import N_
from cnndash.training.loops import TrainConfig
from ui import i18n
from ui.engine_text import engine_text
from ui.state import error_text, said

_ = i18n.translator("data")
_engine = i18n.translator("engine")

log = logging.getLogger("cnndash.pages.data")

GALLERY_CELL = 72  # px per gallery thumbnail
TABLE_MAX_CLASSES = 30  # above this, class counts go to a scrollable dataframe
GALLERY_MAX_CLASSES = 12  # above this, the gallery shows the classes picked in a multiselect

# The dataset is the workspace's choice (ui.workspace: the preview and Training use it too); the page's
# other widgets keep their values with ui.keep, as the two sections are drawn one at a time.
DEFAULT_DATASET = "shapes"  # shown until a dataset is chosen
DEFAULT_GALLERY_N = 8  # images per class in the gallery
SIZES_LISTED = 8  # image sizes listed in an uploaded dataset's report

# Errors an upload can cause. The engine raises ValueError subclasses (DatasetError) for everything it
# checks; OSError (a full disk, a name the file system refuses) and a zip the zipfile module cannot read
# are caught too, so an upload never ends in a traceback.
UPLOAD_ERRORS = (ValueError, OSError, zipfile.BadZipFile, EOFError)
EXISTS_CHOICES = {
    "replace": N_("Replace it"),
    "keep": N_("Keep both"),
    "cancel": N_("Cancel"),
}


@st.cache_data(show_spinner=False, max_entries=6)
def _report(name: str, data_dir: str, stamp: int) -> data.ValidationReport:
    return data.dataset_report(name, data_dir=Path(data_dir))


def _load_report(name: str) -> data.ValidationReport:
    """The stored dataset ``name``'s validation report, cached until the dataset changes."""
    return _report(name, str(paths.data_dir()), ui.dataset_stamp(name))


def dataset_options() -> list[str]:
    """Every dataset a selectbox offers: the built-ins, then the uploaded ones."""
    return list(data.BUILTIN_DATASETS) + data.list_datasets()


def chosen_dataset() -> str:
    """The workspace's dataset when it exists here, else :data:`DEFAULT_DATASET` (a name from a URL is
    only ever one of :func:`dataset_options`)."""
    return ui.workspace.get("dataset", DEFAULT_DATASET, options=dataset_options())


def dataset_label(name: str) -> str:
    if name in data.BUILTIN_DATASETS:
        return _("{name} — built-in", name=name)
    return _("{name} — uploaded", name=ui.plain(name))


MESSAGE_KINDS = {
    "ok": (st.success, ":material/check_circle:"),
    "warning": (st.warning, ":material/warning:"),
    "error": (st.error, ":material/error:"),
}


def show_message(key: str) -> None:
    """Show, once, the ``("ok" | "warning" | "error", message)`` a callback left in ``st.session_state[key]``
    (Markdown with its names already escaped by ``ui.md``, or a :data:`ui.state.Said`, said now)."""
    message = st.session_state.pop(key, None)
    if message is None:
        return
    kind, text = message
    show, icon = MESSAGE_KINDS.get(kind, MESSAGE_KINDS["error"])
    show(said(text), icon=icon)


# --------------------------------------------------------------------------------------------------
# Upload, the exists-question and delete

MAX_UPLOAD_NAME_BYTES = 200  # an upload's own file name is kept up to this length (file systems: 255)


def upload_path(folder: Path, file_name: str) -> Path:
    """Where an uploaded zip is written for the engine: inside ``folder`` (a fresh temporary folder) under the
    user's own file name, so that every message names the file they chose, never ``upload.zip``. Only the
    last path component is kept; a name no file system can hold becomes one derived from it."""
    base = Path(file_name.replace("\\", "/")).name
    if (
        base in ("", ".", "..")
        or "\x00" in base
        or len(base.encode("utf-8", "replace")) > MAX_UPLOAD_NAME_BYTES
    ):
        base = data.dataset_name_from(file_name) + ".zip"
    return folder / base


def _import_zip(uploaded: Any, name: str, on_exists: str) -> data.ValidationReport:
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = upload_path(Path(tmp), uploaded.name)
        zip_path.write_bytes(uploaded.getvalue())
        return data.import_dataset_zip(zip_path, name, on_exists=on_exists)


def _replace_dataset(uploaded: Any, name: str) -> data.ValidationReport:
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = upload_path(Path(tmp), uploaded.name)
        zip_path.write_bytes(uploaded.getvalue())
        return data.replace_dataset_zip(zip_path, name)


def _import_upload(choice: str | None = None) -> None:
    """Import a freshly uploaded zip once (the uploader keeps the file across reruns). A name that is
    already taken waits for ``choice`` (one of :data:`EXISTS_CHOICES`), asked for by :func:`_ask_exists`."""
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
            lambda: _("Upload cancelled: '{name}' is unchanged.", name=ui.text(wanted)),
        )
        return
    try:
        if choice == "replace":
            report = _replace_dataset(uploaded, wanted)
        else:
            report = _import_zip(uploaded, wanted, "suffix")
    except UPLOAD_ERRORS as exc:
        log.info("upload %r refused: %s", uploaded.name, exc)
        st.session_state["data-upload-result"] = ("error", lambda exc=exc: ui.text(error_text(exc)))
        return
    # The skipped files by reason, the real problems first (an unreadable photo, not 281 .DS_Store files);
    # a problem turns the message into a warning.
    problem = any(group.problem for group in group_skipped(report.skipped))
    st.session_state["data-upload-result"] = (
        "warning" if problem else "ok",
        lambda: _stored(report, choice, wanted),
    )
    st.session_state["data-upload-name"] = report.name
    ui.workspace.put("dataset", report.name)  # the upload is the dataset from now on, on every page


def _stored(report: data.ValidationReport, choice: str | None, wanted: str) -> str:
    """What an upload stored (said when shown, in the reader's language): its name, images, skipped files."""
    images = _.plural("{n:,} image", "{n:,} images", report.num_images, n=report.num_images)
    if choice == "replace":
        stored = _("Replaced '{name}': {images}.", name=ui.text(report.name), images=images)
    elif report.name != wanted:
        stored = _(
            "Stored as '{name}' (next to the existing one): {images}.",
            name=ui.text(report.name),
            images=images,
        )
    else:
        stored = _("Stored as '{name}': {images}.", name=ui.text(report.name), images=images)
    skipped = skipped_summary(report.skipped)
    return stored + (" " + ui.text(engine_text(skipped)) + "." if skipped else "")


def _ask_exists() -> None:
    """Ask what to do with an upload whose dataset name is taken: replace, keep both, or cancel."""
    uploaded = st.session_state.get("data-upload")
    if uploaded is None or st.session_state.get("data-upload-exists") != uploaded.file_id:
        return
    wanted = data.dataset_name_from(uploaded.name)
    with st.container(border=True):
        st.warning(
            _("A dataset named '{name}' already exists.", name=ui.text(wanted)), icon=":material/warning:"
        )
        cols = st.columns(len(EXISTS_CHOICES))
        for col, (choice, label) in zip(cols, EXISTS_CHOICES.items(), strict=True):
            col.button(
                _(label),
                key=f"data-upload-{choice}",
                on_click=_import_upload,
                args=(choice,),
                type="primary" if choice == "keep" else "secondary",
                help=_(
                    "Keep both: stores the upload as '{name}-2' (or the next free number).",
                    name=ui.text(wanted),
                )
                if choice == "keep"
                else None,
            )


def _delete_selected() -> None:
    """Delete the dataset the Datasets section shows (a button's callback) and leave a message."""
    name = st.session_state.get("data-dataset")
    try:
        data.delete_dataset(name)
    except UPLOAD_ERRORS as exc:
        st.session_state["data-message"] = ("error", lambda exc=exc: ui.text(error_text(exc)))
        return
    st.session_state["data-message"] = ("ok", lambda: _("Deleted dataset '{name}'.", name=ui.text(name)))
    ui.workspace.put("dataset", None)
    st.session_state["data-delete-confirm"] = False
    if st.session_state.get("data-upload-name") == name:  # the upload message no longer holds
        st.session_state.pop("data-upload-result", None)


def _upload() -> None:
    """The uploader, the exists-question, and the outcome of the last upload or delete."""
    st.file_uploader(
        _("Upload an image-folder zip"),
        type=["zip"],
        key="data-upload",
        help=_(
            "One folder per class (cats/*.jpg, dogs/*.jpg), or train/<class>/… and val/<class>/…; "
            "optionally inside one top-level folder. __MACOSX and hidden files are ignored."
        ),
    )
    _import_upload()
    _ask_exists()
    uploaded = st.session_state.get("data-upload")
    result = st.session_state.get("data-upload-result")
    stored = st.session_state.get("data-upload-name")
    if result is not None and result[0] != "error" and stored and stored not in data.list_datasets():
        st.session_state.pop("data-upload-result")  # the dataset was deleted since (e.g. by the CLI)
        result = None
    if uploaded is not None and result is not None:
        show, icon = MESSAGE_KINDS.get(result[0], MESSAGE_KINDS["error"])
        show(said(result[1]), icon=icon)
    show_message("data-message")


def _delete(name: str) -> None:
    with st.expander(_("Delete this dataset")):
        st.checkbox(
            _("Yes, delete '{name}' from {folder}", name=ui.text(name), folder=ui.text(data.datasets_dir())),
            key="data-delete-confirm",
        )
        st.button(
            _("Delete dataset"),
            key="data-delete",
            type="primary",
            on_click=_delete_selected,
            disabled=not st.session_state.get("data-delete-confirm"),
        )


# --------------------------------------------------------------------------------------------------
# One dataset: counts, report, class table, gallery


def _class_table(ds: data.ImageSet) -> None:
    train = ds.train.class_counts(ds.num_classes)
    val = ds.val.class_counts(ds.num_classes)
    many = ds.num_classes > TABLE_MAX_CLASSES
    # st.table reads Markdown in its cells, st.dataframe shows plain text: the class name suits each.
    shown = ui.plain if many else ui.text
    rows = [
        {_("class"): shown(c), _("train"): t, _("val"): v, _("total"): t + v}
        for c, t, v in zip(ds.classes, train, val, strict=True)
    ]
    if many:
        st.dataframe(rows, hide_index=True, width="stretch", height=320)
    else:
        st.table(rows)


def _render_report(report: data.ValidationReport) -> None:
    if report.skipped:  # first: an image that did not make it in matters more than the dataset's shape
        _render_skipped(report.skipped)
    for warning in report.warnings:
        st.warning(ui.text(engine_text(warning)), icon=":material/warning:")
    by_count = sorted(report.sizes.items(), key=lambda kv: -kv[1])
    sizes = ", ".join(f"{w}×{h} ({n})" for (h, w), n in by_count[:SIZES_LISTED])
    if len(report.sizes) > SIZES_LISTED:
        sizes += " " + _("and {n} more", n=len(report.sizes) - SIZES_LISTED)
    modes = ", ".join(f"{m} ({n})" for m, n in sorted(report.modes.items()))
    st.markdown(_("**Image sizes** (width×height): {sizes}  \n**Modes**: {modes}", sizes=sizes, modes=modes))
    if len(report.sizes) > 1:
        st.plotly_chart(plots_data.image_sizes_figure(report.sizes, tr=_engine), key="data-sizes-chart")


def _render_skipped(skipped: list[data.SkippedFile]) -> None:
    """The files an upload skipped, by reason, the real problems first (an unreadable photo is a warning,
    281 ``.DS_Store`` files a caption), and all of them in a table behind an expander."""
    groups = group_skipped(skipped)
    for group in groups:
        if group.problem:
            st.warning(ui.text(engine_text(group.describe())), icon=":material/broken_image:")
        else:
            st.caption(ui.text(engine_text(group.describe())))
    with st.expander(_("Files skipped during upload ({n})", n=len(skipped))):
        st.dataframe(
            [
                {"file": ui.plain(s.path), "why": engine_text(reason_phrase(s.reason))}
                for group in groups
                for s in group.files
            ],
            hide_index=True,
            width="stretch",
            column_config={
                "file": st.column_config.TextColumn(_("file"), width="large"),
                "why": st.column_config.TextColumn(_("why")),
            },
        )


def _render_gallery(ds: data.ImageSet) -> None:
    per_class = st.slider(_("Images per class"), 1, 16, **ui.keep("data-gallery-n", DEFAULT_GALLERY_N))
    shown = list(range(ds.num_classes))
    if ds.num_classes > GALLERY_MAX_CLASSES:
        chosen = [c for c in st.session_state.get("data-gallery-classes", []) if c in ds.classes]
        st.session_state["data-gallery-classes"] = chosen or ds.classes[:GALLERY_MAX_CLASSES]
        picked = st.multiselect(_("Classes to show"), ds.classes, **ui.keep("data-gallery-classes"))
        shown = [ds.classes.index(c) for c in picked]
    by_class = ds.train.first_of_classes(shown, per_class)
    counts = ds.train.class_counts(ds.num_classes)
    cols = st.columns(2)
    for slot, i in enumerate(shown):
        if not by_class[i]:
            continue
        sheet = plots_data.contact_sheet(
            [ds.train[k][0] for k in by_class[i]], columns=per_class, cell=GALLERY_CELL
        )
        with cols[slot % 2]:
            caption = _.plural(
                "{name} ({n:,} train image)",
                "{name} ({n:,} train images)",
                counts[i],
                name=ui.text(ds.classes[i]),
                n=counts[i],
            )
            st.image(sheet, caption=caption)


def _overview(name: str, ds: data.ImageSet) -> None:
    """The chosen dataset's numbers, its upload report, class counts (chart and table) and gallery."""
    a, b, c, d = st.columns(4)
    a.metric(_("Classes"), ds.num_classes)
    b.metric(_("Train images"), len(ds.train))
    c.metric(_("Val images"), len(ds.val))
    size = f"{ds.image_size[1]}×{ds.image_size[0]}" if ds.image_size else _("mixed")
    d.metric(_("Size · channels"), f"{size} · {ds.channels}")
    if name not in data.BUILTIN_DATASETS:
        _render_report(_load_report(name))
    chart, table = st.columns([3, 2])
    split = {
        "train": dict(zip(ds.classes, ds.train.class_counts(ds.num_classes), strict=True)),
        "val": dict(zip(ds.classes, ds.val.class_counts(ds.num_classes), strict=True)),
    }
    chart.plotly_chart(plots_data.class_counts_figure(ds.classes, split, tr=_engine), key="data-counts-chart")
    with table:
        _class_table(ds)
    st.subheader(_("Gallery"))
    _render_gallery(ds)


def datasets_tab() -> None:
    """The Datasets section, top to bottom."""
    _upload()
    options = dataset_options()
    left, right = st.columns([2, 1])
    name = left.selectbox(
        _("Dataset"),
        options,
        format_func=dataset_label,
        **ui.workspace.bind("dataset", "data-dataset", default=DEFAULT_DATASET, options=options),
    )
    val_fraction = right.slider(
        _("Validation fraction"),
        0.05,
        0.5,
        step=0.05,
        **ui.keep("data-val-fraction", TrainConfig.val_fraction),
    )
    if name in data.BUILTIN_DATASETS:
        st.caption(_engine(data.BUILTIN_DATASETS[name]))

    with ui.user_errors():
        ds = ui.load_dataset(name, val_fraction)
        _overview(name, ds)

    if name not in data.BUILTIN_DATASETS:
        _delete(name)
