"""Every figure builder that draws class, file or run names draws them as text: no tag, entity-free LaTeX or
hover placeholder of a hostile name reaches Plotly's markup, and the seaborn PNG takes them as plain text."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from cnndash.plots import compare as plots_compare
from cnndash.plots import dataset as plots_data
from cnndash.plots import evaluation as plots_eval
from cnndash.plots import gradcam as plots_cam
from cnndash.plots import label_issues as plots_labels
from cnndash.plots import training as plots_train
from cnndash.text import plotly_text
from tests.fixtures import HOSTILE_CLASSES, HOSTILE_FILES, HOSTILE_RUN

K = len(HOSTILE_CLASSES)
RNG = np.random.default_rng(0)


def _drawn_strings(fig) -> list[str]:
    """Every string of the figure Plotly draws as text (customdata is data, not drawn)."""
    found: list[str] = []

    def walk(node, key=""):
        if key == "customdata":
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str):
            found.append(node)

    walk(json.loads(fig.to_json()))
    return found


def _confusion() -> pd.DataFrame:
    return pd.DataFrame(RNG.integers(0, 9, (K, K)), index=HOSTILE_CLASSES, columns=HOSTILE_CLASSES)


def _figures():
    per_class = pd.DataFrame(
        {f"{m}_{s}": RNG.random(K) for m in ("precision", "recall", "f1-score") for s in ("a", "b")},
        index=HOSTILE_CLASSES,
    )
    points = pd.DataFrame(
        {"x": RNG.random(K), "y": RNG.random(K), "path": [f"{c}/{HOSTILE_FILES[k % len(HOSTILE_FILES)]}.png" for k, c in enumerate(HOSTILE_CLASSES)],
         "given": HOSTILE_CLASSES, "score": RNG.random(K), "suspect": [k % 2 == 0 for k in range(K)]}
    )  # fmt: skip
    metrics = pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.6]})
    split = {"train": dict.fromkeys(HOSTILE_CLASSES, 3), "val": dict.fromkeys(HOSTILE_CLASSES, 1)}
    per_class_acc = pd.DataFrame({"class": HOSTILE_CLASSES, "accuracy": RNG.random(K)})
    return {
        "confusion": plots_eval.confusion_matrix_figure(_confusion(), title=HOSTILE_RUN),
        "per-class accuracy": plots_eval.per_class_accuracy_figure(per_class_acc, 0.5),
        "confusion change": plots_compare.confusion_change_figure(
            RNG.integers(-3, 3, (K, K)), HOSTILE_CLASSES, names=(HOSTILE_RUN, HOSTILE_CLASSES[0])
        ),
        "per-class change": plots_compare.per_class_change_figure(per_class, names=(HOSTILE_RUN, "b")),
        "class counts": plots_data.class_counts_figure(HOSTILE_CLASSES, split),
        "embedding": plots_labels.embedding_figure(points),
        "probabilities": plots_cam.probability_figure(HOSTILE_CLASSES, RNG.random(K), top=K),
        "compared runs": plots_train.compare_runs_figure({HOSTILE_RUN: metrics, "plain": metrics}),
    }


@pytest.mark.parametrize("name", sorted(_figures()))
def test_figures_draw_names_as_text(name):
    drawn = _drawn_strings(_figures()[name])
    # Only the figures' own markup is left (line breaks, the hover box's <extra></extra>), and no '$'.
    bare = [re.sub(r"<br>|</?extra>", "", s) for s in drawn]
    assert not [s for s in bare if "<" in s or ">" in s or "$" in s]
    assert any(plotly_text(n) in s for n in (*HOSTILE_CLASSES, HOSTILE_RUN) for s in drawn)  # shown, escaped


def test_embedding_selection_still_names_the_raw_paths():
    fig = _figures()["embedding"]
    paths = {row[0] for trace in fig.data for row in trace.customdata}
    assert any(p.startswith(HOSTILE_CLASSES[0]) for p in paths)  # customdata is the path itself


def test_confusion_png_renders_hostile_names():
    png = plots_eval.confusion_matrix_png(_confusion(), title=HOSTILE_RUN)  # '$' would raise in mathtext
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_epoch_axes_tick_whole_epochs_only():
    for last, step in [(1, 1), (2, 1), (10, 1), (11, 2), (20, 2), (21, 5), (50, 5), (51, 10), (300, 50)]:
        assert plots_train.epoch_axis(last)["dtick"] == step, last
    frames = {"a": pd.DataFrame({"epoch": [1, 2], "val_acc": [0.5, 0.6]})}
    for fig in (
        plots_train.compare_runs_figure(frames),
        plots_train.epoch_curves_figure(
            pd.DataFrame(
                {
                    "epoch": [1, 2],
                    **{c: [1.0, 0.5] for c in ("train_loss", "val_loss", "train_acc", "val_acc")},
                }
            )
        ),
        plots_eval.learning_curves_figure(
            pd.DataFrame(
                {
                    "epoch": [1, 2],
                    **{c: [1.0, 0.5] for c in ("train_loss", "val_loss", "train_acc", "val_acc")},
                }
            )
        ),
    ):
        axes = [v for k, v in fig.to_plotly_json()["layout"].items() if k.startswith("xaxis")]
        assert axes and all(a.get("dtick") == 1 and a.get("tickmode") == "linear" for a in axes)
