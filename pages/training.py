"""Training page: choose data, model and settings, train in the background, watch it live, manage runs."""

from __future__ import annotations

import streamlit as st

import ui
from cnndash import plots_train
from cnndash.augment import list_pipelines, load_pipeline
from cnndash.data import BUILTIN_DATASETS, list_datasets
from cnndash.device import DEVICE_CHOICES
from cnndash.jobs import Job, JobSnapshot, format_eta, get_registry
from cnndash.models import MODEL_DESCRIPTIONS, MODEL_NAMES, TRANSFER_MODES
from cnndash.optim import OPTIMIZERS, SCHEDULES
from cnndash.runs import Run, delete_run, list_runs, load_run
from cnndash.train import TrainConfig

DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05}
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


def _reset_lr() -> None:
    st.session_state["train-lr"] = DEFAULT_LR[st.session_state["train-optimizer"]]


def _settings() -> TrainConfig:
    uploaded = list_datasets()
    datasets = [*BUILTIN_DATASETS, *uploaded]
    c1, c2, c3 = st.columns(3)
    dataset = c1.selectbox(
        "Dataset",
        datasets,
        key="train-dataset",
        format_func=lambda name: f"{name} (uploaded)" if name in uploaded else name,
        help="Built-ins, or datasets uploaded on the Data & augmentation page. "
        + " · ".join(f"{k}: {v}" for k, v in BUILTIN_DATASETS.items()),
    )
    model = c2.selectbox(
        "Model", MODEL_NAMES, key="train-model", help=" · ".join(MODEL_DESCRIPTIONS.values())
    )
    pipelines = [NO_PIPELINE, *list_pipelines()]
    pipeline = c3.selectbox(
        "Augmentation pipeline",
        pipelines,
        key="train-pipeline",
        help="Pipelines saved on the Data & augmentation page; applied to training images only.",
    )

    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Epochs", min_value=1, max_value=500, value=10, step=1, key="train-epochs")
    batch_size = c2.number_input(
        "Batch size", min_value=1, max_value=4096, value=32, step=8, key="train-batch-size"
    )
    optimizer = c3.selectbox("Optimizer", OPTIMIZERS, key="train-optimizer", on_change=_reset_lr)
    lr = c4.number_input(
        "Learning rate",
        min_value=1e-6,
        max_value=10.0,
        value=DEFAULT_LR["adam"],
        step=1e-4,
        format="%.5f",
        key="train-lr",
        help="Peak LR for one-cycle, starting LR otherwise. Adam: ~0.001–0.003; SGD: ~0.01–0.1.",
    )
    schedule = c5.selectbox(
        "LR schedule", SCHEDULES, key="train-schedule", format_func=SCHEDULE_LABELS.__getitem__
    )

    with st.expander("More settings"):
        c1, c2, c3, c4 = st.columns(4)
        weight_decay = c1.number_input(
            "Weight decay", min_value=0.0, max_value=1.0, value=0.0, step=1e-4, format="%.5f",
            key="train-weight-decay",
        )  # fmt: skip
        label_smoothing = c2.number_input(
            "Label smoothing",
            min_value=0.0,
            max_value=0.9,
            value=0.1,
            step=0.05,
            key="train-label-smoothing",
            help="Targets become 1 − ε for the true class and ε/K spread over all classes: less over-"
            "confident models. The training loss then cannot reach 0 and can sit above the validation "
            "loss (which is plain cross-entropy).",
        )
        grad_clip = c3.number_input(
            "Gradient clipping (max norm, 0 = off)", min_value=0.0, value=0.0, step=0.5, key="train-grad-clip"
        )
        early_stopping = c4.number_input(
            "Early stopping patience (epochs, 0 = off)",
            min_value=0,
            value=0,
            step=1,
            key="train-early-stopping",
        )
        c1, c2, c3, c4 = st.columns(4)
        warmup = c1.number_input(
            "Warm-up epochs", min_value=0.0, value=0.0, step=0.5, key="train-warmup",
            help="Linear warm-up for cosine/step/constant; for one-cycle, the rising part's length.",
        )  # fmt: skip
        image_size = c2.number_input(
            "Image size (0 = automatic)", min_value=0, max_value=512, value=0, step=4, key="train-image-size"
        )
        seed = c3.number_input("Seed", min_value=0, value=0, step=1, key="train-seed")
        device = c4.selectbox("Device", DEVICE_CHOICES, key="train-device")
        c1, c2, c3 = st.columns(3)
        val_fraction = c1.slider(
            "Validation fraction",
            min_value=0.05,
            max_value=0.5,
            value=0.2,
            step=0.05,
            key="train-val-fraction",
        )
        pretrained = c2.checkbox(
            "Pretrained ImageNet weights",
            key="train-pretrained",
            help="resnet18 / mobilenet_v2, from the local torch cache",
        )
        transfer = c3.selectbox(
            "Transfer mode", TRANSFER_MODES, key="train-transfer", format_func=TRANSFER_LABELS.__getitem__
        )

    augment = load_pipeline(pipeline) if pipeline != NO_PIPELINE else []
    return TrainConfig(
        dataset=dataset,
        model=model,
        epochs=int(epochs),
        device=device,
        seed=int(seed),
        batch_size=int(batch_size),
        lr=float(lr),
        optimizer=optimizer,
        weight_decay=float(weight_decay),
        label_smoothing=float(label_smoothing),
        schedule=schedule,
        warmup_epochs=float(warmup),
        grad_clip=float(grad_clip),
        early_stopping=int(early_stopping),
        image_size=int(image_size) or None,
        val_fraction=float(val_fraction),
        augment=augment,
        pipeline="" if pipeline == NO_PIPELINE else pipeline,
        pretrained=bool(pretrained),
        transfer=transfer,
    )


