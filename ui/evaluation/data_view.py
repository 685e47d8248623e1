"""The Evaluation page's **Data** view: suspicious labels, fixing them in a dataset version, the embedding
scatter, and retraining on the edited version. ``render_data_view(run)`` draws it for one run.

Scores come from the run's own validation predictions (out-of-sample: the run never trained on those
images) ranked by cleanlab (:func:`cnndash.evaluate.label_issues.run_label_issues`); ``python -m cnndash
find-label-issues`` covers every image with K-fold runs. Edits never touch the run's dataset: the first
one creates a version (:mod:`cnndash.data.versions`), later ones and undo apply to it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from PIL import Image

import ui
from cnndash import paths
from cnndash.data import folds, versions
from cnndash.data.builtin import parse_builtin
from cnndash.data.images import DatasetError, open_image_file
from cnndash.evaluate.label_issues import (
    PROBS_FILE,
    LabelIssues,
    read_label_issues,
    run_label_issues,
    val_paths,
)
from cnndash.evaluate.label_trust import duration_text, label_check_seconds, suggestion_trust
from cnndash.explain.embeddings import embed_run
from cnndash.jobs.label_check import (
    active_label_job,
    check_no_label_job,
    label_issues_job,
    start_label_issues,
)
from cnndash.jobs.registry import get_registry
from cnndash.plots import evaluation as plots_eval
from cnndash.plots import label_issues as plots_labels
from cnndash.runs import Run, load_run
from cnndash.text import N_
from cnndash.training.loops import TrainConfig
from ui import i18n
from ui.engine_text import engine_text
from ui.evaluation import label_review

_ = i18n.translator("evaluation")
_engine = i18n.translator("engine")

THUMB = 96
MAX_SELECTED_SHOWN = 24
SIDEBAR_POLL_SECONDS = 2


@st.cache_data(show_spinner=False, max_entries=8)  # the spinner is the caller's, in the reader's language
def _issues(run_path: str, results_key: str) -> LabelIssues:
    return run_label_issues(run_path)


@st.cache_data(show_spinner=False, max_entries=8)
def _embedding(run_path: str, results_key: str) -> dict:
    emb = embed_run(run_path)
    return {"pca": emb.pca, "tsne": emb.tsne}


def _image_root(run: Run) -> Path:
    name = str(run.config["dataset"])
    if parse_builtin(name)[0] is not None:
        return folds.builtin_files(name)
    root = ui.run_dataset(run).root
    if root is None:
        raise DatasetError("The dataset {name} of run {run} has no image files to show.", name=repr(name),
                           run=repr(run.name))  # fmt: skip
    return root


def _thumb(root: Path, path: str) -> Image.Image:
    # Decoded as training decodes it (size checked, transparency on white), not by PIL's own convert.
    return plots_eval.thumbnail(open_image_file(root / path, "RGB"), THUMB)


def _version_key(run: Run) -> str:
    return f"data-version::{run.name}"


def _edit(run: Run, edits: list[dict]) -> None:
    """Apply ``edits`` (paths as the run's dataset names them) to this run's working version."""
    key = _version_key(run)
    if key not in st.session_state:
        st.session_state[key] = versions.create_version(str(run.config["dataset"]))
    versions.edit_from_parent(st.session_state[key], edits)


def _edited_paths(run: Run) -> set[str]:
    version = st.session_state.get(_version_key(run))
    if not version:
        return set()
    changes = versions.diff(str(run.config["dataset"]), version)
    return set(changes["origin"])  # images are named by origin, as the run's val_paths name them


@st.cache_data(show_spinner=False, max_entries=8)
def _val_paths(run_path: str, results_key: str) -> list[str]:
    return val_paths(load_run(run_path))


def render_label_actions(run: Run, val_index: int, suggested: str | None = None, *, key: str) -> None:
    """ "Relabel as …" and "Remove" buttons for validation image ``val_index`` of ``run`` — for the
    confusion-cell and top-losses galleries. Edits go to the same working version as the Data view's;
    ``key`` makes the widget keys unique on the page (e.g. ``"eval-cell-3"``)."""
    with ui.user_errors():
        path = _val_paths(str(run.path), ui.run_results_key(run))[val_index]
        if path in _edited_paths(run):
            st.caption(_("edited in the working version"))
            return
        options = list(run.classes)
        target = st.selectbox(_("Relabel as"), options, index=options.index(suggested) if suggested in options
                              else 0, format_func=ui.plain, key=f"{key}-to", label_visibility="collapsed")  # fmt: skip
        # One under the other, full width: side by side in a gallery column they were cut to "Rela…".
        if st.button(_("Relabel"), key=f"{key}-relabel", width="stretch"):
            _edit(run, [{"op": "relabel", "path": path, "to": target}])
            st.toast(
                _("Relabelled {path} as {cls}.", path=ui.text(path), cls=ui.text(target)),
                icon=":material/check_circle:",
            )
            st.rerun()
        if st.button(_("Remove"), key=f"{key}-remove", width="stretch"):
            _edit(run, [{"op": "remove", "path": path}])
            st.toast(_("Removed {path}.", path=ui.text(path)), icon=":material/check_circle:")
            st.rerun()


def render_data_view(run: Run) -> None:
    """Suspicious labels, one-click fixes into a version, the embedding, and retraining."""
    st.subheader(_("Suspicious labels"))
    st.caption(
        _(
            "Validation images ranked by cleanlab from this run's out-of-sample predictions: score = 1 − the "
            "probability the model gives the label you gave. For every image, run "
            "`python -m cnndash find-label-issues` (K-fold). See docs/data-centric.md."
        )
    )
    with ui.user_errors():
        with st.spinner(_("Ranking labels with cleanlab…")):
            val_issues = _issues(str(run.path), ui.run_results_key(run))
        kfold = _render_kfold(run)
        issues = val_issues
        if kfold is not None:
            sources = [N_("K-fold: every image"), N_("This run: validation images")]
            if (
                st.radio(
                    _("Scores from"),
                    sources,
                    format_func=_,
                    horizontal=True,
                    **ui.keep("data-source", sources[0]),
                )
                == sources[0]
            ):
                issues = kfold
        frame = issues.frame()
        root = _image_root(run)
        label_review.render_suggestions(
            frame,
            _edited_paths(run),
            suggestion_trust(issues.given, issues.pred_probs),
            thumb=lambda path: _thumb(root, path),
            edit=lambda edits: _edit(run, edits),
            owner=run.name,
        )
        _render_version(run)
        _render_embedding(run, val_issues, frame, root)


def _kfold_dir(run: Run) -> Path:
    return paths.data_dir() / "label-issues" / run.name


@st.cache_data(show_spinner=False, max_entries=8)
def _read_kfold(out_dir: str, stamp: int, dataset: str) -> LabelIssues | None:
    return read_label_issues(out_dir, dataset)


@st.fragment(run_every=2)
def _kfold_progress(key: str) -> None:
    job = label_issues_job(key)
    if job is None:
        return
    snap = job.snapshot()
    st.progress(
        snap.fraction, text=_("K-fold label check: {progress}", progress=ui.text(engine_text(snap.text())))
    )
    if st.button(_("Stop"), key="data-kfold-stop"):
        job.stop()
    if not job.alive:
        st.rerun()


def _render_kfold(run: Run) -> LabelIssues | None:
    """Start / follow K-fold training over every image; the finished result, if any."""
    out, dataset = _kfold_dir(run), str(run.config["dataset"])
    job = label_issues_job(run.name)
    if job is not None and job.alive:
        _kfold_progress(run.name)
        return None
    snap = job.snapshot() if job is not None else None
    if snap is not None and snap.status == "stopped":  # said from its numbers: the job keeps only the English
        st.warning(_("Label check stopped at fold {fold} of {folds}; start again to finish.", fold=max(snap.fold, 1),
                     folds=snap.folds))  # fmt: skip
    elif snap is not None and snap.status == "failed":
        st.warning(ui.text(engine_text(snap.text())))
    probs = out / PROBS_FILE
    result = _read_kfold(str(out), probs.stat().st_mtime_ns if probs.is_file() else 0, dataset)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    folds = int(left.number_input(_("Folds"), 2, 10, step=1, **ui.keep("data-folds", 5)))
    again = result is not None
    summary = run.summary or {}
    images = int(summary.get("train_images") or 0) + int(summary.get("val_images") or 0)
    took = ""
    if images:  # the check trains `folds` runs like this one: at the speed this one measured
        seconds = label_check_seconds(images, folds, int(run.config.get("epochs", 1)), summary,
                                      str(summary.get("device") or "cpu"))  # fmt: skip
        took = ", " + engine_text(duration_text(seconds))
    label = (
        _("Check every image again ({folds} training runs{took})", folds=folds, took=took)
        if again
        else _("Check every image ({folds} training runs{took})", folds=folds, took=took)
    )
    if right.button(label, key="data-kfold-start"):
        template = TrainConfig.from_dict({**run.config, "tensorboard": False})
        start_label_issues(run.name, dataset, template, out, folds)
        st.rerun()
    return result


def _render_version(run: Run) -> None:
    version = st.session_state.get(_version_key(run))
    if not version:
        st.info(_("Edits go into a new version of the dataset; the run's own dataset is never changed."))
        return
    parent = str(run.config["dataset"])
    changes = versions.diff(parent, version)
    st.markdown(
        _.plural("Editing version **{version}** of **{parent}**: {n:,} image changed.",
                 "Editing version **{version}** of **{parent}**: {n:,} images changed.", len(changes),
                 version=ui.text(version), parent=ui.text(parent), n=len(changes))
    )  # fmt: skip
    with st.expander(_("Changes (diff against the run's dataset)")):
        st.dataframe(changes, hide_index=True)
    left, right = st.columns(2)
    if left.button(
        _("Undo last edit"), key="data-undo", disabled=changes.empty, shortcut=label_review.SHORTCUT_UNDO
    ):
        versions.undo(version)
        st.session_state.pop(label_review.LAST_EDIT_KEY, None)
        st.toast(_("Undid the last edit."), icon=":material/undo:")
        st.rerun()
    if right.button(
        _("Retrain on the edited version"), key="data-retrain", type="primary", disabled=changes.empty
    ):
        check_no_label_job()
        config = TrainConfig.from_dict({**run.config, "dataset": version})
        job = get_registry().start(config)
        st.session_state["data-retrained"] = job.run_name
    if st.session_state.get("data-retrained"):
        st.success(
            _("Training run **{run}** on **{version}** with this run's settings; compare both on the Runs tab "
              "when it finishes.", run=ui.text(st.session_state["data-retrained"]), version=ui.text(version))
        )  # fmt: skip


def _render_embedding(run: Run, issues: LabelIssues, frame: pd.DataFrame, root: Path) -> None:
    st.subheader(_("Embedding"))
    method = st.radio(
        _("Projection"), ["t-SNE", "PCA"], horizontal=True, **ui.keep("data-projection", "t-SNE")
    )
    with st.spinner(_("Embedding the validation images (PCA, t-SNE)…")):
        coords = _embedding(str(run.path), ui.run_results_key(run))["tsne" if method == "t-SNE" else "pca"]
    scored = frame.set_index("path")
    threshold = float(st.session_state.get("data-threshold", 0.9))
    points = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "path": issues.paths,
                           "given": [issues.classes[g] for g in issues.given]})  # fmt: skip
    points["score"] = scored.loc[points["path"], "score"].to_numpy()
    points["suspect"] = scored.loc[points["path"], "issue"].to_numpy() | (points["score"] >= threshold)
    event = st.plotly_chart(
        plots_labels.embedding_figure(points, tr=_engine), key="data-embedding", on_select="rerun",
        selection_mode=("points", "box", "lasso"),
    )  # fmt: skip
    selected = [p["customdata"][0] for p in (event.selection.points if event else []) if p.get("customdata")]
    if selected:
        st.caption(_("{n} selected (showing up to {most})", n=len(selected), most=MAX_SELECTED_SHOWN))
        cols = st.columns(8)
        for i, path in enumerate(selected[:MAX_SELECTED_SHOWN]):
            cols[i % 8].image(_thumb(root, path), caption=ui.text(path))


def render_label_job_sidebar() -> None:
    """The K-fold label check in the sidebar while it trains (it runs outside the training job registry,
    so the sidebar's training panel cannot show it); ``ui.render_sidebar`` calls this once this module
    is loaded (no job can exist before)."""
    if active_label_job() is not None:
        st.fragment(_label_job_panel, run_every=SIDEBAR_POLL_SECONDS)()


def _label_job_panel() -> None:
    running = active_label_job()
    if running is None:
        st.caption(_("Label check finished"))
        return
    key, job = running
    snap = job.snapshot()
    st.caption(_("Label check (K-fold training)"))

    st.markdown(f"**{ui.text(key)}** — {ui.text(engine_text(snap.text()))}")
    st.progress(snap.fraction)
