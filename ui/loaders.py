"""Cached loaders every page shares: one model per checkpoint, one dataset per revision and split, one
set of validation predictions per checkpoint and run data (read-only objects, shared by every session).

A dataset by name is cached under its revision (:func:`cnndash.data.dataset_revision`: it changes when the
upload is replaced or the version edited); a run's dataset under the content it pinned.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from cnndash import paths
from ui.background import engine
from ui.i18n import translator

if TYPE_CHECKING:
    from torch import nn

    from cnndash.data import ImageSet
    from cnndash.evaluate.metrics import Predictions
    from cnndash.runs import Run

_ = translator("common")


def image_types() -> list[str]:
    """What st.file_uploader accepts for a single image: the formats the datasets accept."""
    return [extension.lstrip(".") for extension in engine("data").IMAGE_EXTENSIONS]


# The caches draw no spinner of their own (its text would be fixed at import, in English); the wrappers
# show one in the person's language, which Streamlit draws only for a block that lasts over half a second.
@st.cache_resource(show_spinner=False, max_entries=4)
def _model(run_path: str, which: str, fingerprint: str) -> nn.Module:
    return engine("runs").load_run(run_path).load_model(which, device="cpu")


def load_model(run: Run, which: str = "best") -> nn.Module:
    """``run``'s trained model (eval mode, CPU), cached until its checkpoint's bytes change.

    Raises :class:`cnndash.runs.RunError` for a missing or unreadable checkpoint.
    """
    with st.spinner(_("Loading the model…")):
        return _model(str(run.path), which, run.fingerprint(which))


def dataset_stamp(name: str) -> str:
    """Changes whenever what ``name`` means changes (an upload replaced, a version edited): a cache-key part."""
    return engine("data").dataset_revision(name)


@st.cache_resource(show_spinner=False, max_entries=6)
def _dataset(name: str, val_fraction: float, seed: int, data_dir: str, stamp: str) -> ImageSet:
    return engine("data").load_dataset(name, data_dir=Path(data_dir), val_fraction=val_fraction, seed=seed)


def load_dataset(name: str, val_fraction: float | None = None, seed: int | None = None) -> ImageSet:
    """The dataset split as training splits it (same defaults), cached until the stored dataset changes."""
    defaults = engine("training.config").TrainConfig
    val_fraction = defaults.val_fraction if val_fraction is None else val_fraction
    seed = defaults.seed if seed is None else seed
    with st.spinner(_("Loading the dataset…")):
        return _dataset(name, float(val_fraction), int(seed), str(paths.data_dir()), dataset_stamp(name))


@st.cache_resource(show_spinner=False, max_entries=6)
def _run_data(data_key: str, split: str, data_dir: str) -> ImageSet:
    config, info = json.loads(split)
    return engine("data").load_run_dataset(config, info, data_dir=Path(data_dir))


def run_dataset(run: Run) -> ImageSet:
    """``run``'s dataset exactly as in its training (:func:`cnndash.data.load_run_dataset`: the content it
    pinned, its validation fraction and seed), cached by what it loads."""
    data = engine("data")
    val_fraction, seed = data.run_split(run.config)
    config = {"dataset": str(run.config["dataset"]), "val_fraction": val_fraction, "seed": seed}
    info = {"dataset_ref": run.dataset_info["dataset_ref"]} if run.dataset_info.get("dataset_ref") else {}
    data_key = data.run_data_key(config, info)
    with st.spinner(_("Loading the dataset…")):
        return _run_data(data_key, json.dumps([config, info], sort_keys=True), str(paths.data_dir()))


# --------------------------------------------------------------------------------------------------
# Predictions: one cache for every page (Evaluation, Grad-CAM, the Runs tab's comparison)

PREDICTIONS_KEPT = 16  # checkpoints whose predictions stay in memory (a few MB each at most)


class _PredictionCache:
    """Predictions by (run folder, checkpoint, checkpoint fingerprint), least recently used dropped.

    Not ``st.cache_data``: on a miss the caller's progress bar is drawn while the engine predicts, which a
    cached function would record and replay. The engine keeps its own copy on disk
    (:func:`cnndash.evaluate.predict.predict_run`), so a server restart costs a file read, not a pass.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str, str], Predictions] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> Predictions | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: tuple[str, str, str], value: Predictions) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


@st.cache_resource(show_spinner=False)
def _prediction_cache() -> _PredictionCache:
    return _PredictionCache(PREDICTIONS_KEPT)


def run_results_key(run: Run, checkpoint: str = "best") -> str:
    """The key of every cache of ``run``'s results (predictions, label issues, embeddings, CAM layers): its
    checkpoint's fingerprint and what its data loads (:func:`cnndash.data.run_data_key`: the dataset ref the
    run recorded, else the current revision of the dataset it names), so an edited or replaced dataset is
    never shown with results computed on other images."""
    return f"{run.fingerprint(checkpoint)}|{engine('data').run_data_key(run.config, run.dataset_info)}"


def predictions(run: Run, checkpoint: str = "best", *, progress: bool = True) -> Predictions:
    """``run``'s ``checkpoint`` on its own validation split, computed once per checkpoint for every page.

    On a miss, a progress bar (``progress=True``) or a spinner says what is being computed. Raises the
    engine's ``EvaluationError`` / ``DatasetError`` (``ValueError``) for a checkpoint that no longer fits.
    """
    key = (str(run.path), checkpoint, run_results_key(run, checkpoint))
    cache = _prediction_cache()
    cached = cache.get(key)
    if cached is not None:
        return cached
    predict_run = engine("evaluate.predict").predict_run
    if progress:
        bar = st.empty()

        def on_progress(done: int, total: int) -> None:
            text = _("Predicting the validation images… {done}/{total}", done=done, total=total)
            bar.progress(done / max(total, 1), text=text)

        result = predict_run(run, checkpoint, on_progress=on_progress)
        bar.empty()
    else:
        with st.spinner(_("Predicting the validation images…")):
            result = predict_run(run, checkpoint)
    cache.put(key, result)
    return result
