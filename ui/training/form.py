"""The Training page's settings form: data, model and pipeline, the optimisation row, and "More settings"
(regularisation, input size, seed, device, processes, split, transfer learning).

Every widget edits one of :class:`TrainConfig`'s fields (:data:`FORM_FIELDS`), starting at its default or,
for the model, size, batch, epochs and learning rate, at the one-click suggestion for the dataset
(:mod:`ui.training.auto_view`, the engine's choice);
the dataset and the pipeline are the workspace's choices (``ui.workspace``: chosen on the Data page, they
are chosen here). :func:`run_settings` reads the form into a ``TrainConfig`` and a process count; a setting
the engine refuses (``TrainConfig.validate``, ``check_processes``: the widgets repeat none of their ranges)
is shown next to its field and no config is returned, so Train stays off. While a run trains, :func:`show_run_settings` shows its
settings as a read-only view and :func:`end_run_view` brings the person's own values back when it ends:
a reload mid-run leaves nothing of the run's settings behind.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.augment import list_pipelines, load_pipeline
from cnndash.data import BUILTIN_DATASETS, list_datasets
from cnndash.device import DEVICE_CHOICES, resolve_device
from cnndash.jobs.registry import Job, check_processes
from cnndash.models import MODEL_DESCRIPTIONS, MODEL_NAMES, TRANSFER_MODES
from cnndash.text import N_
from cnndash.training.config import ConfigError
from cnndash.training.loops import TrainConfig
from cnndash.training.optim import OPTIMIZERS, SCHEDULES
from cnndash.training.preflight import suggested_lr
from ui import i18n
from ui.state import phrase_text
from ui.training import auto_view, weights_view

_ = i18n.translator("training")
_engine = i18n.translator("engine")

# Every setting starts at TrainConfig's default (the dataset at the first built-in).
DEFAULTS = TrainConfig(dataset=next(iter(BUILTIN_DATASETS)))
NO_PIPELINE = N_("(none)")  # a value of the pipeline choice, shown translated
SCHEDULE_LABELS = {
    "onecycle": N_("one-cycle (warm up, then anneal)"),
    "cosine": N_("cosine decay"),
    "step": N_("step decay"),
    "constant": N_("constant"),
}
TRANSFER_LABELS = {
    "all": N_("train everything"),
    "freeze": N_("freeze the backbone (train the head only)"),
    "lower_lr": N_("smaller LR for the backbone"),
}
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
# The fields above "More settings" (a refused value is shown under them; the others under the expander).
MAIN_FIELDS = frozenset(("dataset", "model", "epochs", "batch_size", "optimizer", "lr", "schedule"))
_FORM_KEYS = (*FORM_FIELDS, "train-pipeline", "train-processes")
_SHOWN = "train-form-run"  # the run whose settings the form shows
_OWN = "train-form-own"  # the person's own values, put aside while a run's are on show
PROCESSES_HELP = N_(
    "Train one run with this many processes (PyTorch's torchrun and DistributedDataParallel), launched "
    "as a subprocess: one per GPU on a machine with several GPUs; on the CPU to try it out. The batch size "
    "above is the global batch, split across the processes (each takes its share of every batch), so the "
    "updates are the same as with one process. The learning rate is not rescaled unless 'Scale the LR by "
    "the processes' is on. On the CPU the processes share the same cores and talk through gloo, so a small "
    "dataset trains no faster and usually slower than with 1 process (docs/distributed.md)."
)


def _reset_lr() -> None:
    st.session_state["train-lr"] = suggested_lr(st.session_state["train-optimizer"])


def _shown(options: list[str], key: str) -> list[str]:
    """``options``, plus the value a run's settings put in ``key`` when it is not among them."""
    value = st.session_state.get(key)
    return options if value in options or value is None else [*options, value]


def _chosen_spec(pipeline: str) -> list[dict]:
    """The spec of the chosen pipeline ([] for none, or one that cannot be read: the form reports it)."""
    if pipeline in ("", NO_PIPELINE):
        return []
    try:
        return load_pipeline(pipeline)
    except ValueError:
        return []


