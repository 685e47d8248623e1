"""The Grad-CAM page's image choice: a validation image by index, one the run misclassifies, or an
upload, each turned into a :class:`~ui.gradcam.subject.Picture`; and the Evaluation page's hand-off
(its gallery's Grad-CAM button), which preselects a run and a validation image once.
"""

from __future__ import annotations

import streamlit as st
from PIL import Image

import ui
from cnndash.evaluate import metrics
from cnndash.plots import gradcam as plots_cam
from cnndash.preprocess import open_image
from cnndash.text import N_
from ui import i18n
from ui.gradcam.subject import Picture, Subject

_ = i18n.translator("gradcam")
SOURCES = [N_("Validation image"), N_("Misclassified"), N_("Upload")]


def apply_handoff(run_names: list[str]) -> None:
    """The Evaluation page sends {"run", "index"}: preselect that run and validation image once."""
    # Set by ui.evaluation.gallery.image_gallery's Grad-CAM button.
    handoff = st.session_state.pop("gradcam-image", None)
    if isinstance(handoff, dict) and handoff.get("run") in run_names:
        ui.workspace.put("run", handoff["run"])
        st.session_state["cam-source"] = SOURCES[0]
        st.session_state["cam-index"] = int(handoff.get("index", 0))


def _picture(
    subject: Subject, image: Image.Image, caption: str, true_label: int | None = None, shown: str = ""
) -> Picture:
    x = subject.run.preprocess([image])
    seen = plots_cam.model_view(image, subject.size, subject.run.in_channels)
    return Picture(image, caption, true_label, x, seen, shown=shown or ui.text(caption))


def _validation_image(subject: Subject) -> Picture:
    val = subject.dataset.val
    if st.session_state.get("cam-index", 0) >= len(val):  # a kept index from a larger dataset
        st.session_state["cam-index"] = 0
    index = st.number_input(
        _("Validation image index (0–{last})", last=len(val) - 1),
        min_value=0,
        max_value=len(val) - 1,
        step=1,
        **ui.keep("cam-index", 0),
    )
    image, label = val[int(index)]
    shown = _("validation #{index}", index=int(index))
    return _picture(subject, image, f"validation #{int(index)}", label, shown)


def _misclassified_image(subject: Subject) -> Picture | None:
    predictions = ui.predictions(subject.run, "best", progress=False)
    wrong = metrics.misclassified_indices(predictions)
    if not wrong:
        st.success(_("The run classifies every validation image correctly: nothing to show here."))
        return None
    classes, probs = subject.classes, predictions.probs

    def label(i: int) -> str:
        true, pred = predictions.targets[i], predictions.preds[i]
        return _(
            "#{i}: true {true}, predicted {pred} ({p:.0%})",
            i=i,
            true=ui.plain(classes[true]),
            pred=ui.plain(classes[pred]),
            p=probs[i, pred],
        )

    index = st.selectbox(
        _("Misclassified validation image ({n} in all)", n=len(wrong)),
        wrong,
        format_func=label,
        **ui.keep("cam-mistake", options=wrong),
    )
    image, true_label = subject.dataset.val[int(index)]
    return _picture(subject, image, f"validation #{index}", true_label, _("validation #{index}", index=index))


def _uploaded_image(subject: Subject) -> Picture | None:
    upload = st.file_uploader(_("Upload an image"), type=ui.image_types(), key="cam-upload")
    if upload is None:
        st.info(_("Upload an image to see where the model looks."), icon=":material/upload:")
        return None
    return _picture(subject, open_image(upload.getvalue(), upload.name), upload.name)


def choose_image(subject: Subject) -> Picture | None:
    """The image to explain, from the chosen source; None while there is none (no upload, no mistake)."""
    source = st.radio(
        _("Image"),
        SOURCES,
        format_func=_,
        horizontal=True,
        help=_("Misclassified lists the validation images the run gets wrong (as on the Evaluation page)."),
        **ui.keep("cam-source", SOURCES[0]),
    )
    if source == "Validation image":
        return _validation_image(subject)
    if source == "Misclassified":
        return _misclassified_image(subject)
    return _uploaded_image(subject)
