"""The augmentation step editor of the Data & augmentation page: saved pipelines to load, one bordered box
per step (move up/down, remove, one widget per argument), adding a step, and the spec as editable JSON.

The pipeline lives in ``st.session_state["aug-steps"]`` as ``[id, step]`` pairs; the id keeps a step's
widgets attached to it when steps are reordered. :func:`pipeline_builder` draws the editor and returns the
spec the preview, the code and the saved pipeline use. A new Resize or crop starts at the size the one-click
suggestion trains the chosen dataset at (:func:`ui.training.auto_view.suggestion`), not ImageNet's 224. The spec, saved or not, is also the workspace's
``augment`` choice (``ui.workspace``): a reload or a link opens the editor on it, once it passes the
engine's own check (``augment.validate_spec``).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import streamlit as st

import ui
from cnndash import augment, paths
from cnndash.augment.ops import GROUPS
from cnndash.errors import UserError
from cnndash.training.config import TrainConfig
from cnndash.training.preflight import default_mean_std
from ui import i18n
from ui.data.datasets import chosen_dataset, show_message
from ui.engine_text import engine_text
from ui.training.auto_view import suggestion

_ = i18n.translator("data")

DEFAULT_SPEC = [augment.default_step("RandomHorizontalFlip")]
MAX_STEPS = 32  # steps of a pipeline read from a URL


@st.cache_data(show_spinner=False, max_entries=6)  # a quick measure; no untranslated spinner
def _mean_std(name: str, data_dir: str, stamp: int) -> tuple[list[float], list[float]]:
    """The statistics training uses: of the training split at TrainConfig's default split, measured at the
    size training picks automatically for the default model."""
    return default_mean_std(ui.load_dataset(name))


def _checked(spec: Any) -> bool:
    try:
        return len(spec) <= MAX_STEPS and augment.validate_spec(spec) is not None
    except (ValueError, TypeError):
        return False


def _steps_state() -> list[list[Any]]:
    if "aug-steps" not in st.session_state:
        spec = ui.workspace.get("augment", DEFAULT_SPEC, accept=_checked)
        st.session_state["aug-steps"] = [[k, dict(step)] for k, step in enumerate(spec)]
        st.session_state["aug-next-id"] = len(spec)
    return st.session_state["aug-steps"]


def _set_spec(spec: list[dict]) -> None:
    first = st.session_state.get("aug-next-id", 1)
    st.session_state["aug-steps"] = [[first + k, dict(step)] for k, step in enumerate(spec)]
    st.session_state["aug-next-id"] = first + len(spec)


def _current_spec() -> list[dict]:
    return [dict(step) for _, step in _steps_state()]


def _stats_dataset() -> str:
    """The dataset whose statistics Normalize is offered: the chosen one (also the one previewed)."""
    return chosen_dataset()


def _dataset_stats() -> tuple[str, list[float], list[float]] | None:
    name = _stats_dataset()
    try:
        mean, std = _mean_std(name, str(paths.data_dir()), ui.dataset_stamp(name))
    except ValueError:
        return None
    return name, mean, std


# --------------------------------------------------------------------------------------------------
# Callbacks of the editor's buttons


def _size_from_data() -> int | None:
    """The side a new Resize or crop starts at: the image size the one-click suggestion trains the chosen
    dataset at (its own size where the budget allows), not the catalogue's ImageNet 224; None when the dataset
    cannot be read."""
    name = _stats_dataset()
    try:
        choice = suggestion(name, val_fraction=TrainConfig.val_fraction, seed=TrainConfig.seed)
    except ValueError:
        return None
    return choice.config.image_size or None


def _add_step() -> None:
    op = st.session_state.get("aug-add-op")
    steps = _steps_state()
    stats = _dataset_stats() if op == "Normalize" else None
    new_steps = augment.steps_to_add(op, [step for _, step in steps], stats[1:] if stats else None)
    if any("size" in step for step in new_steps) and (side := _size_from_data()):
        new_steps = [{**step, "size": [side, side]} if "size" in step else step for step in new_steps]
    for step in new_steps:
        steps.append([st.session_state["aug-next-id"], step])
        st.session_state["aug-next-id"] += 1


def _move_step(uid: int, delta: int) -> None:
    steps = _steps_state()
    pos = next(i for i, (sid, _) in enumerate(steps) if sid == uid)
    target = pos + delta
    if 0 <= target < len(steps):
        steps[pos], steps[target] = steps[target], steps[pos]


def _remove_step(uid: int) -> None:
    st.session_state["aug-steps"] = [pair for pair in _steps_state() if pair[0] != uid]


def _use_dataset_stats(uid: int) -> None:
    stats = _dataset_stats()
    if stats is None:
        return
    for pair in _steps_state():
        if pair[0] == uid:
            pair[1] = augment.normalize_step(stats[1], stats[2])
            for arg in ("mean", "std"):
                st.session_state.pop(f"aug-{uid}-{arg}", None)


def _apply_json() -> None:
    text = st.session_state.get("aug-json", "")
    try:
        spec = json.loads(text)
        augment.validate_spec(spec)
    except ValueError as exc:
        st.session_state["aug-message"] = ("error", partial(_not_applied, exc))
        return
    _set_spec(spec)


def _not_applied(exc: ValueError) -> str:
    why = engine_text(exc) if isinstance(exc, UserError) else str(exc)
    return _("The JSON spec was not applied: {why}", why=ui.text(why))


def _load_saved() -> None:
    name = st.session_state.get("aug-load-name")
    try:
        _set_spec(augment.load_pipeline(name))
    except ValueError as exc:
        st.session_state["aug-message"] = ("error", lambda exc=exc: ui.text(engine_text(exc)))
        return
    st.session_state["aug-save-name"] = name
    st.session_state["aug-message"] = ("ok", lambda: _("Loaded pipeline '{name}'.", name=ui.text(name)))
    ui.workspace.put("pipeline", name)


# --------------------------------------------------------------------------------------------------
# The widgets of one step


def _number_widget(label: str, value: Any, key: str, container) -> Any:
    if isinstance(value, int):
        return container.number_input(label, value=value, step=1, key=key)
    return container.number_input(label, value=float(value), step=0.05, format="%.3f", key=key)


def _list_widget(label: str, value: list, key: str, container) -> list:
    """A free-form list (mean, std, 4-side padding) as comma-separated numbers."""
    text = container.text_input(label, value=", ".join(f"{v:g}" for v in value), key=key)
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        numbers = [int(p) if p.lstrip("-").isdigit() else float(p) for p in parts]
    except ValueError:
        return [text]  # the spec check names the argument
    return numbers


def _is_number_pair(arg: str, value: Any) -> bool:
    """A (min, max) or (h, w) pair drawn as two number inputs (mean/std/padding are free-form lists)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and arg not in ("mean", "std", "padding")
    )


