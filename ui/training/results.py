"""A finished, stopped or failed run on the Training page: why it ended early (with Resume right there),
its summary and curves, the processes' output when it failed, downloads, links to Evaluation and
Grad-CAM, and the export panel."""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.jobs.registry import JobSnapshot, get_registry
from cnndash.runs import Run
from cnndash.runs.files import read_status
from cnndash.runs.store import INTERRUPTED_LOST, INTERRUPTED_RESUMABLE
from cnndash.text import Phrase
from cnndash.training.health import NOTE_TEMPLATES
from cnndash.training.summary import MESSAGE_TEMPLATES
from ui import export_panel, i18n
from ui.engine_text import engine_text
from ui.training import runs_tab
from ui.training.charts import run_charts
from ui.training.live import device_words

_ = i18n.translator("training")


def stored_message(message: str, record: dict | None) -> str:
    """``message`` (why a run ended early, English as stored), escaped, in the reader's language when
    ``record`` (the run's ``summary.json`` or ``status.json``) keeps its template and numbers beside it
    (:func:`cnndash.training.summary.message_fields`); older runs keep their English."""
    record = record or {}
    template, params = record.get("message_template"), record.get("message_params")
    if template in MESSAGE_TEMPLATES and isinstance(params, dict) and record.get("message") == message:
        try:
            return ui.text(engine_text(Phrase(template, **params)))
        except (KeyError, IndexError, ValueError):  # numbers that do not fit the template: the English
            pass
    return ui.text(engine_text(message))  # a Phrase (a typed error, a store message) in the reader's language


def _interrupted(run: Run | None) -> str:
    if run is None:
        return _("Interrupted (the server stopped).")
    # The run store's own words for it (runs/store.py), in the reader's language.
    return ui.text(engine_text(Phrase(INTERRUPTED_RESUMABLE if run.resumable else INTERRUPTED_LOST)))


def _ended_early(status: str, message: str, run: Run | None, record: dict | None) -> None:
    """The stop or failure message, with the Resume button right there when the run can continue."""
    if status == "failed":
        st.error(
            stored_message(message, record) if message else _("The run failed."), icon=":material/error:"
        )
    elif status == "stopped":
        said = stored_message(message, record) if message else _("Stopped by the user.")
        st.warning(said, icon=":material/stop_circle:")
    elif status == "interrupted":
        st.warning(_interrupted(run), icon=":material/stop_circle:")
    if (
        run is not None
        and run.resumable
        and get_registry().active() is None
        and st.button(
            _("Resume this run"),
            key="train-resume",
            type="primary",
            icon=":material/replay:",
            help=_("Continue from its last checkpoint; time and charts cover the whole run."),
        )
    ):
        runs_tab.resume(run)


def _summary(summary: dict, status: str) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(_("Best val accuracy"), f"{summary['val_accuracy']:.1%}")
    c2.metric(
        _("Best epoch"),
        _("{best} of {epochs}", best=summary["best_epoch"], epochs=summary["epochs"])
        if summary["best_epoch"]
        else "—",
    )
    c3.metric(_("Images/sec"), f"{summary['images_per_sec']:,.0f}")
    c4.metric(_("Time"), f"{summary['seconds']:.1f} s")
    world = int(summary.get("world_size") or 1)
    c5.metric(
        _("Device"),
        summary["device"].upper() + (f" × {world}" if world > 1 else ""),
        help=device_words(summary.get("device_description") or "")
        + (" · " + _("world size {n} (torchrun processes)", n=world) if world > 1 else ""),
    )
    if summary.get("message") and status == "finished":
        st.info(stored_message(summary["message"], summary), icon=":material/info:")
    health = summary.get("health") or {}
    if health.get("note"):  # diverged or unstable (cnndash.training.health): the cause and the fix
        note = health["note"]
        if health.get("template") in NOTE_TEMPLATES and isinstance(health.get("params"), dict):
            note = Phrase(health["template"], **health["params"])  # its numbers, in the person's language
        st.warning(ui.text(engine_text(note)), icon=":material/ssid_chart:")


def results(snap: JobSnapshot | None, run: Run | None) -> None:
    """A run's outcome: from the job of this server process, or (after a restart) from the run store."""
    name = snap.run_name if snap is not None else run.name
    status = snap.status if snap is not None else run.status
    st.subheader(_("Run {run}", run=ui.text(name)), anchor=False)  # no #anchor made of a run's name
    message = (snap.error if snap is not None else run.message) or ""
    summary = (snap.summary if snap is not None else None) or (run.summary if run else None)
    # where the message's template is kept: the summary of a stopped run, status.json of a failed one
    record = summary if summary and summary.get("message") == message else None
    _ended_early(status, message, run, record or (read_status(run.path) if run is not None else None))
    snap = snap or JobSnapshot(run_name=name, run_dir=run.path, device="", status=status)
    if summary:
        _summary(summary, status)
    run_charts(snap, run, "final")
    if run is not None and status == "failed" and (output := run.process_log()):
        with st.expander(_("Output of the processes (train.log)"), icon=":material/terminal:"):
            st.code(output[-8000:], language=None)
    if run is not None and summary:
        _downloads_and_links(run)


def _downloads_and_links(run: Run) -> None:
    c1, c2, c3, c4 = st.columns(4)
    if run.has_checkpoint("best"):
        c1.download_button(
            _("Checkpoint (best.pt)"),
            run.checkpoint_path("best").read_bytes,  # read when clicked, not on every rerun
            file_name=f"{run.name}-best.pt",
            mime="application/octet-stream",
            key="train-download-checkpoint",
            icon=":material/download:",
        )
    history = run.metrics()
    if len(history):
        c2.download_button(
            _("Metrics (CSV)"),
            history.to_csv(index=False),
            file_name=f"{run.name}-metrics.csv",
            mime="text/csv",
            key="train-download-metrics",
            icon=":material/download:",
        )
    if c3.button(_("Evaluate this run"), key="train-goto-evaluation", icon=":material/fact_check:"):
        ui.workspace.put("run", run.name)
        st.switch_page(ui.PAGES["evaluation"])
    if c4.button(_("Grad-CAM for this run"), key="train-goto-gradcam", icon=":material/visibility:"):
        ui.workspace.put("run", run.name)
        st.session_state["gradcam-image"] = {"run": run.name, "index": 0}
        st.switch_page(ui.PAGES["gradcam"])
    with st.expander(_("Export: TorchScript, ONNX and predict.py"), icon=":material/deployed_code:"):
        export_panel.render_export(run, key="train-export")
