"""Suspicious labels: out-of-sample probabilities by K-fold training, ranked with cleanlab.

Confident learning (Northcutt, Jiang & Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 2021; the ``cleanlab`` library) needs, for every image, class probabilities from a model
that never trained on that image. :func:`out_of_sample_probabilities` gets them the plain way: the
dataset is pinned once (:mod:`cnndash.data.pins`: edits made meanwhile change nothing) and split into K
stratified folds (:func:`cnndash.data.folds.fold_split`), and for each fold the normal trainer
(:func:`cnndash.training.loops.train`) trains a run on the other K-1 folds into the run store — so every
fold is a run that can be opened, evaluated and compared — whose ``last`` checkpoint then predicts the
held-out fold (:func:`cnndash.evaluate.predict.predict_run`). A fold is a *view* of the pinned content
(its ``dataset_ref`` names the fold held out): no fold folder is written, nothing outlives the check but
its runs and its CSV files.

:func:`rank_label_issues` hands the probabilities to cleanlab: ``cleanlab.rank.get_label_quality_scores``
(self-confidence) gives each image's score, ``cleanlab.filter.find_label_issues`` (confident joint,
prune by noise rate) flags the images it estimates to be mislabelled. ``score = 1 - p(given label)``:
0 means the held-out model fully agrees with the label, 1 that it gives the label no chance.

:func:`run_label_issues` is the quick version for one run: its validation images were never trained
on, so their predictions are already out-of-sample (no extra training; only the val split is covered).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores

from cnndash.data.folds import LabelledFiles, check_folds, fold_split
from cnndash.data.pins import owner_holder, pin_dataset, ref_files, release, run_val_paths
from cnndash.errors import UserError
from cnndash.evaluate.metrics import softmax
from cnndash.evaluate.predict import predict_run
from cnndash.paths import runs_dir as default_runs_dir
from cnndash.runs import Run, load_run, new_run_name
from cnndash.tables import FORMULA_STARTS, safe_frame
from cnndash.training.config import TrainConfig
from cnndash.training.events import TrainEvent
from cnndash.training.loops import train

ISSUES_FILE = "label_issues.csv"
PROBS_FILE = "out_of_sample_probs.csv"
COLUMNS = ["path", "given", "suggested", "score"]  # label_issues.csv, most suspicious first
DEFAULT_FOLDS = 5

# (fold number from 1, number of folds, the fold's training event)
FoldProgress = Callable[[int, int, TrainEvent], None]


class LabelIssuesStopped(UserError):
    """The K-fold training was stopped before every fold had finished."""


@dataclass
class LabelIssues:
    """Out-of-sample probabilities of a dataset's images and what cleanlab makes of them."""

    dataset: str
    classes: list[str]
    paths: list[str]  # relative to the dataset root, as in its archive
    given: np.ndarray  # (N,) class index of the given label
    pred_probs: np.ndarray  # (N, K) out-of-sample class probabilities
    runs: list[str]  # the fold runs (or the one run) the probabilities come from

    def frame(self) -> pd.DataFrame:
        """:func:`rank_label_issues` of these probabilities."""
        return rank_label_issues(self.paths, self.given, self.pred_probs, self.classes)

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write ``label_issues.csv`` (``path,given,suggested,score``, most suspicious first) and
        ``out_of_sample_probs.csv`` (path, given label, one column per class) into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # Paths and class names come from uploads: no cell may become a spreadsheet formula.
        safe_frame(self.frame()[COLUMNS]).to_csv(out / ISSUES_FILE, index=False)
        probs = pd.DataFrame(self.pred_probs, columns=self.classes)
        probs.insert(0, "given", [self.classes[i] for i in self.given])
        probs.insert(0, "path", self.paths)
        safe_frame(probs).to_csv(out / PROBS_FILE, index=False, float_format="%.6g")
        return out / ISSUES_FILE


def rank_label_issues(
    paths: list[str], given: np.ndarray, pred_probs: np.ndarray, classes: list[str]
) -> pd.DataFrame:
    """One row per image, most suspicious first: ``path``, ``given``, ``suggested`` (class names),
    ``score`` (1 - cleanlab's self-confidence label quality) and ``issue`` (flagged by cleanlab's
    ``find_label_issues``)."""
    given = np.asarray(given, dtype=np.int64)
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(given) or len(paths) != len(given):
        raise ValueError(f"{len(paths)} paths, {len(given)} labels and {probs.shape} probabilities disagree.")
    probs = probs / probs.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(given, probs, method="self_confidence")
    flagged = _flagged(given, probs)
    frame = pd.DataFrame(
        {
            "path": list(paths),
            "given": [classes[i] for i in given],
            "suggested": [classes[i] for i in probs.argmax(axis=1)],
            "score": 1.0 - np.asarray(quality, dtype=np.float64),
            "issue": flagged,
        }
    )
    return frame.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)


