"""The Evaluation page's image gallery: validation images with their most probable classes, a Grad-CAM
button (the hand-off to the Grad-CAM page) and the Data view's label actions under each image. The
confusion matrix's cell and the top losses show their images with it.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import ui
from cnndash.data import ImageSet
from cnndash.evaluate import metrics
from cnndash.plots import evaluation as plots_eval
from cnndash.runs import Run
from ui import i18n
from ui.evaluation import data_view

_ = i18n.translator("evaluation")

THUMB = 96  # gallery thumbnail side in pixels
GALLERY_COLUMNS = 6
GALLERY_TOP = 3  # class probabilities listed under each gallery image


def image_gallery(
    run: Run, dataset: ImageSet, predictions: metrics.Predictions, indices, captions, key: str
) -> None:
    """The validation images ``indices`` with their ``captions``; ``key`` prefixes the widget keys."""
    probs = predictions.probs
    cols = st.columns(GALLERY_COLUMNS)
    for n, (index, caption) in enumerate(zip(indices, captions, strict=True)):
        index = int(index)
        with cols[n % GALLERY_COLUMNS]:
            image, _label = dataset.val[index]
            st.image(plots_eval.thumbnail(image, THUMB), caption=caption)
            top = np.argsort(-probs[index])[:GALLERY_TOP]
            st.caption(
                " · ".join(
                    _("{cls} {p:.0%}", cls=ui.text(predictions.classes[c]), p=probs[index, c]) for c in top
                )
            )
            if st.button(_("Grad-CAM"), key=f"{key}-gradcam-{index}", icon=":material/visibility:"):
                # The Grad-CAM page pops this key (ui.gradcam.images.apply_handoff).
                st.session_state["gradcam-image"] = {"run": run.name, "index": index}
                st.switch_page(ui.PAGES["gradcam"])
            predicted = predictions.classes[int(predictions.preds[index])]
            data_view.render_label_actions(run, index, predicted, key=f"{key}-label-{index}")
