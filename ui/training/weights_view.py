"""Pretrained ImageNet weights on the Training page, without internet: which models have theirs installed, and
an uploader that imports a torchvision weights file downloaded on another machine through the engine's
:func:`cnndash.pretrained.import_weights` (its SHA-256 checked against the prefix in its name, its tensors
against the architecture; a wrong file is refused with nothing written).

Once ResNet-18's weights are installed, the one-click suggestion (:mod:`ui.training.auto_view`) fine-tunes
them for colour photos; the panel says so and what the transfer modes trade.
"""

from __future__ import annotations

import os
import tempfile

import streamlit as st

import ui
from cnndash.pretrained import (
    MAX_WEIGHTS_BYTES,
    MODELS_WITH_WEIGHTS,
    WeightsError,
    import_weights,
    published_name,
    weights_installed,
)
from cnndash.text import N_
from ui import i18n
from ui.engine_text import engine_text

_ = i18n.translator("training")

_DONE = "train-weights-done"  # (upload's file id, what the import said, imported): one try per uploaded file
TRANSFER_TEXT = N_(
    "**Fine-tuning is the default for colour photos** now that ResNet-18's ImageNet weights are installed: "
    "the suggestion trains pretrained ResNet-18 with *smaller LR for the backbone* (the new head learns at the "
    "full learning rate, the ImageNet features at a tenth, so they adapt without being overwritten in the "
    "first steps). *Freeze the backbone* trains the head only: faster, and enough when the photos look like "
    "ImageNet's; worse when they differ (textures, medical, drawings). *Train everything* at one learning "
    "rate can undo the pretraining in the first epochs."
)


def _import(upload) -> str:
    """Import the uploaded file (copied to a temporary file first: the engine reads a path); what it said."""
    if upload.size > MAX_WEIGHTS_BYTES:
        raise WeightsError(
            "The file is larger than {mb} MB; ImageNet weights for these models are far smaller. Is it the "
            "right file?",
            mb=MAX_WEIGHTS_BYTES // 2**20,
        )
    fd, tmp = tempfile.mkstemp(prefix="cnndash-weights-upload-", suffix=".pth")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(upload.getbuffer())
        return import_weights(tmp, name=upload.name).text()  # the upload's name is parsed, never a path
    finally:
        os.unlink(tmp)


def weights_panel() -> None:
    """The expander with each model's weights status, the uploader and, once installed, the transfer note."""
    installed = {model: weights_installed(model) for model in MODELS_WITH_WEIGHTS}
    with st.expander(_("Pretrained ImageNet weights"), icon=":material/download_for_offline:"):
        for model, present in installed.items():
            if present:
                st.markdown(":material/check_circle: " + _("**{model}**: installed", model=model))
            else:
                said = _(
                    "**{model}**: not installed — download {file} from torchvision on a machine with internet "
                    "and upload it here",
                    model=model,
                    file=ui.text(published_name(model)),
                )
                st.markdown(":material/radio_button_unchecked: " + said)
        upload = st.file_uploader(
            _("Import a torchvision weights file (.pth)"),
            type=["pth"],
            key="train-weights-upload",
            help=_(
                "The file as torchvision publishes it, named <model>-<hash>.pth: its SHA-256 must start with "
                "the hash in its name, and its tensors must fit the model. Nothing is stored otherwise."
            ),
        )
        done = st.session_state.get(_DONE)
        if upload is not None and (done is None or done[0] != upload.file_id):
            # Once per uploaded file, refused or not: a rerun does not hash 45 MB again.
            with st.spinner(_("Checking the file's hash and tensors…")):
                try:
                    done = (upload.file_id, _import(upload), True)
                except ValueError as exc:  # a wrong file: the engine says why, nothing was written
                    done = (upload.file_id, exc, False)  # kept whole: shown in the language of each rerun
            st.session_state[_DONE] = done
            if done[2]:
                st.rerun()  # the suggestion now sees the weights
        if done is not None and upload is not None and done[0] == upload.file_id:
            if done[2]:
                st.success(ui.text(engine_text(done[1])), icon=":material/check_circle:")
            else:
                st.error(ui.text(engine_text(done[1])), icon=":material/error:")
        if installed["resnet18"]:
            st.markdown(_(TRANSFER_TEXT))
