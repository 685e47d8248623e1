"""Training page: choose data, model and settings, train in the background, watch it live, manage runs."""

from __future__ import annotations

import json

import streamlit as st
from PIL import Image

import ui
from cnndash.augment import list_pipelines, load_pipeline
from cnndash.data import BUILTIN_DATASETS, list_datasets
from cnndash.device import DEVICE_CHOICES, max_processes
from cnndash.jobs.registry import Job, JobSnapshot, format_eta, get_registry
from cnndash.models import MODEL_DESCRIPTIONS, MODEL_NAMES, TRANSFER_MODES
from cnndash.plots import dataset as plots_data
from cnndash.plots import training as plots_train
from cnndash.runs import Run, RunError, list_runs, load_run
from cnndash.training.loops import TrainConfig
from cnndash.training.optim import OPTIMIZERS, SCHEDULES
from cnndash.training.preflight import Preflight, preflight, preview_batch
from ui import export_panel
from ui.training import runs_tab

ui.route_guard()

# Every setting starts at TrainConfig's default (the dataset at the first built-in).
DEFAULTS = TrainConfig(dataset=next(iter(BUILTIN_DATASETS)))
# The learning rate offered when the optimiser changes: TrainConfig's for the Adam family, a larger one
# for plain SGD with momentum.
SUGGESTED_LR = {"adam": DEFAULTS.lr, "adamw": DEFAULTS.lr, "sgd": 0.05}
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
POLL_SECONDS = 1.5
STOP_WAIT_SECONDS = 10  # a stop takes effect within one batch
PREVIEW_CELL = 72  # px per thumbnail of the augmented training batch
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
    st.session_state["train-lr"] = SUGGESTED_LR[st.session_state["train-optimizer"]]


