"""Grad-CAM page: where a trained model looks, per class, per method and per layer.

Flow (``main``): pick a run (:class:`ui.gradcam.subject.Subject`: its model, dataset and CAM layers), pick
an image (:mod:`ui.gradcam.images`), set the controls, then the main view (:mod:`ui.gradcam.views`) and
one "Explore" view (:mod:`ui.gradcam.explore`).
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.explain import cam
from cnndash.runs import Run, list_runs
from ui import i18n
from ui.gradcam import explore, images, views
from ui.gradcam.subject import load_subject

ui.route_guard()
_ = i18n.translator("gradcam")


def _usable_runs() -> list[Run]:
    return [run for run in list_runs(include_hidden=False) if run.has_checkpoint("best")]


def _no_runs() -> None:
    st.info(
        _("No trained run with a checkpoint yet. Train one on the **Training** page, then come back."),
        icon=":material/info:",
    )
    st.page_link(ui.PAGES["training"], label=_("Go to Training"), icon=":material/model_training:")


def main() -> None:
    st.title(_("Grad-CAM"))
    st.caption(
        _(
            "Pick a trained run and an image: the map shows which regions raised the score of the chosen "
            "class at the chosen layer. Red = strong evidence for the class, blue = none."
        )
    )
    runs = {run.name: run for run in _usable_runs()}
    if not runs:
        _no_runs()
        return
    images.apply_handoff(list(runs))
    run_col, image_col = st.columns([2, 3])
    names = list(
        runs
    )  # the workspace's run when it has a checkpoint (a run still in its first epoch has none)
    run_name = run_col.selectbox(
        _("Run"),
        names,
        format_func=ui.plain,
        **ui.workspace.bind("run", "cam-run", default=names[0], options=runs),
    )
    subject = load_subject(runs[run_name])
    with image_col:
        picture = images.choose_image(subject)
    if picture is None:
        return
    probs = cam.predict_probabilities(subject.model, picture.x)[0]
    settings = views.controls(subject, picture, int(probs.argmax()))
    views.main_view(subject, picture, probs, settings)
    st.divider()
    view = st.radio(
        _("Explore"),
        explore.VIEWS,
        format_func=_,
        horizontal=True,
        **ui.keep("cam-explore", explore.VIEWS[0]),
    )
    explore.EXPLORE[view](subject, picture, settings)


with ui.user_errors():
    main()