def _arg_widget(arg: str, value: Any, key: str, box) -> Any:
    """The widget for one argument of a step, chosen by the type of its current value."""
    if isinstance(value, bool):
        return box.checkbox(arg, value=value, key=key)
    if isinstance(value, (int, float)):
        return _number_widget(arg, value, key, box)
    if isinstance(value, str) and arg in augment.CHOICES:
        options = list(augment.CHOICES[arg])
        return box.selectbox(arg, options, index=options.index(value) if value in options else 0, key=key)
    if _is_number_pair(arg, value):
        names = ("h", "w") if arg == "size" else ("min", "max")
        inner = box.columns(2)
        return [
            _number_widget(f"{arg} {names[j]}", value[j], f"{key}-{names[j]}", inner[j]) for j in range(2)
        ]
    if isinstance(value, list):
        return _list_widget(arg, value, key, box)
    text = box.text_input(f"{arg} (JSON)", value=json.dumps(value), key=key)
    try:
        return json.loads(text)
    except ValueError:
        return text  # the spec check names the argument


def _step_buttons(pos: int, uid: int, count: int) -> None:
    """Up, Down and Remove, in a row under the step's title."""
    bar = st.container(horizontal=True, gap="small")
    bar.button(
        _("Up"),
        icon=":material/arrow_upward:",
        key=f"aug-{uid}-up",
        on_click=_move_step,
        args=(uid, -1),
        disabled=pos == 0,
        type="tertiary",
    )
    bar.button(
        _("Down"),
        icon=":material/arrow_downward:",
        key=f"aug-{uid}-down",
        on_click=_move_step,
        args=(uid, 1),
        disabled=pos == count - 1,
        type="tertiary",
    )
    bar.button(
        _("Remove"),
        icon=":material/close:",
        key=f"aug-{uid}-remove",
        on_click=_remove_step,
        args=(uid,),
        type="tertiary",
    )