def _charts(snap: JobSnapshot, run: Run | None, key: str) -> None:
    if snap.batch_points:
        st.plotly_chart(
            plots_train.batch_curves_figure(snap.batch_points, steps_per_epoch=snap.batches or None),
            key=f"{key}-batch-chart",
        )
    metrics = run.metrics() if run is not None else None
    if metrics is None or not len(metrics):
        metrics = snap.epoch_rows
    if len(metrics):
        st.plotly_chart(plots_train.epoch_curves_figure(metrics), key=f"{key}-epoch-chart")


def _progress(snap: JobSnapshot, job: Job) -> None:
    st.progress(min(max(snap.fraction, 0.0), 1.0), text=job.status_text())
    best = max((row["val_acc"] for row in snap.epoch_rows), default=None)
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
    st.caption(
        f"Run `{snap.run_name}` on **{snap.device.upper()}** — {snap.device_description or '…'} · ETA {format_eta(snap.eta_seconds)}"
    )


@st.fragment(run_every=POLL_SECONDS)
def _live(run_name: str) -> None:
    """Redrawn every second while the run trains; a full rerun when it ends shows the results."""
    job = get_registry().get(run_name)
    if job is None:
        return
    snap = job.snapshot()
    st.subheader(f"Training `{run_name}`")
    _progress(snap, job)
    if not snap.batch_points:
        st.info("Preparing the data and the model…", icon=":material/hourglass_top:")
    _charts(snap, None, "live")
    if not job.alive:
        st.rerun()


def _results(job: Job) -> None:
    snap = job.snapshot()
    st.subheader(f"Run `{job.run_name}`")
    if snap.status == "failed":
        st.error(snap.error or "The run failed.", icon=":material/error:")
    run = None
    if (job.run_dir / "config.json").is_file():
        run = load_run(job.run_dir)
    summary = snap.summary or (run.summary if run else None)
    if snap.status == "stopped":
        st.warning(snap.error or "Stopped by the user.", icon=":material/stop_circle:")
    if summary:
        c1, c2, c3, c4, c5 = st.columns(5)
        c1.metric("Best val accuracy", f"{summary['val_accuracy']:.1%}")
        c2.metric(
            "Best epoch", f"{summary['best_epoch']} of {summary['epochs']}" if summary["best_epoch"] else "—"
        )
        c3.metric("Images/sec", f"{summary['images_per_sec']:,.0f}")
        c4.metric("Time", f"{summary['seconds']:.1f} s")
        c5.metric("Device", summary["device"].upper(), help=summary.get("device_description"))
        if summary.get("message") and snap.status == "finished":
            st.info(summary["message"], icon=":material/info:")
    _charts(snap, run, "final")
    if run is not None and summary:
        _downloads_and_links(run)