def _data_and_model(viewing: bool) -> tuple[str, str, str]:
    uploaded = list_datasets()
    datasets = [*BUILTIN_DATASETS, *uploaded]
    pipelines = [NO_PIPELINE, *list_pipelines()]
    if viewing:  # the run's dataset and pipeline on show; the workspace's choices stay as they are
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
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(
        _("Dataset"),
        datasets,
        format_func=lambda name: _("{name} (uploaded)", name=ui.plain(name)) if name in uploaded else name,
        help=_("Built-ins, or datasets uploaded on the Data & augmentation page.")
        + " "
        + " · ".join(f"{k}: {_engine(v)}" for k, v in BUILTIN_DATASETS.items()),
        **dataset_kwargs,
    )
    if not viewing:  # the settings nobody changed by hand follow the data (before their widgets are drawn)
        state = st.session_state
        auto_view.apply_suggestion(
            dataset,
            val_fraction=state.get("train-val-fraction", DEFAULTS.val_fraction),
            seed=state.get("train-seed", DEFAULTS.seed),
            device=state.get("train-device", DEFAULTS.device),
            augment=_chosen_spec(state.get("train-pipeline", NO_PIPELINE)),  # bound above: the choice
        )
    model = c2.selectbox(
        _("Model"),
        MODEL_NAMES,
        help=" · ".join(_engine(d) for d in MODEL_DESCRIPTIONS.values()),
        disabled=viewing,
        **ui.keep("train-model", DEFAULTS.model),
    )
    pipeline = c3.selectbox(
        _("Augmentation pipeline"),
        pipelines,
        format_func=lambda name: _(NO_PIPELINE) if name == NO_PIPELINE else ui.plain(name),
        help=_("Pipelines saved on the Data & augmentation page; applied to training images only."),
        **pipeline_kwargs,
    )
    return dataset, model, pipeline


# The number inputs below set no min_value / max_value: the engine's TrainConfig.validate owns the ranges,
# and a value outside them is shown next to its field with the range (a widget's own bounds would turn the
# field red and silently keep the old value).
def _optimisation(off: bool) -> dict:
    c1, c2, c3, c4, c5 = st.columns(5)
    return {
        "epochs": c1.number_input(
            _("Epochs"), step=1, disabled=off, **ui.keep("train-epochs", DEFAULTS.epochs)
        ),
        "batch_size": c2.number_input(
            _("Batch size"), step=8, disabled=off, **ui.keep("train-batch-size", DEFAULTS.batch_size)
        ),
        "optimizer": c3.selectbox(
            _("Optimizer"),
            OPTIMIZERS,
            on_change=_reset_lr,
            disabled=off,
            **ui.keep("train-optimizer", DEFAULTS.optimizer),
        ),
        "lr": c4.number_input(
            _("Learning rate"),
            step=1e-4,
            format="%.5f",
            help=_("Peak LR for one-cycle, starting LR otherwise. Adam: ~0.001–0.003; SGD: ~0.01–0.1."),
            disabled=off,
            **ui.keep("train-lr", DEFAULTS.lr),
        ),
        "schedule": c5.selectbox(
            _("LR schedule"),
            SCHEDULES,
            format_func=lambda schedule: _(SCHEDULE_LABELS[schedule]),
            disabled=off,
            **ui.keep("train-schedule", DEFAULTS.schedule),
        ),
    }


def _regularisation(off: bool) -> dict:
    c1, c2, c3, c4 = st.columns(4)
    return {
        "weight_decay": c1.number_input(
            _("Weight decay"),
            step=1e-4,
            format="%.5f",
            disabled=off,
            **ui.keep("train-weight-decay", DEFAULTS.weight_decay),
        ),
        "label_smoothing": c2.number_input(
            _("Label smoothing"),
            step=0.05,
            help=_(
                "Targets become 1 − ε for the true class and ε/K spread over all classes: less over-"
                "confident models. The training loss then cannot reach 0 and can sit above the validation "
                "loss (which is plain cross-entropy)."
            ),
            disabled=off,
            **ui.keep("train-label-smoothing", DEFAULTS.label_smoothing),
        ),
        "grad_clip": c3.number_input(
            _("Gradient clipping (max norm, 0 = off)"),
            step=0.5,
            disabled=off,
            **ui.keep("train-grad-clip", DEFAULTS.grad_clip),
        ),
        "early_stopping": c4.number_input(
            _("Early stopping patience (epochs, 0 = off)"),
            step=1,
            disabled=off,
            **ui.keep("train-early-stopping", DEFAULTS.early_stopping),
        ),
    }


def _input_and_device(off: bool) -> dict:
    """Warm-up, image size, seed, device and processes, in one row of five."""
    c1, c2, c3, c4, c5 = st.columns(5)
    settings = {
        "warmup_epochs": c1.number_input(
            _("Warm-up epochs"),
            step=0.5,
            help=_("Linear warm-up for cosine/step/constant; for one-cycle, the rising part's length."),
            disabled=off,
            **ui.keep("train-warmup", DEFAULTS.warmup_epochs),
        ),
        "image_size": c2.number_input(
            _("Image size (0 = automatic)"),
            step=4,
            disabled=off,
            **ui.keep("train-image-size", DEFAULTS.image_size or 0),
        ),
        "seed": c3.number_input(_("Seed"), step=1, disabled=off, **ui.keep("train-seed", DEFAULTS.seed)),
        "device": c4.selectbox(
            _("Device"), DEVICE_CHOICES, disabled=off, **ui.keep("train-device", DEFAULTS.device)
        ),
    }
    # More processes than the device has (another device was chosen) is the engine's refusal, shown with
    # its range, not a value quietly lowered behind the person's back.
    settings["processes"] = c5.number_input(
        _("Processes"),
        step=1,
        help=_(PROCESSES_HELP),
        disabled=off,
        **ui.keep("train-processes", 1),
    )
    return settings