def _data_and_model() -> tuple[str, str, str]:
    uploaded = list_datasets()
    datasets = [*BUILTIN_DATASETS, *uploaded]
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(
        "Dataset",
        datasets,
        format_func=lambda name: f"{name} (uploaded)" if name in uploaded else name,
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
    c1, c2, c3, c4 = st.columns(4)
    settings["val_fraction"] = c1.slider(
        "Validation fraction",
        min_value=0.05,
        max_value=0.5,
        step=0.05,
        **ui.keep("train-val-fraction", DEFAULTS.val_fraction),
    )
    settings["pretrained"] = c2.checkbox(
        "Pretrained ImageNet weights",
        help="resnet18 / mobilenet_v2, from the local torch cache",
        **ui.keep("train-pretrained", DEFAULTS.pretrained),
    )
    settings["transfer"] = c3.selectbox(
        "Transfer mode",
        TRANSFER_MODES,
        format_func=TRANSFER_LABELS.__getitem__,
        **ui.keep("train-transfer", DEFAULTS.transfer),
    )
    settings["scale_lr"] = c4.checkbox(
        "Scale the LR by the processes",
        help="The linear scaling rule: learning rate × processes. For when you also multiplied the batch "
        "size by the processes (each keeps the batch the LR was tuned for); a large LR usually wants "
        "warm-up too. Only with more than 1 process.",
        **ui.keep("train-scale-lr", DEFAULTS.scale_lr),
    )
    return settings


def _settings() -> tuple[TrainConfig, int]:
    """The form's run settings, and how many processes train it (1 = in the app's own process)."""
    dataset, model, pipeline = _data_and_model()
    settings = _optimisation()
    with st.expander("More settings"):
        settings |= _regularisation() | _input_and_device()
    settings["image_size"] = int(settings["image_size"]) or None
    processes = int(settings.pop("processes"))
    config = TrainConfig(
        dataset=dataset,
        model=model,
        augment=load_pipeline(pipeline) if pipeline != NO_PIPELINE else [],
        pipeline="" if pipeline == NO_PIPELINE else pipeline,
        **settings,
    )
    return config, processes


def _show_run_settings(job: Job) -> None:
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


@st.cache_data(show_spinner=False, max_entries=8)
def _preview(name: str, val_fraction: float, seed: int, stamp: int, spec_json: str, size: int) -> list:
    imageset = ui.load_dataset(name, val_fraction, seed)
    return preview_batch(imageset, json.loads(spec_json), size, seed=seed)


def _use_model(name: str) -> None:
    st.session_state["train-model"] = name


def _world_text(config: TrainConfig, processes: int) -> str:
    """How a run of several processes shares the work, in one sentence."""
    share, extra = divmod(config.batch_size, processes)
    shares = f"{share + 1} (the first {extra}) or {share}" if extra else f"{share}"
    lr = config.lr * processes if config.scale_lr else config.lr
    lr_text = f"LR {lr:g} (scaled × {processes})" if config.scale_lr else f"LR {lr:g}, not rescaled"
    return (
        f"**World size {processes}**: {processes} processes under torchrun; the global batch of "
        f"{config.batch_size} is split into {shares} images per process; {lr_text}."
    )


def _what_the_model_sees(config: TrainConfig, processes: int = 1) -> Preflight | None:
    """The resolution, channels and a training batch after augmentation, before Train; the reason the run
    cannot start, and warnings about settings that would train badly."""
    with ui.user_errors():
        imageset = ui.load_dataset(config.dataset, config.val_fraction, config.seed)
        pre = preflight(config, imageset)
        colour = "RGB, 3 channels" if pre.channels == 3 else "grayscale, 1 channel"
        with st.container(border=True):
            st.markdown(
                f"**The model will see {pre.image_size}×{pre.image_size} px · {colour}** — "
                f"{pre.size_reason}. {pre.n_train} training and {pre.n_val} validation images, "
                f"{pre.num_classes} classes."
            )
            if processes > 1:
                st.markdown(_world_text(config, processes))
            if pre.suggested_model != config.model:
                c1, c2 = st.columns([4, 1])
                c1.caption(f"Suggested model: **{pre.suggested_model}** — {pre.suggestion_reason}.")
                c2.button(
                    f"Use {pre.suggested_model}",
                    key="train-use-suggested",
                    on_click=_use_model,
                    args=(pre.suggested_model,),
                )
            if pre.ok:
                spec = json.dumps(config.augment, sort_keys=True)
                stamp = ui.dataset_stamp(config.dataset)
                images = _preview(
                    config.dataset, config.val_fraction, config.seed, stamp, spec, pre.image_size
                )
                sheet = plots_data.contact_sheet(
                    [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in images],
                    columns=len(images),
                    cell=PREVIEW_CELL,
                )
                what = "after augmentation" if config.augment else "(no augmentation)"
                st.image(sheet, caption=f"A training batch {what}, as the model gets it")
        for warning in pre.warnings:
            st.warning(warning, icon=":material/warning:")
        if not pre.ok:
            st.error(f"Train is disabled: {pre.error}", icon=":material/block:")
        return pre
    return None


def _charts(snap: JobSnapshot, run: Run | None, key: str) -> None:
    # The run's per-batch log covers the whole run, also the parts before a resume; the job's own points
    # only this part (and a run that failed before writing its folder has no log).
    points = (run.batch_log() if run is not None else None) or snap.batch_points
    if points:
        steps = snap.batches or points[-1].get("batches") or None
        st.plotly_chart(
            plots_train.batch_curves_figure(points, steps_per_epoch=steps),
            key=f"{key}-batch-chart",
        )
    metrics = run.metrics() if run is not None else None
    if metrics is None or not len(metrics):
        metrics = snap.epoch_rows
    if len(metrics):
        st.plotly_chart(plots_train.epoch_curves_figure(metrics), key=f"{key}-epoch-chart")


def _progress(snap: JobSnapshot, run: Run | None) -> None:
    st.progress(min(max(snap.fraction, 0.0), 1.0), text=snap.status_text())
    history = run.metrics() if run is not None else None  # every epoch, also those before a resume
    rows = history.to_dict("records") if history is not None and len(history) else snap.epoch_rows
    best = max((row["val_acc"] for row in rows), default=None)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Epoch", f"{snap.epoch}/{snap.epochs}" if snap.epochs else "—")
    c2.metric("Batch", f"{snap.batch}/{snap.batches}" if snap.batches else "—")
    c3.metric("Images/sec", f"{snap.images_per_sec:,.0f}")
    c4.metric("Learning rate", f"{snap.lr:.2e}" if snap.lr else "—")
    c5.metric(
        "Best val accuracy",
        f"{best:.1%}" if best is not None else "—",
        help=f"ETA {format_eta(snap.eta_seconds)}",
    )
    world = f" × {snap.world_size} processes (torchrun)" if snap.world_size > 1 else ""
    st.caption(
        f"Run `{snap.run_name}` on **{snap.device.upper()}**{world} — {snap.device_description or '…'} · "
        f"ETA {format_eta(snap.eta_seconds)}"
    )


@st.fragment(run_every=POLL_SECONDS)
def _live(run_name: str) -> None:
    """Redrawn every second while the run trains; a full rerun when it ends shows the results."""
    job = get_registry().get(run_name)
    if job is None:
        return
    snap = job.snapshot()
    run = _saved_run(job)
    st.subheader(f"Training `{run_name}`")
    _progress(snap, run)
    if not snap.batch_points:
        st.info("Preparing the data and the model…", icon=":material/hourglass_top:")
    if snap.start_fraction > 0:
        st.caption(
            f"Resumed after epoch {round(snap.start_fraction * snap.epochs)}: "
            "both charts cover the whole run."
        )
    _charts(snap, run, "live")  # metrics.csv holds every epoch, also those before a resume
    if not job.alive:
        st.rerun()


def _saved_run(job: Job) -> Run | None:
    """The job's run as saved on disk; None when it failed before writing its config."""
    try:
        return load_run(job.run_dir)
    except RunError:
        return None


def _ended_early(status: str, message: str, run: Run | None) -> None:
    """The stop or failure message, with the Resume button right there when the run can continue."""
    if status == "failed":
        st.error(message or "The run failed.", icon=":material/error:")
    elif status in ("stopped", "interrupted"):
        default = "Stopped by the user." if status == "stopped" else "Interrupted (the server stopped)."
        st.warning(message or default, icon=":material/stop_circle:")
    if (
        run is not None
        and run.resumable
        and get_registry().active() is None
        and st.button(
            "Resume this run",
            key="train-resume",
            type="primary",
            icon=":material/replay:",
            help="Continue from its last checkpoint; time and charts cover the whole run.",
        )
    ):
        runs_tab.resume(run)


def _results(snap: JobSnapshot | None, run: Run | None) -> None:
    """A run's outcome: from the job of this server process, or (after a restart) from the run store."""
    name = snap.run_name if snap is not None else run.name
    status = snap.status if snap is not None else run.status
    st.subheader(f"Run `{name}`")
    message = (snap.error if snap is not None else run.message) or ""
    _ended_early(status, message, run)
    summary = (snap.summary if snap is not None else None) or (run.summary if run else None)
    snap = snap or JobSnapshot(run_name=name, run_dir=run.path, device="", status=status)
    if summary:
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.metric("Best val accuracy", f"{summary['val_accuracy']:.1%}")
        c2.metric(
            "Best epoch", f"{summary['best_epoch']} of {summary['epochs']}" if summary["best_epoch"] else "—"
        )
        c3.metric("Images/sec", f"{summary['images_per_sec']:,.0f}")
        c4.metric("Time", f"{summary['seconds']:.1f} s")
        world = int(summary.get("world_size") or 1)
        c5.metric(
            "Device",
            summary["device"].upper() + (f" × {world}" if world > 1 else ""),
            help=(summary.get("device_description") or "")
            + (f" · world size {world} (torchrun processes)" if world > 1 else ""),
        )
        if summary.get("message") and status == "finished":
            st.info(summary["message"], icon=":material/info:")
    _charts(snap, run, "final")
    if run is not None and status == "failed" and (output := run.process_log()):
        with st.expander("Output of the processes (train.log)", icon=":material/terminal:"):
            st.code(output[-8000:], language=None)
    if run is not None and summary:
        _downloads_and_links(run)


def _downloads_and_links(run: Run) -> None:
    c1, c2, c3, c4 = st.columns(4)
    if run.has_checkpoint("best"):
        c1.download_button(
            "Checkpoint (best.pt)",
            run.checkpoint_path("best").read_bytes,  # read when clicked, not on every rerun
            file_name=f"{run.name}-best.pt",
            mime="application/octet-stream",
            key="train-download-checkpoint",
            icon=":material/download:",
        )
    history = run.metrics()
    if len(history):
        c2.download_button(
            "Metrics (CSV)",
            history.to_csv(index=False),
            file_name=f"{run.name}-metrics.csv",
            mime="text/csv",
            key="train-download-metrics",
            icon=":material/download:",
        )
    if c3.button("Evaluate this run", key="train-goto-evaluation", icon=":material/fact_check:"):
        st.session_state["eval-run"] = run.name
        st.switch_page(ui.PAGES["evaluation"])
    if c4.button("Grad-CAM for this run", key="train-goto-gradcam", icon=":material/visibility:"):
        st.session_state["gradcam-image"] = {"run": run.name, "index": 0}
        st.switch_page(ui.PAGES["gradcam"])
    with st.expander("Export: TorchScript, ONNX and predict.py", icon=":material/deployed_code:"):
        export_panel.render_export(run, key="train-export")


def _train_tab() -> None:
    st.caption(
        "Pick a dataset and a model and press **Train**: training runs in the background, so you can "
        "reload the page or open it in a second tab and still follow it. The defaults (digits + LeNet, "
        "10 epochs) train a ~98 % model in well under a minute on a CPU."
    )
    registry = get_registry()
    active = registry.active()
    if active is not None:
        _show_run_settings(active)
    config = pre = None
    processes = 1
    with ui.user_errors():
        config, processes = _settings()
    if config is not None:
        pre = _what_the_model_sees(config, processes)
    c1, c2, _ = st.columns([1, 1, 4])
    start = c1.button(
        "Train",
        key="train-start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=active is not None or pre is None or not pre.ok,
    )
    stop = c2.button("Stop", key="train-stop", icon=":material/stop:", disabled=active is None)
    if stop and active is not None:
        active.stop()
        active.wait(STOP_WAIT_SECONDS)
        st.rerun()  # redraw the buttons and show the stopped run's results
    if start and config is not None:
        with ui.user_errors():
            runs_tab.refuse_during_label_check()
            registry.start(config, processes=processes)
            st.rerun()  # redraw with Train disabled and the live view
    if active is not None:
        _live(active.run_name)
    elif (latest := registry.latest()) is not None:
        _results(latest.snapshot(), _saved_run(latest))
    elif runs := list_runs():  # a restarted server: the newest run on disk
        _results(None, runs[0])


def main() -> None:
    st.title("Training")
    train_tab, runs_tab_box = st.tabs(["Train", "Runs"])
    with train_tab:
        _train_tab()
    with runs_tab_box:
        runs_tab.render_runs_tab()


main()
