"""The Training page's settings form: data, model and pipeline, the optimisation row, and "More settings"
(regularisation, input size, seed, device, processes, split, transfer learning).

Every widget starts at :class:`TrainConfig`'s default and edits one of its fields (:data:`FORM_FIELDS`);
:func:`run_settings` reads the form into a ``TrainConfig`` and a process count, and
:func:`show_run_settings` puts an active run's settings into the form after a reload.
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.augment import list_pipelines, load_pipeline
from cnndash.data import BUILTIN_DATASETS, list_datasets
from cnndash.device import DEVICE_CHOICES, max_processes
from cnndash.jobs.registry import Job
from cnndash.models import MODEL_DESCRIPTIONS, MODEL_NAMES, TRANSFER_MODES
from cnndash.training.loops import TrainConfig
from cnndash.training.optim import OPTIMIZERS, SCHEDULES
from cnndash.training.preflight import suggested_lr

# Every setting starts at TrainConfig's default (the dataset at the first built-in).
DEFAULTS = TrainConfig(dataset=next(iter(BUILTIN_DATASETS)))
NO_PIPELINE = "(none)"
SCHEDULE_LABELS = {
    "onecycle": "one-cycle (warm up, then anneal)",
    "cosine": "cosine decay",
    "step": "step decay",
    "constant": "constant",
}
TRANSFER_LABELS = {
    "all": "train everything",
    "freeze": "freeze the backbone (train the head only)",
    "lower_lr": "smaller LR for the backbone",
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
PROCESSES_HELP = (
    "Train one run with this many processes (PyTorch's torchrun and DistributedDataParallel), launched "
    "as a subprocess: one per GPU on a machine with several GPUs; on the CPU to try it out. The batch size "
    "above is the global batch, split across the processes (each takes its share of every batch), so the "
    "updates are the same as with one process. The learning rate is not rescaled unless 'Scale the LR by "
    "the processes' is on. On the CPU the processes share the same cores and talk through gloo, so a small "
    "dataset trains no faster and usually slower than with 1 process (docs/distributed.md)."
)


def _reset_lr() -> None:
    st.session_state["train-lr"] = suggested_lr(st.session_state["train-optimizer"])


def _data_and_model() -> tuple[str, str, str]:
    uploaded = list_datasets()
    datasets = [*BUILTIN_DATASETS, *uploaded]
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(
        "Dataset",
        datasets,
        format_func=lambda name: f"{ui.plain(name)} (uploaded)" if name in uploaded else name,
        help="Built-ins, or datasets uploaded on the Data & augmentation page. "
        + " · ".join(f"{k}: {v}" for k, v in BUILTIN_DATASETS.items()),
        **ui.keep("train-dataset", DEFAULTS.dataset, options=datasets),
    )
    model = c2.selectbox(
        "Model",
        MODEL_NAMES,
        help=" · ".join(MODEL_DESCRIPTIONS.values()),
        **ui.keep("train-model", DEFAULTS.model),
    )
    pipelines = [NO_PIPELINE, *list_pipelines()]
    pipeline = c3.selectbox(
        "Augmentation pipeline",
        pipelines,
        format_func=ui.plain,
        help="Pipelines saved on the Data & augmentation page; applied to training images only.",
        **ui.keep("train-pipeline", NO_PIPELINE, options=pipelines),
    )
    return dataset, model, pipeline


def _optimisation() -> dict:
    c1, c2, c3, c4, c5 = st.columns(5)
    return {
        "epochs": c1.number_input(
            "Epochs", min_value=1, max_value=500, step=1, **ui.keep("train-epochs", DEFAULTS.epochs)
        ),
        "batch_size": c2.number_input(
            "Batch size",
            min_value=1,
            max_value=4096,
            step=8,
            **ui.keep("train-batch-size", DEFAULTS.batch_size),
        ),
        "optimizer": c3.selectbox(
            "Optimizer", OPTIMIZERS, on_change=_reset_lr, **ui.keep("train-optimizer", DEFAULTS.optimizer)
        ),
        "lr": c4.number_input(
            "Learning rate",
            min_value=1e-6,
            max_value=10.0,
            step=1e-4,
            format="%.5f",
            help="Peak LR for one-cycle, starting LR otherwise. Adam: ~0.001–0.003; SGD: ~0.01–0.1.",
            **ui.keep("train-lr", DEFAULTS.lr),
        ),
        "schedule": c5.selectbox(
            "LR schedule",
            SCHEDULES,
            format_func=SCHEDULE_LABELS.__getitem__,
            **ui.keep("train-schedule", DEFAULTS.schedule),
        ),
    }


def _regularisation() -> dict:
    c1, c2, c3, c4 = st.columns(4)
    return {
        "weight_decay": c1.number_input(
            "Weight decay",
            min_value=0.0,
            max_value=1.0,
            step=1e-4,
            format="%.5f",
            **ui.keep("train-weight-decay", DEFAULTS.weight_decay),
        ),
        "label_smoothing": c2.number_input(
            "Label smoothing",
            min_value=0.0,
            max_value=0.9,
            step=0.05,
            help="Targets become 1 − ε for the true class and ε/K spread over all classes: less over-"
            "confident models. The training loss then cannot reach 0 and can sit above the validation "
            "loss (which is plain cross-entropy).",
            **ui.keep("train-label-smoothing", DEFAULTS.label_smoothing),
        ),
        "grad_clip": c3.number_input(
            "Gradient clipping (max norm, 0 = off)",
            min_value=0.0,
            step=0.5,
            **ui.keep("train-grad-clip", DEFAULTS.grad_clip),
        ),
        "early_stopping": c4.number_input(
            "Early stopping patience (epochs, 0 = off)",
            min_value=0,
            step=1,
            **ui.keep("train-early-stopping", DEFAULTS.early_stopping),
        ),
    }


def _input_and_device() -> dict:
    """Warm-up, image size, seed, device and processes, in one row of five."""
    c1, c2, c3, c4, c5 = st.columns(5)
    settings = {
        "warmup_epochs": c1.number_input(
            "Warm-up epochs",
            min_value=0.0,
            step=0.5,
            help="Linear warm-up for cosine/step/constant; for one-cycle, the rising part's length.",
            **ui.keep("train-warmup", DEFAULTS.warmup_epochs),
        ),
        "image_size": c2.number_input(
            "Image size (0 = automatic)",
            min_value=0,
            max_value=512,
            step=4,
            **ui.keep("train-image-size", DEFAULTS.image_size or 0),
        ),
        "seed": c3.number_input("Seed", min_value=0, step=1, **ui.keep("train-seed", DEFAULTS.seed)),
        "device": c4.selectbox("Device", DEVICE_CHOICES, **ui.keep("train-device", DEFAULTS.device)),
    }
    most = max_processes(settings["device"])
    if st.session_state.get("train-processes", 1) > most:  # another device with fewer GPUs was chosen
        st.session_state["train-processes"] = most
    settings["processes"] = c5.number_input(
        "Processes",
        min_value=1,
        max_value=most,
        step=1,
        help=PROCESSES_HELP,
        **ui.keep("train-processes", 1),
    )
    return settings


def _split_and_transfer() -> dict:
    """Validation fraction, pretrained weights, transfer mode and LR scaling, in one row of four."""
    c1, c2, c3, c4 = st.columns(4)
    return {
        "val_fraction": c1.slider(
            "Validation fraction",
            min_value=0.05,
            max_value=0.5,
            step=0.05,
            **ui.keep("train-val-fraction", DEFAULTS.val_fraction),
        ),
        "pretrained": c2.checkbox(
            "Pretrained ImageNet weights",
            help="resnet18 / mobilenet_v2, from the local torch cache",
            **ui.keep("train-pretrained", DEFAULTS.pretrained),
        ),
        "transfer": c3.selectbox(
            "Transfer mode",
            TRANSFER_MODES,
            format_func=TRANSFER_LABELS.__getitem__,
            **ui.keep("train-transfer", DEFAULTS.transfer),
        ),
        "scale_lr": c4.checkbox(
            "Scale the LR by the processes",
            help="The linear scaling rule: learning rate × processes. For when you also multiplied the batch "
            "size by the processes (each keeps the batch the LR was tuned for); a large LR usually wants "
            "warm-up too. Only with more than 1 process.",
            **ui.keep("train-scale-lr", DEFAULTS.scale_lr),
        ),
    }


def run_settings() -> tuple[TrainConfig, int]:
    """The form's run settings, and how many processes train it (1 = in the app's own process)."""
    dataset, model, pipeline = _data_and_model()
    values = _optimisation()
    with st.expander("More settings"):
        values |= _regularisation() | _input_and_device() | _split_and_transfer()
    values["image_size"] = int(values["image_size"]) or None
    processes = int(values.pop("processes"))
    config = TrainConfig(
        dataset=dataset,
        model=model,
        augment=load_pipeline(pipeline) if pipeline != NO_PIPELINE else [],
        pipeline="" if pipeline == NO_PIPELINE else pipeline,
        **values,
    )
    return config, processes


def show_run_settings(job: Job) -> None:
    """Once per run and session: the form shows the settings of the run that trains (after a reload, or
    in a second tab), not the defaults."""
    if st.session_state.get("train-form-run") == job.run_name:
        return
    st.session_state["train-form-run"] = job.run_name
    config = job.config
    for key, name in FORM_FIELDS.items():
        value = getattr(config, name)
        st.session_state[key] = (value or 0) if name == "image_size" else value
    st.session_state["train-pipeline"] = config.pipeline or NO_PIPELINE
    st.session_state["train-processes"] = job.processes