def _flagged(given: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """cleanlab's confident-learning verdict per image (all False where it cannot run: one class seen)."""
    if len(np.unique(given)) < 2:
        return np.zeros(len(given), dtype=bool)
    # n_jobs=1: no worker processes inside a web server; these datasets are small.
    return np.asarray(find_label_issues(given, probs, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)


# --------------------------------------------------------------------------------------------------
# K-fold out-of-sample probabilities


def _fold_probabilities(run: Run, files: LabelledFiles) -> np.ndarray:
    """A fold run's probabilities of its held-out images (image order), in ``files.classes`` order."""
    predictions = predict_run(run, "last")  # last, not best: best was chosen on these very labels
    columns = [predictions.classes.index(c) for c in files.classes]
    return softmax(predictions.logits)[:, columns]


def out_of_sample_probabilities(
    dataset: str,
    template: TrainConfig,
    *,
    folds: int = DEFAULT_FOLDS,
    work_dir: str | os.PathLike,
    runs_dir: Path | None = None,
    on_progress: FoldProgress | None = None,
    stop_event: threading.Event | None = None,
) -> LabelIssues:
    """Train ``folds`` runs of ``template``, each on ``dataset`` (as pinned when the check starts) with
    one fold held out, and collect every image's probabilities from the run that held it out. The runs
    go to the run store (``runs_dir``, default ``$CNNDASH_RUNS_DIR``), named ``…-fold<k>of<K>-…``, in
    the group named after ``work_dir``."""
    holder = owner_holder(f"label-check:{Path(work_dir).resolve()}")
    ref = pin_dataset(dataset, holder)
    try:
        files = ref_files(ref)
        check_folds(files, folds)
        root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(dataset).stem.split(":")[0]) or "data"
        probs = np.full((len(files), len(files.classes)), np.nan)
        group = f"label-check:{Path(work_dir).resolve().name}"  # the fold runs of one check, kept together
        settings = {**template.to_dict(), "dataset": dataset, "purpose": "fold", "group": group}
        runs = []
        for k in range(1, folds + 1):
            if stop_event is not None and stop_event.is_set():
                raise LabelIssuesStopped(
                    "Stopped after {done} of {folds} folds; start again to finish.", done=k - 1, folds=folds
                )
            config = TrainConfig.from_dict(settings)
            name = new_run_name(config.model, f"{stem}-fold{k}of{folds}", root)

            def forward(event: TrainEvent, k: int = k) -> None:
                if on_progress is not None:
                    on_progress(k, folds, event)

            view = ref.with_fold(k, folds, template.seed).to_dict()
            summary = train(config, root / name, on_event=forward, stop_event=stop_event, dataset_ref=view)
            if summary.get("status") == "stopped":
                raise LabelIssuesStopped(
                    "Stopped during fold {fold} of {folds}; start again to finish.", fold=k, folds=folds
                )
            probs[fold_split(files.labels, k, folds, template.seed)[1]] = _fold_probabilities(
                load_run(root / name), files
            )
            runs.append(name)
    finally:
        release(holder)
    return LabelIssues(dataset, files.classes, files.paths, np.asarray(files.labels), probs, runs)


def find_dataset_label_issues(
    dataset: str,
    template: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    folds: int = DEFAULT_FOLDS,
    runs_dir: Path | None = None,
    on_progress: FoldProgress | None = None,
    stop_event: threading.Event | None = None,
) -> LabelIssues:
    """What ``python -m cnndash find-label-issues`` does: K-fold probabilities, then ``label_issues.csv``
    and ``out_of_sample_probs.csv`` in ``out_dir`` (nothing else is written there)."""
    issues = out_of_sample_probabilities(
        dataset, template, folds=folds, work_dir=out_dir, runs_dir=runs_dir,
        on_progress=on_progress, stop_event=stop_event,
    )  # fmt: skip
    issues.write(out_dir)
    return issues


def read_label_issues(out_dir: str | os.PathLike, dataset: str = "") -> LabelIssues | None:
    """The :class:`LabelIssues` that :meth:`LabelIssues.write` left in ``out_dir`` (None if none)."""
    path = Path(out_dir) / PROBS_FILE
    if not path.is_file():
        return None
    probs = pd.read_csv(path, dtype={"path": str, "given": str})
    probs.columns = [_unescaped(c) for c in probs.columns]
    for column in ("path", "given"):
        probs[column] = probs[column].map(_unescaped)
    classes = [str(c) for c in probs.columns[2:]]
    given = np.array([classes.index(g) for g in probs["given"]], dtype=np.int64)
    return LabelIssues(dataset, classes, list(probs["path"]), given, probs[classes].to_numpy(), runs=[])


def _unescaped(text: str) -> str:
    """A cell as it was before :func:`cnndash.tables.spreadsheet_safe` (a ``'`` before a formula start)."""
    text = str(text)
    return text[1:] if text.startswith("'") and text[1:2] and text[1:2] in FORMULA_STARTS else text


# --------------------------------------------------------------------------------------------------
# One run's validation images


def val_paths(run: Run) -> list[str]:
    """Paths (relative to the dataset root — a version's images by their origin — built-in scheme for
    built-ins) of ``run``'s validation images in the order :func:`cnndash.evaluate.predict.predict_run`
    predicts them."""
    return run_val_paths(run.config, run.dataset_info)


def run_label_issues(run: Run | str | os.PathLike, checkpoint: str = "best") -> LabelIssues:
    """Label issues among ``run``'s validation images, from its own (out-of-sample) predictions."""
    run = run if isinstance(run, Run) else load_run(run)
    predictions = predict_run(run, checkpoint)
    return LabelIssues(
        dataset=str(run.config.get("dataset", "")),
        classes=list(predictions.classes),
        paths=val_paths(run),
        given=np.asarray(predictions.targets, dtype=np.int64),
        pred_probs=softmax(predictions.logits),
        runs=[run.name],
    )
