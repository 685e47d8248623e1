"""What the model will see, shown under the Training page's form before Train: the resolution and
channels (and why), how several processes share the work, a suggested model, a training batch after
augmentation, the warnings, and the reason Train is disabled. The checks are the engine's
(:mod:`cnndash.training.preflight`); this module draws them."""

from __future__ import annotations

import json

import streamlit as st
from PIL import Image

import ui
from cnndash.plots import dataset as plots_data
from cnndash.training.loops import TrainConfig
from cnndash.training.preflight import Preflight, preflight, preview_batch, process_share
from ui import i18n
from ui.engine_text import engine_text
from ui.training import auto_view

_ = i18n.translator("training")
_engine = i18n.translator("engine")

PREVIEW_CELL = 72  # px per thumbnail of the augmented training batch


@st.cache_data(show_spinner=False, max_entries=8)
def _preview(name: str, val_fraction: float, seed: int, stamp: int, spec_json: str, size: int) -> list:
    imageset = ui.load_dataset(name, val_fraction, seed)
    return preview_batch(imageset, json.loads(spec_json), size, seed=seed)


def _use_model(name: str) -> None:
    st.session_state["train-model"] = name


def _world_text(config: TrainConfig, processes: int) -> str:
    """How a run of several processes shares the work, in one sentence."""
    share = process_share(config, processes)
    per, extra = share.per_process, share.extra
    shares = (
        _("{more} (the first {extra}) or {per}", more=per + 1, extra=extra, per=per) if extra else f"{per}"
    )
    lr_text = (
        _("LR {lr:g} (scaled × {processes})", lr=share.lr, processes=processes)
        if share.lr_scaled
        else _("LR {lr:g}, not rescaled", lr=share.lr)
    )
    return _(
        "**World size {processes}**: {processes} processes under torchrun; the global batch of "
        "{batch} is split into {shares} images per process; {lr_text}.",
        processes=processes,
        batch=config.batch_size,
        shares=shares,
        lr_text=lr_text,
    )


def _batch_strip(config: TrainConfig, pre: Preflight) -> None:
    """A training batch after augmentation, at the size the model gets it."""
    spec = json.dumps(config.augment, sort_keys=True)
    stamp = ui.dataset_stamp(config.dataset)
    images = _preview(config.dataset, config.val_fraction, config.seed, stamp, spec, pre.image_size)
    sheet = plots_data.contact_sheet(
        [Image.fromarray(a.squeeze(-1) if a.shape[-1] == 1 else a) for a in images],
        columns=len(images),
        cell=PREVIEW_CELL,
    )
    caption = (
        _("A training batch after augmentation, as the model gets it")
        if config.augment
        else _("A training batch (no augmentation), as the model gets it")
    )
    st.image(sheet, caption=caption)


def what_the_model_sees(config: TrainConfig, processes: int = 1) -> Preflight | None:
    """The resolution, channels and a training batch after augmentation, before Train; the reason the run
    cannot start, and warnings about settings that would train badly."""
    with ui.user_errors():
        imageset = ui.load_dataset(config.dataset, config.val_fraction, config.seed)
        pre = preflight(config, imageset)
        colour = _("RGB, 3 channels") if pre.channels == 3 else _("grayscale, 1 channel")
        suggested = auto_view.current(config.dataset)
        size_reason = pre.size_reason
        if suggested is not None and config.image_size == suggested.config.image_size:
            size_reason = suggested.reasons.get("image_size", size_reason)  # not "set by hand": suggested
        with st.container(border=True):
            st.markdown(
                _("**The model will see {side}×{side} px · {colour}**", side=pre.image_size, colour=colour)
                + " — "
                + _("{reason}. {train} and {val}, {classes}.", reason=ui.text(engine_text(size_reason)),
                    train=_.plural("{n:,} training image", "{n:,} training images", pre.n_train, n=pre.n_train),
                    val=_.plural("{n:,} validation image", "{n:,} validation images", pre.n_val, n=pre.n_val),
                    classes=_.plural("{n:,} class", "{n:,} classes", pre.num_classes, n=pre.num_classes))
            )  # fmt: skip
            if processes > 1:
                st.markdown(_world_text(config, processes))
            # The one-click suggestion's model already weighed the data: no second, different suggestion.
            if pre.suggested_model != config.model and (
                suggested is None or suggested.config.model != config.model
            ):
                c1, c2 = st.columns([4, 1])
                c1.caption(
                    _(
                        "Suggested model: **{model}** — {reason}.",
                        model=pre.suggested_model,
                        reason=ui.text(engine_text(pre.suggestion_reason)),
                    )
                )
                c2.button(
                    _("Use {model}", model=pre.suggested_model),
                    key="train-use-suggested",
                    on_click=_use_model,
                    args=(pre.suggested_model,),
                )
            if pre.ok:
                _batch_strip(config, pre)
        for warning in pre.warnings:
            st.warning(ui.text(engine_text(warning)), icon=":material/warning:")
        if not pre.ok:
            st.error(
                _("Train is disabled: {why}", why=ui.text(engine_text(pre.error))), icon=":material/block:"
            )

        return pre
    return None