def _downloads_and_links(run: Run) -> None:
    c1, c2, c3, c4 = st.columns(4)
    best = run.path / "best.pt"
    if best.is_file():
        c1.download_button(
            "Checkpoint (best.pt)", best.read_bytes(), file_name=f"{run.name}-best.pt",
            mime="application/octet-stream", key="train-download-checkpoint", icon=":material/download:",
        )  # fmt: skip
    metrics_csv = run.path / "metrics.csv"
    if metrics_csv.is_file():
        c2.download_button(
            "Metrics (CSV)", metrics_csv.read_bytes(), file_name=f"{run.name}-metrics.csv", mime="text/csv",
            key="train-download-metrics", icon=":material/download:",
        )  # fmt: skip
    if c3.button("Evaluate this run", key="train-goto-evaluation", icon=":material/fact_check:"):
        st.session_state["eval-run"] = run.name
        st.switch_page(ui.PAGES["evaluation"])
    if c4.button("Grad-CAM for this run", key="train-goto-gradcam", icon=":material/visibility:"):
        st.session_state["gradcam-image"] = {"run": run.name, "index": 0}
        st.switch_page(ui.PAGES["gradcam"])


def _train_tab() -> None:
    st.caption(
        "Pick a dataset and a model and press **Train**: training runs in the background, so you can "
        "reload the page or open it in a second tab and still follow it. The defaults (digits + LeNet, "
        "10 epochs) train a ~98 % model in well under a minute on a CPU."
    )
    config = None
    with ui.user_errors():
        config = _settings()
    registry = get_registry()
    active = registry.active()
    c1, c2, _ = st.columns([1, 1, 4])
    start = c1.button(
        "Train",
        key="train-start",
        type="primary",
        icon=":material/play_arrow:",
        disabled=active is not None or config is None,
    )
    stop = c2.button("Stop", key="train-stop", icon=":material/stop:", disabled=active is None)
    if stop and active is not None:
        active.stop()
        active.wait(10)  # stops within one batch
        st.rerun()  # redraw the buttons and show the stopped run's results
    if start and config is not None:
        with ui.user_errors():
            registry.start(config)
            st.rerun()  # redraw with Train disabled and the live view
    if active is not None:
        _live(active.run_name)
    elif (latest := registry.latest()) is not None:
        _results(latest)


def _runs_tab() -> None:
    runs = list_runs()
    if not runs:
        st.info("No runs yet: train one in the **Train** tab.", icon=":material/info:")
        return
    rows = []
    for run in runs:
        summary = run.summary or {}
        rows.append(
            {
                "run": run.name,
                "status": run.status,
                "model": run.config.get("model"),
                "dataset": run.config.get("dataset"),
                "val accuracy": summary.get("val_accuracy"),
                "best epoch": summary.get("best_epoch"),
                "epochs": summary.get("epochs"),
                "images/sec": summary.get("images_per_sec"),
                "seconds": summary.get("seconds"),
                "device": summary.get("device"),
            }
        )
    st.dataframe(
        rows,
        key="runs-table",
        hide_index=True,
        column_config={
            "val accuracy": st.column_config.ProgressColumn(
                "val accuracy", min_value=0.0, max_value=1.0, format="percent"
            ),
            "images/sec": st.column_config.NumberColumn(format="%.0f"),
            "seconds": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    names = [run.name for run in runs]
    by_name = {run.name: run for run in runs}
    c1, c2 = st.columns([3, 1])
    chosen = c1.multiselect("Compare runs", names, default=names[: min(3, len(names))], key="runs-compare")
    metric = c2.selectbox(
        "Metric",
        list(plots_train.METRIC_LABELS),
        key="runs-metric",
        format_func=plots_train.METRIC_LABELS.get,
    )
    if chosen:
        curves = {name: by_name[name].metrics() for name in chosen}
        st.plotly_chart(plots_train.compare_runs_figure(curves, metric), key="runs-compare-chart")

    st.divider()
    c1, c2, c3 = st.columns([3, 1, 1])
    target = c1.selectbox("Run", names, key="runs-target")
    resumable = (
        by_name[target].status in ("stopped", "failed") and (by_name[target].path / "last.pt").is_file()
    )
    if c2.button("Resume", key="runs-resume", disabled=not resumable, icon=":material/replay:",
                 help="Continue a stopped or failed run from its last checkpoint."):  # fmt: skip
        with ui.user_errors():
            config = TrainConfig.from_dict(by_name[target].config)
            get_registry().start(config, run_name=target, runs_dir=by_name[target].path.parent, resume=True)
            st.rerun()
    confirm = c3.checkbox("Really delete", key="runs-delete-confirm")
    if st.button("Delete run", key="runs-delete", disabled=not confirm, icon=":material/delete:"):
        with ui.user_errors():
            delete_run(by_name[target].path)
            st.session_state.pop("runs-delete-confirm", None)
            st.toast(f"Deleted {target}")
            st.rerun()


st.title("Training")
train_tab, runs_tab = st.tabs(["Train", "Runs"])
with train_tab:
    _train_tab()
with runs_tab:
    _runs_tab()