def _split_and_transfer(off: bool) -> dict:
    """Validation fraction, pretrained weights, transfer mode and LR scaling, in one row of four."""
    c1, c2, c3, c4 = st.columns(4)
    return {
        "val_fraction": c1.slider(
            _("Validation fraction"),
            min_value=0.05,
            max_value=0.5,
            step=0.05,
            disabled=off,
            **ui.keep("train-val-fraction", DEFAULTS.val_fraction),
        ),
        "pretrained": c2.checkbox(
            _("Pretrained ImageNet weights"),
            help=_(
                "resnet18 / mobilenet_v2, from the local torch cache (import a downloaded file under "
                "'Pretrained ImageNet weights' below)"
            ),
            disabled=off,
            **ui.keep("train-pretrained", DEFAULTS.pretrained),
        ),
        "transfer": c3.selectbox(
            _("Transfer mode"),
            TRANSFER_MODES,
            format_func=lambda mode: _(TRANSFER_LABELS[mode]),
            disabled=off,
            **ui.keep("train-transfer", DEFAULTS.transfer),
        ),
        "scale_lr": c4.checkbox(
            _("Scale the LR by the processes"),
            help=_(
                "The linear scaling rule: learning rate × processes. For when you also multiplied the batch "
                "size by the processes (each keeps the batch the LR was tuned for); a large LR usually wants "
                "warm-up too. Only with more than 1 process."
            ),
            disabled=off,
            **ui.keep("train-scale-lr", DEFAULTS.scale_lr),
        ),
    }


def run_settings(viewing: bool = False) -> tuple[TrainConfig | None, int]:
    """The form's run settings, and how many processes train it (1 = in the app's own process).

    The config is None while a setting is one the engine refuses; the reason is shown next to the field
    (under its row, or under "More settings" for the fields inside it). ``viewing``: the form shows a
    run's settings (:func:`show_run_settings`), read-only.
    """
    dataset, model, pipeline = _data_and_model(viewing)
    values = _optimisation(viewing)
    slots = {"main": st.empty()}  # a refused value right under its row, above the suggestion's reasons
    if not viewing:
        auto_view.show_reasons()
    with st.expander(_("More settings")):
        values |= _regularisation(viewing) | _input_and_device(viewing) | _split_and_transfer(viewing)
    slots["more"] = st.empty()
    if not viewing:
        weights_view.weights_panel()
    values["image_size"] = int(values["image_size"]) or None
    processes = int(values.pop("processes"))
    config = TrainConfig(
        dataset=dataset,
        model=model,
        augment=load_pipeline(pipeline) if pipeline != NO_PIPELINE else [],
        pipeline="" if pipeline == NO_PIPELINE else pipeline,
        **values,
    )
    if viewing:
        return config, processes
    try:
        config.validate()
        check_processes(config, resolve_device(config.device).type, processes)
    except ConfigError as exc:
        slot = slots["main"] if exc.field in MAIN_FIELDS else slots["more"]
        where = "" if exc.field in MAIN_FIELDS else " " + _("(More settings)")
        slot.error(ui.text(phrase_text(exc.form_message, exc.domain)) + where, icon=":material/error:")
        return None, processes
    return config, processes


def show_run_settings(job: Job) -> None:
    """While ``job`` trains, the form shows its settings (after a reload, in a second tab) as a view: the
    person's own values are put aside once and come back with :func:`end_run_view`."""
    state = st.session_state
    if state.get(_SHOWN) == job.run_name:
        return
    if _SHOWN not in state:
        state[_OWN] = {key: state[key] for key in _FORM_KEYS if key in state}
    state[_SHOWN] = job.run_name
    config = job.config
    for key, name in FORM_FIELDS.items():
        value = getattr(config, name)
        if name == "image_size":
            value = value or 0
        elif isinstance(getattr(DEFAULTS, name), float):  # config.json may hold 0 for 0.0
            value = float(value)
        state[key] = value
    state["train-pipeline"] = config.pipeline or NO_PIPELINE
    state["train-processes"] = job.processes


def end_run_view() -> None:
    """No run trains: the form's own values again, so nothing of a viewed run's settings sticks."""
    state = st.session_state
    if state.pop(_SHOWN, None) is None:
        return
    own = state.pop(_OWN, {})
    for key in _FORM_KEYS:
        if key in own:
            state[key] = own[key]
        else:
            state.pop(key, None)  # the widget starts at its default, or the workspace's choice
