"""The Training page's live view of the run that trains: a progress bar, epoch, batch, speed, LR and
best accuracy, and the curves, redrawn by a fragment every :data:`POLL_SECONDS` until the run ends."""

from __future__ import annotations

import re

import streamlit as st

import ui
from cnndash.jobs.registry import Job, JobSnapshot, format_eta, get_registry
from cnndash.runs import Run, RunError, load_run
from ui import i18n
from ui.training.charts import run_charts

_ = i18n.translator("training")
_engine = i18n.translator("engine")
POLL_SECONDS = 1.5


# How cnndash.device describes a CPU (a GPU's description is its name and memory, the same in any language).
_CPU_WORDS = re.compile(r"(\d+) threads? · no GPU detected")


def device_words(description: str) -> str:
    """A run's device description (as its summary recorded it), in the reader's language, as Markdown."""
    if cpu := _CPU_WORDS.fullmatch(description):
        n = int(cpu[1])
        return _.plural("{n} thread · no GPU detected", "{n} threads · no GPU detected", n, n=n)
    return ui.text(description)


def saved_run(job: Job) -> Run | None:
    """The job's run as saved on disk; None when it failed before writing its config."""
    try:
        return load_run(job.run_dir)
    except RunError:
        return None


def _progress(snap: JobSnapshot, run: Run | None) -> None:
    st.progress(
        min(max(snap.fraction, 0.0), 1.0),
        text=_engine(snap.status_template()[0], **snap.status_template()[1]),
    )
    history = run.metrics() if run is not None else None  # every epoch, also those before a resume
    rows = history.to_dict("records") if history is not None and len(history) else snap.epoch_rows
    best = max((row["val_acc"] for row in rows), default=None)
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(_("Epoch"), f"{snap.epoch}/{snap.epochs}" if snap.epochs else "—")
    c2.metric(_("Batch"), f"{snap.batch}/{snap.batches}" if snap.batches else "—")
    c3.metric(_("Images/sec"), f"{snap.images_per_sec:,.0f}")
    c4.metric(_("Learning rate"), f"{snap.lr:.2e}" if snap.lr else "—")
    c5.metric(
        _("Best val accuracy"),
        f"{best:.1%}" if best is not None else "—",
        help=_("ETA {eta}", eta=format_eta(snap.eta_seconds)),
    )
    world = " " + _("× {n} processes (torchrun)", n=snap.world_size) if snap.world_size > 1 else ""
    st.caption(
        _("Run **{run}** on **{device}**{world} — {description} · ETA {eta}", run=ui.text(snap.run_name),
          device=ui.text(snap.device.upper()), world=world, description=device_words(snap.device_description or "…"),
          eta=format_eta(snap.eta_seconds))
    )  # fmt: skip


@st.fragment(run_every=POLL_SECONDS)
def live(run_name: str) -> None:
    """Redrawn every second while the run trains; a full rerun when it ends shows the results."""
    job = get_registry().get(run_name)
    if job is None:
        return
    snap = job.snapshot()
    run = saved_run(job)
    st.subheader(_("Training {run}", run=ui.text(run_name)), anchor=False)  # no #anchor made of a run's name
    _progress(snap, run)
    if not snap.batch_points:
        st.info(_("Preparing the data and the model…"), icon=":material/hourglass_top:")
    if snap.start_fraction > 0:
        st.caption(
            _(
                "Resumed after epoch {epoch}: both charts cover the whole run.",
                epoch=round(snap.start_fraction * snap.epochs),
            )
        )

    run_charts(snap, run, "live")  # metrics.csv holds every epoch, also those before a resume
    if not job.alive:
        st.rerun()
