"""The Training form's first row — the dataset and the augmentation pipeline — drawn before PyTorch is
imported, and which settings the form shows: the person's own, or a training run's (read-only).

A first deep link to Training draws this row from the store's listings (:mod:`cnndash.data.names`,
:mod:`cnndash.augment.names`, no PyTorch: ``tests/test_first_paint.py`` keeps it so) while the engine loads
behind a spinner, and :mod:`ui.training.form` draws the rest. Nothing drawn here depends on the one-click
suggestion, so nothing here changes value once the suggestion comes: the model box between the two boxes
is drawn after it.

Which settings the form shows is settled before its first widget is drawn, because a drawn widget's value
cannot change in the same script run: :func:`show_run_settings` (a run started, or trains while the page
is opened) and :func:`end_run_view` (it ended) ask for the switch, and :func:`first_row` makes it at the
start of the next run. While a run's settings are on show, the person's own values are put aside and come
back when it ends: a reload mid-run leaves nothing of the run's settings behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

import ui
from cnndash.augment.names import list_pipelines
from cnndash.data.names import BUILTIN_DATASETS, names_now
from cnndash.text import N_
from cnndash.training.config import TrainConfig
from ui import i18n

if TYPE_CHECKING:  # for the type hint only: the registry imports PyTorch
    from cnndash.jobs.registry import AnyJob

_ = i18n.translator("training")
_engine = i18n.translator("engine")

# Every setting starts at TrainConfig's default (the dataset at the first built-in).
DEFAULTS = TrainConfig(dataset=next(iter(BUILTIN_DATASETS)))
NO_PIPELINE = N_("(none)")  # a value of the pipeline choice, shown translated
# The form's widgets and the TrainConfig field each one edits (also how an active run's settings are
# shown after a reload).
FORM_FIELDS = {
    "train-dataset": "dataset",
    "train-model": "model",
    "train-epochs": "epochs",
    "train-batch-size": "batch_size",
    "train-optimizer": "optimizer",
    "train-lr": "lr",
    "train-schedule": "schedule",
    "train-weight-decay": "weight_decay",
    "train-label-smoothing": "label_smoothing",
    "train-grad-clip": "grad_clip",
    "train-early-stopping": "early_stopping",
    "train-warmup": "warmup_epochs",
    "train-image-size": "image_size",
    "train-seed": "seed",
    "train-device": "device",
    "train-val-fraction": "val_fraction",
    "train-pretrained": "pretrained",
    "train-transfer": "transfer",
    "train-scale-lr": "scale_lr",
}
FORM_KEYS = (*FORM_FIELDS, "train-pipeline", "train-processes")
_SHOWN = "train-form-run"  # the run whose settings the form shows
_OWN = "train-form-own"  # the person's own values, put aside while a run's are on show
_NEXT = "train-form-next"  # the switch the next script run makes: (run, its values), or None for the own


@dataclass
class FormStart:
    """The first row as drawn: its three columns (dataset, model, pipeline), whether it shows a run's
    settings, and the dataset and pipeline chosen — None until :func:`data_choices` has drawn them."""

    columns: Any  # Streamlit's three column containers
    viewing: bool
    dataset: str | None = None
    pipeline: str | None = None


def run_values(config: TrainConfig, processes: int) -> dict[str, object]:
    """The form's widget values that show ``config`` trained with ``processes`` processes."""
    values: dict[str, object] = {}
    for key, name in FORM_FIELDS.items():
        value = getattr(config, name)
        if name == "image_size":
            value = value or 0
        elif isinstance(getattr(DEFAULTS, name), float):  # config.json may hold 0 for 0.0
            value = float(value)
        values[key] = value
    values["train-pipeline"] = config.pipeline or NO_PIPELINE
    values["train-processes"] = processes
    return values


