"""The Training page's settings form: data, model and pipeline, the optimisation row, and "More settings"
(regularisation, input size, seed, device, processes, split, transfer learning).

Every widget edits one of :class:`TrainConfig`'s fields (:data:`ui.training.form_start.FORM_FIELDS`),
starting at its default or, for the model, size, batch, epochs and learning rate, at the one-click suggestion
for the dataset (:mod:`ui.training.auto_view`, the engine's choice); the dataset and the pipeline are the
workspace's choices (``ui.workspace``: chosen on the Data page, they are chosen here), drawn before the
engine is imported by :mod:`ui.training.form_start`, which also decides whether the form shows the person's
own values or, read-only, those of the run training now. :func:`run_settings` reads the form into a
``TrainConfig`` and a process count; a setting the engine refuses (``TrainConfig.validate``,
``check_processes``: the widgets repeat none of their ranges) is shown next to its field and no config is
returned, so Train stays off.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.augment.store import load_pipeline
from cnndash.data.store import list_datasets
from cnndash.device import DEVICE_CHOICES, resolve_device
from cnndash.jobs.registry import check_processes
from cnndash.text import N_
from cnndash.training.choices import MODEL_DESCRIPTIONS, MODEL_NAMES, OPTIMIZERS, SCHEDULES, TRANSFER_MODES
from cnndash.training.config import ConfigError, TrainConfig
from cnndash.training.preflight import suggested_lr
from ui import i18n
from ui.state import phrase_text
from ui.training import auto_view, weights_view
from ui.training.form_start import DEFAULTS, NO_PIPELINE, FormStart, data_choices

_ = i18n.translator("training")
_engine = i18n.translator("engine")

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
# The fields above "More settings" (a refused value is shown under them; the others under the expander).
MAIN_FIELDS = frozenset(("dataset", "model", "epochs", "batch_size", "optimizer", "lr", "schedule"))
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


def _chosen_spec(pipeline: str) -> list[dict]:
    """The spec of the chosen pipeline ([] for none, or one that cannot be read: the form reports it)."""
    if pipeline in ("", NO_PIPELINE):
        return []
    try:
        return load_pipeline(pipeline)
    except ValueError:
        return []


def _data_and_model(start: FormStart) -> tuple[str, str, str]:
    """The first row: the dataset and pipeline (drawn now when :func:`form_start.first_row` could not list
    the datasets without the engine), the suggestion for them, then the model box between them."""
    if start.dataset is None:
        data_choices(start, list_datasets())
    dataset, pipeline, viewing = start.dataset, start.pipeline, start.viewing
    if not viewing:  # the settings nobody changed by hand follow the data (before their widgets are drawn)
        state = st.session_state
        auto_view.apply_suggestion(
            dataset,
            val_fraction=state.get("train-val-fraction", DEFAULTS.val_fraction),
            seed=state.get("train-seed", DEFAULTS.seed),
            device=state.get("train-device", DEFAULTS.device),
            augment=_chosen_spec(state.get("train-pipeline", NO_PIPELINE)),  # bound above: the choice
        )
    model = start.columns[1].selectbox(
        _("Model"),
        MODEL_NAMES,
        help=" · ".join(_engine(d) for d in MODEL_DESCRIPTIONS.values()),
        disabled=viewing,
        **ui.keep("train-model", DEFAULTS.model),
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


def run_settings(start: FormStart) -> tuple[TrainConfig | None, int]:
    """The form's run settings, and how many processes train it (1 = in the app's own process).

    The config is None while a setting is one the engine refuses; the reason is shown next to the field
    (under its row, or under "More settings" for the fields inside it). ``start``: the first row as
    :func:`form_start.first_row` drew it; while it shows a run's settings the form is read-only.
    """
    viewing = start.viewing
    dataset, model, pipeline = _data_and_model(start)
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
