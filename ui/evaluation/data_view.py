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
from cnndash.evaluate.label_issues import (
    PROBS_FILE,
    LabelIssues,
    read_label_issues,
    run_label_issues,
    val_paths,
)
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
from cnndash.training.loops import TrainConfig

THUMB = 96
GALLERY_COLUMNS = 4
MAX_SELECTED_SHOWN = 24
SIDEBAR_POLL_SECONDS = 2
# Keyboard shortcuts of the suspicious-label gallery: they act on its first image (the most suspicious one
# not yet edited), so pressing them repeatedly walks down the list. "C" and "R" are Streamlit's own.
SHORTCUT_RELABEL, SHORTCUT_REMOVE, SHORTCUT_UNDO = "A", "X", "U"


@st.cache_data(show_spinner="Ranking labels with cleanlab…", max_entries=8)
def _issues(run_path: str, fingerprint: str) -> LabelIssues:
    return run_label_issues(run_path)


@st.cache_data(show_spinner="Embedding the validation images (PCA, t-SNE)…", max_entries=8)
def _embedding(run_path: str, fingerprint: str) -> dict:
    emb = embed_run(run_path)
    return {"pca": emb.pca, "tsne": emb.tsne}


def _image_root(run: Run) -> Path:
    name = str(run.config["dataset"])
    if parse_builtin(name)[0] is not None:
        return folds.builtin_files(name)
    root = ui.run_dataset(run).root
    if root is None:
        raise ValueError(f"The dataset {name!r} of run {run.name!r} has no image files to show.")
    return root


def _thumb(root: Path, path: str) -> Image.Image:
    with Image.open(root / path) as image:
        return plots_eval.thumbnail(image.convert("RGB"), THUMB)


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
def _val_paths(run_path: str, fingerprint: str) -> list[str]:
    return val_paths(load_run(run_path))


def render_label_actions(run: Run, val_index: int, suggested: str | None = None, *, key: str) -> None:
    """ "Relabel as …" and "Remove" buttons for validation image ``val_index`` of ``run`` — for the
    confusion-cell and top-losses galleries. Edits go to the same working version as the Data view's;
    ``key`` makes the widget keys unique on the page (e.g. ``"eval-cell-3"``)."""
    with ui.user_errors():
        path = _val_paths(str(run.path), run.fingerprint("best"))[val_index]
        if path in _edited_paths(run):
            st.caption("edited in the working version")
            return
        options = list(run.classes)
        target = st.selectbox("Relabel as", options, index=options.index(suggested) if suggested in options
                              else 0, key=f"{key}-to", label_visibility="collapsed")  # fmt: skip
        left, right = st.columns(2)
        if left.button("Relabel", key=f"{key}-relabel"):
            _edit(run, [{"op": "relabel", "path": path, "to": target}])
            st.rerun()
        if right.button("Remove", key=f"{key}-remove"):
            _edit(run, [{"op": "remove", "path": path}])
            st.rerun()


def render_data_view(run: Run) -> None:
    """Suspicious labels, one-click fixes into a version, the embedding, and retraining."""
    st.subheader("Suspicious labels")
    st.caption(
        "Validation images ranked by cleanlab from this run's out-of-sample predictions: score = 1 − the "
        "probability the model gives the label you gave. For every image, run "
        "`python -m cnndash find-label-issues` (K-fold). See docs/data-centric.md."
    )
    with ui.user_errors():
        val_issues = _issues(str(run.path), run.fingerprint("best"))
        kfold = _render_kfold(run)
        issues = val_issues
        if kfold is not None:
            sources = ["K-fold: every image", "This run: validation images"]
            if (
                st.radio("Scores from", sources, horizontal=True, **ui.keep("data-source", sources[0]))
                == sources[0]
            ):
                issues = kfold
        frame = issues.frame()
        root = _image_root(run)
        edited = _edited_paths(run)
        _render_gallery(run, frame, root, edited)
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
    st.progress(snap.fraction, text=f"K-fold label check: {snap.text()}")
    if st.button("Stop", key="data-kfold-stop"):
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
    if job is not None and job.snapshot().status in ("failed", "stopped"):
        st.warning(job.snapshot().text())
    probs = out / PROBS_FILE
    result = _read_kfold(str(out), probs.stat().st_mtime_ns if probs.is_file() else 0, dataset)
    left, right = st.columns([1, 3])
    folds = int(left.number_input("Folds", 2, 10, step=1, **ui.keep("data-folds", 5)))
    again = "again " if result is not None else ""
    if right.button(f"Check every image {again}({folds} training runs)", key="data-kfold-start"):
        template = TrainConfig.from_dict({**run.config, "tensorboard": False})
        start_label_issues(run.name, dataset, template, out, folds)
        st.rerun()
    return result