def show_run_settings(job: AnyJob) -> bool:
    """Show ``job``'s settings in the form, read-only, from the next script run on (the person's own values
    put aside once); False when the form shows them already."""
    state = st.session_state
    if state.get(_SHOWN) == job.run_name and _NEXT not in state:
        return False
    state[_NEXT] = (job.run_name, run_values(job.config, job.processes))
    return True


def end_run_view() -> bool:
    """No run trains: the person's own values again from the next script run on; False when the form shows
    them already."""
    state = st.session_state
    if _SHOWN not in state and _NEXT not in state:
        return False
    state[_NEXT] = None
    return True


def _switch_view() -> None:
    """Make the switch :func:`show_run_settings` or :func:`end_run_view` asked for (before any widget)."""
    state = st.session_state
    if _NEXT not in state:
        return
    shown = state.pop(_NEXT)
    if shown is not None:
        if _SHOWN not in state:
            state[_OWN] = {key: state[key] for key in FORM_KEYS if key in state}
        state[_SHOWN] = shown[0]
        state.update(shown[1])
    elif state.pop(_SHOWN, None) is not None:
        own = state.pop(_OWN, {})
        for key in FORM_KEYS:
            if key in own:
                state[key] = own[key]
            else:
                state.pop(key, None)  # the widget starts at its default, or the workspace's choice


def _shown(options: list[str], key: str) -> list[str]:
    """``options``, plus the value a run's settings put in ``key`` when it is not among them."""
    value = st.session_state.get(key)
    return options if value in options or value is None else [*options, value]


def data_choices(start: FormStart, uploaded: list[str]) -> None:
    """Draw the dataset and pipeline boxes in ``start``'s first and last columns (``uploaded``: the stored
    datasets' names) and note what they hold in ``start``."""
    datasets = [*BUILTIN_DATASETS, *uploaded]
    pipelines = [NO_PIPELINE, *list_pipelines()]
    if start.viewing:  # the run's dataset and pipeline on show; the workspace's choices stay as they are
        datasets, pipelines = _shown(datasets, "train-dataset"), _shown(pipelines, "train-pipeline")
        dataset_kwargs = {"key": "train-dataset", "disabled": True}
        pipeline_kwargs = {"key": "train-pipeline", "disabled": True}
    else:
        dataset_kwargs = ui.workspace.bind(
            "dataset", "train-dataset", default=DEFAULTS.dataset, options=datasets
        )
        pipeline_kwargs = ui.workspace.bind(
            "pipeline",
            "train-pipeline",
            default=NO_PIPELINE,
            options=pipelines,
            convert=(lambda name: name or NO_PIPELINE, lambda shown: "" if shown == NO_PIPELINE else shown),
        )
    start.dataset = start.columns[0].selectbox(
        _("Dataset"),
        datasets,
        format_func=lambda name: _("{name} (uploaded)", name=ui.plain(name)) if name in uploaded else name,
        help=_("Built-ins, or datasets uploaded on the Data & augmentation page.")
        + " "
        + " · ".join(f"{k}: {_engine(v)}" for k, v in BUILTIN_DATASETS.items()),
        **dataset_kwargs,
    )
    start.pipeline = start.columns[2].selectbox(
        _("Augmentation pipeline"),
        pipelines,
        format_func=lambda name: _(NO_PIPELINE) if name == NO_PIPELINE else ui.plain(name),
        help=_("Pipelines saved on the Data & augmentation page; applied to training images only."),
        **pipeline_kwargs,
    )


def first_row() -> FormStart:
    """The form's first row, before the engine: the view switch asked for last run made, then the dataset
    and pipeline boxes when the store can list its datasets without PyTorch (almost always; not while
    ``datasets/`` holds a folder the store has not adopted yet: :func:`cnndash.data.names.names_now`)."""
    _switch_view()
    start = FormStart(columns=st.columns(3), viewing=_SHOWN in st.session_state)
    if (uploaded := names_now()) is not None:
        data_choices(start, uploaded)
    return start