def _step_args(uid: int, args: list[tuple[str, Any]]) -> dict[str, Any]:
    """One widget per argument; returns the arguments' new values."""
    # Single values share a row of up to three columns; a (min, max) or (h, w) pair gets a row of its own,
    # so that its two inputs are wide enough for their labels and steppers (RandomResizedCrop's scale
    # and ratio were unreadable at a sixth of the page).
    singles = [(arg, value) for arg, value in args if not _is_number_pair(arg, value)]
    values = {}
    if singles:
        cols = st.columns(min(len(singles), 3))
        for k, (arg, value) in enumerate(singles):
            values[arg] = _arg_widget(arg, value, f"aug-{uid}-{arg}", cols[k % len(cols)])
    for arg, value in args:
        if _is_number_pair(arg, value):
            values[arg] = _arg_widget(arg, value, f"aug-{uid}-{arg}", st.container())
    return values


def _step_editor(pos: int, uid: int, step: dict, count: int) -> dict:
    op = step["op"]
    with st.container(border=True, key=f"aug-step-{uid}"):
        st.markdown(f"**{pos + 1}. {op}** — " + ui.text(engine_text(augment.OPS[op].description)))
        _step_buttons(pos, uid, count)
        args = [(k, v) for k, v in step.items() if k != "op"]
        new = {"op": op}
        if not args:
            st.caption(_("No parameters."))
            return new
        values = _step_args(uid, args)
        new.update((arg, values[arg]) for arg, _ in args)
        if op == "Normalize":
            name = _stats_dataset()
            st.button(
                _("Use the mean/std of '{name}'", name=ui.text(name)),
                key=f"aug-{uid}-stats",
                on_click=_use_dataset_stats,
                args=(uid,),
            )
    return new


def pipeline_builder() -> list[dict]:
    """The step editor; returns the current spec."""
    steps = _steps_state()
    show_message("aug-message")
    saved = augment.list_pipelines()
    if saved:
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        a.selectbox(
            _("Saved pipelines"), saved, format_func=ui.plain, **ui.keep("aug-load-name", options=saved)
        )
        b.button(_("Load"), key="aug-load", on_click=_load_saved)
    if not steps:
        st.info(_("No steps yet: the preview shows the image unchanged. Add a step below."))
    for pos, pair in enumerate(list(steps)):
        pair[1] = _step_editor(pos, pair[0], pair[1], len(steps))
    a, b = st.columns([3, 1], vertical_alignment="bottom")
    a.selectbox(
        _("Add a step"),
        list(augment.OPS),
        format_func=lambda op: f"{op} ({engine_text(GROUPS[augment.OPS[op].group])})",
        **ui.keep("aug-add-op"),
    )
    b.button(_("Add step"), key="aug-add", on_click=_add_step, type="primary")
    spec = _current_spec()
    text = json.dumps(spec, indent=1)
    if st.session_state.get("aug-json-source") != text or "aug-json" not in st.session_state:
        st.session_state["aug-json-source"] = text
        st.session_state["aug-json"] = text
    with st.expander(_("Edit the spec as JSON")):
        st.text_area(_("Pipeline spec"), key="aug-json", height=200)
        st.button(_("Apply JSON"), key="aug-json-apply", on_click=_apply_json)

    ui.workspace.put("augment", None if spec == DEFAULT_SPEC else spec)
    return spec
