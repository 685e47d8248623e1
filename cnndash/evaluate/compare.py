"""Two runs compared: accuracy, confusion-matrix difference and per-class change, from their predictions.

Pure functions of two :class:`cnndash.evaluate.metrics.Predictions` (each run's best checkpoint on *its own*
validation split, from :func:`cnndash.evaluate.predict.predict_run`), so the numbers are tested without a model.
Run A is the reference, B the challenger: every difference is B − A.

Also the Runs tab's other pure parts: the hyperparameter columns of the runs table (:func:`runs_table`)
and the pair of runs compared by default (:func:`default_pair`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cnndash.errors import UserError
from cnndash.evaluate.metrics import Normalize, Predictions, classification_report_frame, confusion_matrix
from cnndash.runs import Run
from cnndash.text import N_

PER_CLASS_METRICS = ("precision", "recall", "f1-score")


class CompareError(UserError):
    """Two runs that cannot be compared class by class (different class sets, no images)."""


@dataclass(frozen=True)
class RunComparison:
    """Run A against run B on the same classes (in A's order); differences are B − A."""

    classes: list[str]
    accuracy_a: float
    accuracy_b: float
    images_a: int  # validation images of each run (they differ when the datasets differ)
    images_b: int
    confusion_a: np.ndarray  # (K, K) counts, rows = true class, columns = predicted
    confusion_b: np.ndarray
    per_class: pd.DataFrame  # one row per class: <metric>_a, <metric>_b, <metric>_change, support_a/_b

    @property
    def accuracy_change(self) -> float:
        return self.accuracy_b - self.accuracy_a

    def confusion_change(self, normalize: Normalize = None) -> np.ndarray:
        """B's confusion matrix minus A's: counts, or fractions of each true class (``"true"``: a
        difference of recall on the diagonal) or of each predicted class (``"pred"``). Fractions compare
        validation sets of different sizes; counts only make sense on the same images."""
        return _normalized(self.confusion_b, normalize) - _normalized(self.confusion_a, normalize)


def _normalized(cm: np.ndarray, normalize: Normalize) -> np.ndarray:
    if normalize is None:
        return cm.astype(np.int64)
    axis = 1 if normalize == "true" else 0
    totals = cm.sum(axis=axis, keepdims=True).astype(np.float64)
    return np.where(totals > 0, cm / np.where(totals > 0, totals, 1), 0.0)


def _in_order(predictions: Predictions, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(targets, predicted labels) of ``predictions`` as indices into ``classes``."""
    mapping = np.array([classes.index(c) for c in predictions.classes], dtype=np.int64)
    return mapping[predictions.targets], mapping[predictions.preds]


def compare_predictions(
    a: Predictions, b: Predictions, *, names: tuple[str, str] = ("A", "B")
) -> RunComparison:
    """Compare run A's predictions with run B's (each on its own validation split).

    Both must have the same set of classes; B's are put in A's order when the order differs. Raises
    :class:`CompareError` naming the classes only one run has, or a run without validation images.
    """
    classes = [str(c) for c in a.classes]
    only_a = [c for c in classes if c not in b.classes]
    only_b = [str(c) for c in b.classes if c not in classes]
    if only_a or only_b or len(set(classes)) != len(classes):
        raise CompareError(
            "Runs {names_0} and {names_1} were trained on different classes (only in {names_0}: {only_a}; "
            "only in {names_1}: {only_b}), so their confusion matrices cannot be compared cell by cell. "
            "Pick two runs with the same classes (a merge or rename of classes changes them).",
            names_0=repr(names[0]),
            names_1=repr(names[1]),
            only_a=", ".join(only_a) or "—",
            only_b=", ".join(only_b) or "—",
        )
    for name, pred in zip(names, (a, b), strict=True):
        if len(pred) == 0:
            raise CompareError(
                "Run {name} has no validation images to compare; train it with a validation split.",
                name=repr(name),
            )
    true_a, pred_a = _in_order(a, classes)
    true_b, pred_b = _in_order(b, classes)
    report_a = classification_report_frame(true_a, pred_a, classes).loc[classes]
    report_b = classification_report_frame(true_b, pred_b, classes).loc[classes]
    per_class = pd.DataFrame(index=pd.Index(classes, name="class"))
    for metric in PER_CLASS_METRICS:
        per_class[f"{metric}_a"] = report_a[metric]
        per_class[f"{metric}_b"] = report_b[metric]
        per_class[f"{metric}_change"] = report_b[metric] - report_a[metric]
    per_class["support_a"] = report_a["support"]
    per_class["support_b"] = report_b["support"]
    k = len(classes)
    return RunComparison(
        classes=classes,
        accuracy_a=float((true_a == pred_a).mean()),
        accuracy_b=float((true_b == pred_b).mean()),
        images_a=len(true_a),
        images_b=len(true_b),
        confusion_a=confusion_matrix(true_a, pred_a, k),
        confusion_b=confusion_matrix(true_b, pred_b, k),
        per_class=per_class,
    )


# --------------------------------------------------------------------------------------------------
# The runs table and the default pair


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


RUN_COLUMNS = [
    N_("run"), N_("status"), N_("model"), N_("dataset"), N_("val accuracy"), "LR", N_("batch size"),
    N_("pipeline"), N_("image size"), N_("world size"), N_("best epoch"), N_("epochs"), N_("images/sec"),
    N_("seconds"), N_("device"),
]  # fmt: skip
# A run's status as the Runs table shows it (the page translates it).
RUN_STATUSES = {
    "starting": N_("starting"), "running": N_("running"), "finished": N_("finished"), "stopped": N_("stopped"),
    "failed": N_("failed"), "interrupted": N_("interrupted"),
}  # fmt: skip


def run_row(run: Run) -> dict:
    """One row of the Runs table: results and the hyperparameters TensorBoard's HPARAMS tab shows.
    A value the run does not record (an older run, a failed one) is ``None``, shown blank."""
    config, summary, info = run.config, run.summary or {}, run.dataset_info
    image_size = summary.get("image_size") or info.get("image_size") or config.get("image_size")
    pipeline = config.get("pipeline") or ("custom" if config.get("augment") else "(none)" if config else None)
    return {
        "run": run.name,
        "status": run.status,
        "model": config.get("model"),
        "dataset": config.get("dataset"),
        "val accuracy": _number(summary.get("val_accuracy")),
        "LR": _number(config.get("lr")),
        "batch size": _number(config.get("batch_size")),
        "pipeline": pipeline,
        "image size": _number(image_size),
        "world size": _number(summary.get("world_size")),
        "best epoch": _number(summary.get("best_epoch")),
        "epochs": _number(summary.get("epochs")),
        "images/sec": _number(summary.get("images_per_sec")),
        "seconds": _number(summary.get("seconds")),
        "device": summary.get("device"),
    }


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """The Runs table, one row per run (newest first, as given); missing values are blank (NaN/None)."""
    return pd.DataFrame([run_row(run) for run in runs], columns=RUN_COLUMNS)


def _same_settings(a: Run, b: Run) -> bool:
    """Same training config apart from the dataset (what "Retrain on the edited version" starts)."""
    strip = ("dataset", "threads", "device")
    return {k: v for k, v in a.config.items() if k not in strip} == {
        k: v for k, v in b.config.items() if k not in strip
    }


def default_pair(runs: Sequence[Run], parent_of: Callable[[str], str | None]) -> tuple[str, str] | None:
    """The runs compared by default, as (A, B) names: when the newest run trained on a dataset version
    (``parent_of(dataset)`` names the dataset it was made from) and an older run trained on that parent,
    A is that run (the same settings preferred) and B the newest; otherwise the two newest runs with the
    same number of classes, the older as A. ``runs`` is newest first and holds only comparable runs
    (with a best checkpoint). None when no two runs qualify."""
    if len(runs) < 2:
        return None
    newest = runs[0]
    parent = parent_of(str(newest.config.get("dataset", "")))
    if parent is not None:
        trained_on_parent = [r for r in runs[1:] if str(r.config.get("dataset")) == parent]
        best = next((r for r in trained_on_parent if _same_settings(r, newest)), None)
        best = best or next(iter(trained_on_parent), None)
        if best is not None:
            return best.name, newest.name
    for i, b in enumerate(runs):
        for a in runs[i + 1 :]:
            if len(a.classes) == len(b.classes) and a.classes:
                return a.name, b.name
    return None
