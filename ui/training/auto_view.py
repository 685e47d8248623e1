"""The one-click suggestion on the Training page: the form's model, image size, batch size, epochs and learning
rate come from the data, through the engine's :func:`cnndash.training.auto.choose_settings` (the function
behind ``python -m cnndash train --model auto``), with the reasons shown under the form.

A value the person changed by hand stays theirs: :func:`apply_suggestion` moves a widget only while it still
holds what the last suggestion put there (or nothing yet), so choosing another dataset re-suggests the
settings nobody touched and leaves the others alone (their reason then says "set by hand").
"""

from __future__ import annotations

import streamlit as st

import ui
from cnndash.device import resolve_device
from cnndash.pretrained import weights_installed
from cnndash.text import N_
from cnndash.training.auto import ONE_CLICK_BUDGET_S, AutoChoice, choose_settings
from cnndash.training.choices import MODEL_TITLES
from cnndash.training.config import TrainConfig
from ui import i18n
from ui.engine_text import engine_text

_ = i18n.translator("training")
_engine = i18n.translator("engine")

# The widgets a suggestion sets, and the TrainConfig field each one edits.
SUGGESTED = {
    "train-model": "model",
    "train-image-size": "image_size",
    "train-batch-size": "batch_size",
    "train-epochs": "epochs",
    "train-lr": "lr",
    "train-optimizer": "optimizer",
    "train-schedule": "schedule",
    "train-pretrained": "pretrained",
    "train-transfer": "transfer",
}
# How each setting is named in the reasons (the form's labels).
FIELD_LABELS = {
    "model": N_("Model"),
    "image_size": N_("Image size"),
    "batch_size": N_("Batch size"),
    "epochs": N_("Epochs"),
    "lr": N_("Learning rate"),
    "optimizer": N_("Optimizer"),
    "schedule": N_("LR schedule"),
    "pretrained": N_("Pretrained weights"),
    "transfer": N_("Transfer mode"),
}
_APPLIED = "train-auto-applied"  # {widget key: the value the last suggestion put there}
_CHOICE = "train-auto-choice"  # the last suggestion's (dataset, settings, reasons, estimate), for the caption


@st.cache_data(show_spinner=False, max_entries=16)
def _suggest(
    name: str,
    val_fraction: float,
    seed: int,
    stamp: str,
    device: str,
    budget_s: float,
    pretrained: bool,
    augment: list[dict],
) -> AutoChoice:
    imageset = ui.load_dataset(name, val_fraction, seed)
    base = TrainConfig(
        dataset=name, augment=augment
    )  # a pipeline that crops decides the size (the engine's rule)
    return choose_settings(imageset, name, budget_s=budget_s, device=device, pretrained_available=pretrained,
                           base=base)  # fmt: skip


def suggestion(
    dataset: str, *, val_fraction: float, seed: int, device: str = "auto", augment: list[dict] = ()
) -> AutoChoice:
    """The engine's one-click choice for ``dataset`` on ``device`` with the pipeline ``augment`` (cached until
    the dataset changes)."""
    kind = resolve_device(device).type
    stamp = ui.dataset_stamp(dataset)
    pretrained = weights_installed("resnet18")  # a key part: an import on this page changes the choice
    return _suggest(dataset, float(val_fraction), int(seed), stamp, kind, ONE_CLICK_BUDGET_S, pretrained,
                    list(augment))  # fmt: skip


def _widget_value(field: str, value: object) -> object:
    return (value or 0) if field == "image_size" else value


def apply_suggestion(
    dataset: str, *, val_fraction: float, seed: int, device: str, augment: list[dict] = ()
) -> AutoChoice | None:
    """Set the suggested settings for ``dataset`` on the widgets nobody changed by hand (call before they are
    drawn); ``augment`` is the chosen pipeline's spec. None, and nothing changed, when the dataset cannot be
    read (the preflight says why)."""
    with st.spinner(_("Reading the dataset to suggest settings…")):
        try:
            choice = suggestion(dataset, val_fraction=val_fraction, seed=seed, device=device, augment=augment)
        except ValueError:
            st.session_state.pop(_CHOICE, None)  # no reasons of another dataset's suggestion on show
            return None  # a broken or missing dataset: the form's own checks show the reason
    state = st.session_state
    applied = state.get(_APPLIED, {})
    hand = set()
    for key, field in SUGGESTED.items():
        value = _widget_value(field, getattr(choice.config, field))
        # A widget follows the suggestion while it holds what the last one put there (or nothing yet).
        if key not in state or key not in applied or state[key] in (applied[key], value):
            state[key] = applied[key] = value
        else:
            hand.add(field)
    state[_APPLIED] = applied
    state[_CHOICE] = (dataset, choice, sorted(hand))
    return choice


def current(dataset: str) -> AutoChoice | None:
    """The suggestion last applied to the form, when it was for ``dataset``."""
    shown = st.session_state.get(_CHOICE)
    return shown[1] if shown is not None and shown[0] == dataset else None


def _summary(config: TrainConfig) -> str:
    # The model as its description names it ("Small VGG"), in the reader's language (the engine catalogue).
    model = _engine(MODEL_TITLES[config.model]) if config.model in MODEL_TITLES else config.model
    size = _("{side} px", side=config.image_size) if config.image_size else _("the pipeline's size")
    numbers = dict(model=model, size=size, batch=config.batch_size, epochs=config.epochs, lr=f"{config.lr:g}")
    if config.pretrained:
        return _(
            "pretrained {model} at {size}, batches of {batch}, {epochs} epochs, learning rate {lr}", **numbers
        )
    return _("{model} at {size}, batches of {batch}, {epochs} epochs, learning rate {lr}", **numbers)


def show_reasons() -> None:
    """The suggestion in one line and, in an expander, why each setting was chosen (or that it is the
    person's own)."""
    shown = st.session_state.get(_CHOICE)
    if shown is None:
        return
    dataset, choice, hand = shown
    labels = ", ".join(_(FIELD_LABELS[f]) if f in FIELD_LABELS else f for f in hand)
    own = " · " + _("set by hand: {fields}", fields=ui.text(labels.lower())) if hand else ""
    st.caption(
        _(
            "**Suggested for {dataset}:** {summary} — about {seconds} s of the {budget} s one-click budget",
            dataset=ui.text(dataset),
            summary=ui.text(_summary(choice.config)),
            seconds=f"{choice.estimated_seconds:.0f}",
            budget=f"{choice.budget_s:g}",
        )
        + own
    )
    with st.expander(_("Why these settings"), icon=":material/lightbulb:"):
        for field, why in choice.reasons.items():
            note = " " + _("(you changed it: your value is used)") if field in hand else ""
            label = _(FIELD_LABELS[field]) if field in FIELD_LABELS else field
            st.markdown(
                "- " + _("**{field}**: {why}", field=ui.text(label), why=ui.text(engine_text(why))) + note
            )