def _render_gallery(run: Run, frame: pd.DataFrame, root: Path, edited: set[str]) -> None:
    threshold = st.slider("Score threshold", 0.5, 1.0, step=0.01, **ui.keep("data-threshold", 0.9))
    st.plotly_chart(plots_labels.score_histogram(frame["score"], threshold), key="data-score-hist")
    disagree = frame[(frame["suggested"] != frame["given"]) & ~frame["path"].isin(edited)]
    above = disagree[disagree["score"] >= threshold]
    st.markdown(
        f"**{len(disagree)}** images where the model suggests another label, **{len(above)}** above the "
        f"threshold; cleanlab flags **{int(frame['issue'].sum())}** of {len(frame)}."
    )
    if st.button(f"Accept all {len(above)} suggestions above {threshold:.2f}", key="data-accept-all",
                 disabled=above.empty):  # fmt: skip
        _edit(
            run,
            [
                {"op": "relabel", "path": p, "to": s}
                for p, s in zip(above["path"], above["suggested"], strict=True)
            ],
        )
        st.rerun()
    shown = st.number_input("Images shown", 4, 96, step=4, **ui.keep("data-top", 12))
    rows = list(disagree.head(int(shown)).itertuples(index=False))
    if rows:
        st.caption(
            f"Keys: **{SHORTCUT_RELABEL}** relabels the first image as suggested, **{SHORTCUT_REMOVE}** removes "
            f"it, **{SHORTCUT_UNDO}** undoes the last edit; the next image then moves up."
        )
    for start in range(0, len(rows), GALLERY_COLUMNS):
        for col, row in zip(st.columns(GALLERY_COLUMNS), rows[start : start + GALLERY_COLUMNS], strict=False):
            with col:
                first = row is rows[0]
                st.image(_thumb(root, row.path), caption=f"{row.given} → {row.suggested} · {row.score:.2f}")
                st.caption(row.path)
                if st.button(f"Relabel as {row.suggested}", key=f"data-relabel-{row.path}",
                             shortcut=SHORTCUT_RELABEL if first else None):  # fmt: skip
                    _edit(run, [{"op": "relabel", "path": row.path, "to": row.suggested}])
                    st.rerun()
                if st.button(
                    "Remove", key=f"data-remove-{row.path}", shortcut=SHORTCUT_REMOVE if first else None
                ):
                    _edit(run, [{"op": "remove", "path": row.path}])
                    st.rerun()


def _render_version(run: Run) -> None:
    version = st.session_state.get(_version_key(run))
    if not version:
        st.info("Edits go into a new version of the dataset; the run's own dataset is never changed.")
        return
    parent = str(run.config["dataset"])
    changes = versions.diff(parent, version)
    st.markdown(f"Editing version **{version}** of `{parent}`: {len(changes)} image(s) changed.")
    with st.expander("Changes (diff against the run's dataset)"):
        st.dataframe(changes, hide_index=True)
    left, right = st.columns(2)
    if left.button("Undo last edit", key="data-undo", disabled=changes.empty, shortcut=SHORTCUT_UNDO):
        versions.undo(version)
        st.rerun()
    if right.button(
        "Retrain on the edited version", key="data-retrain", type="primary", disabled=changes.empty
    ):
        check_no_label_job()
        config = TrainConfig.from_dict({**run.config, "dataset": version})
        job = get_registry().start(config)
        st.session_state["data-retrained"] = job.run_name
    if st.session_state.get("data-retrained"):
        st.success(
            f"Training run **{st.session_state['data-retrained']}** on `{version}` with this run's settings; "
            "compare both on the Runs tab when it finishes."
        )


def _render_embedding(run: Run, issues: LabelIssues, frame: pd.DataFrame, root: Path) -> None:
    st.subheader("Embedding")
    method = st.radio("Projection", ["t-SNE", "PCA"], horizontal=True, **ui.keep("data-projection", "t-SNE"))
    coords = _embedding(str(run.path), run.fingerprint("best"))["tsne" if method == "t-SNE" else "pca"]
    scored = frame.set_index("path")
    threshold = float(st.session_state.get("data-threshold", 0.9))
    points = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "path": issues.paths,
                           "given": [issues.classes[g] for g in issues.given]})  # fmt: skip
    points["score"] = scored.loc[points["path"], "score"].to_numpy()
    points["suspect"] = scored.loc[points["path"], "issue"].to_numpy() | (points["score"] >= threshold)
    event = st.plotly_chart(
        plots_labels.embedding_figure(points), key="data-embedding", on_select="rerun",
        selection_mode=("points", "box", "lasso"),
    )  # fmt: skip
    selected = [p["customdata"][0] for p in (event.selection.points if event else []) if p.get("customdata")]
    if selected:
        st.caption(f"{len(selected)} selected (showing up to {MAX_SELECTED_SHOWN})")
        cols = st.columns(8)
        for i, path in enumerate(selected[:MAX_SELECTED_SHOWN]):
            cols[i % 8].image(_thumb(root, path), caption=path)


def render_label_job_sidebar() -> None:
    """The K-fold label check in the sidebar while it trains (it runs outside the training job registry,
    so the sidebar's training panel cannot show it); ``ui.render_sidebar`` calls this once this module
    is loaded (no job can exist before)."""
    if active_label_job() is not None:
        st.fragment(_label_job_panel, run_every=SIDEBAR_POLL_SECONDS)()


def _label_job_panel() -> None:
    running = active_label_job()
    if running is None:
        st.caption("Label check finished")
        return
    key, job = running
    snap = job.snapshot()
    st.caption("Label check (K-fold training)")
    st.markdown(f"**{ui.text(key)}** — {ui.text(snap.text())}")
    st.progress(snap.fraction)
