"""Export panel for a finished run: pick formats, build the bundle with progress, download one zip.

``render_export(run)`` is drawn by the Training page (results and the Runs tab). The bundle is built by
:func:`cnndash.export.bundle.export_run` into the run's ``export/`` folder, so it survives reruns and can be
downloaded again without rebuilding; the model card (``model.json``) is shown next to the download.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

import ui
from cnndash.export import bundle as export
from cnndash.runs import Run
from cnndash.text import N_

_ = ui.i18n.translator("common")
engine_text = ui.i18n.translator("engine")  # the bundle's progress steps are engine text (N_ there)
FORMAT_LABELS = {
    "torchscript": N_("TorchScript (model.torchscript.pt)"),
    "onnx": N_("ONNX (model.onnx)"),
    "onnx-int8": N_("ONNX int8, quantised (model.int8.onnx)"),
}


def bundle_dir(run: Run) -> Path:
    return run.export_dir


def _key(prefix: str, run: Run, what: str) -> str:
    return f"{prefix}-{what}-{run.name}"


def _read_card(folder: Path) -> dict | None:
    try:
        card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _build(run: Run, formats: list[str], checkpoint: str) -> None:
    bar = st.progress(0.0, text=_("Exporting…"))

    def progress(text: str, fraction: float) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=engine_text(text))

    with ui.user_errors():
        export.export_run(run, bundle_dir(run), formats, checkpoint=checkpoint, on_progress=progress)
        st.toast(_("Bundle built and checked."), icon=":material/check_circle:")
    bar.empty()


def _card_summary(card: dict) -> None:
    """The facts a user checks before shipping, and the float vs int8 comparison."""
    size = card.get("input_size", ["?", "?"])
    accuracy = card.get("val_accuracy")
    c1, c2, c3 = st.columns(3)
    c1.metric(_("Model"), str(card.get("model")))
    c2.metric(_("Input"), f"{card.get('channels')}×{size[0]}×{size[1]}")
    c3.metric(_("Validation accuracy"), "—" if accuracy is None else f"{accuracy:.1%}")
    classes = ", ".join(ui.text(c) for c in card.get("classes", []))
    st.caption(_("Classes in output order: {classes}", classes=classes))
    parity = card.get("parity") or {}
    if parity:
        worst = f"{max(parity.values()):.1e}"
        st.caption(
            _(
                "Checked at export: every file agrees with the trained model within {worst} in probability.",
                worst=worst,
            )
        )
    variants = card.get("variants") or {}
    rows = [
        {
            _("variant"): name,
            _("size (KiB)"): info["bytes"] / 1024,
            _("val accuracy"): info.get("val_accuracy"),
        }
        for name, info in variants.items()
        if isinstance(info, dict) and "bytes" in info
    ]
    if rows:
        st.dataframe(
            rows,
            hide_index=True,
            column_config={
                _("size (KiB)"): st.column_config.NumberColumn(format="%.0f"),
                _("val accuracy"): st.column_config.NumberColumn(format="percent"),
            },
        )


def render_export(run: Run, checkpoint: str = "best", *, key: str = "export") -> None:
    """Export ``run``: formats, a Build button with progress, the zip download and the model card.

    ``key`` prefixes every widget key (``{key}-formats-{run}``, ``{key}-build-{run}``,
    ``{key}-download-{run}``), so two places on one page can each show an export panel.
    """
    if not run.has_checkpoint(checkpoint):
        st.info(
            _(
                "Run '{run}' has no {checkpoint} checkpoint to export yet.",
                run=ui.text(run.name),
                checkpoint=ui.text(checkpoint),
            ),
            icon=":material/info:",
        )
        return
    formats = st.multiselect(
        _("Formats"),
        list(export.FORMATS),
        format_func=lambda f: _(FORMAT_LABELS[f]),
        help=_("predict.py, README.md and model.json are always included. int8 needs ONNX."),
        **ui.keep(_key(key, run, "formats"), list(export.DEFAULT_FORMATS)),
    )
    if st.button(_("Build bundle"), key=_key(key, run, "build"), icon=":material/deployed_code:"):
        _build(run, list(formats), checkpoint)
    folder = bundle_dir(run)
    card = _read_card(folder)
    if card is None:
        st.caption(
            _("Build the bundle to download it: model files, predict.py (Pillow + NumPy + onnxruntime).")
        )
        return
    st.download_button(
        _("Download bundle (.zip)"),
        export.bundle_zip(folder, f"{run.name}-bundle"),
        file_name=f"{run.name}-bundle.zip",
        mime="application/zip",
        key=_key(key, run, "download"),
        icon=":material/download:",
    )
    _card_summary(card)
    with st.expander(_("Model card (model.json)")):
        st.json(card, expanded=False)
