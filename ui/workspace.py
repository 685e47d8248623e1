"""The workspace: what the person has chosen — the dataset, the pipeline, the run, the pair of runs
compared, the calculator and its layer stack, the lesson, the pipeline being edited — owned here and
nowhere else, so a choice made on one page is the choice on every page, survives a reload, and travels in
a link.

Each choice (:data:`CHOICES`) lives in ``st.session_state`` and is mirrored in the URL's query
(``/evaluation?dataset=pets&run=lenet-pets-…&lesson=3``). A page switch clears Streamlit's query string,
so :func:`sync` (called by ``ui.route_guard`` at the top of every page) writes the choices back; a reload or
a shared link starts a new session, whose first run reads them from the URL. A value read from a URL is
untrusted: its :class:`Choice` decodes only well-formed text (anything else is dropped quietly), and a page
still checks it against what exists (``options`` / ``accept``), falling back to its default. Nothing read
from the URL is rendered: it only ever selects among options the page lists itself.

Pages and their ``ui/<page>/`` parts read and set choices through :func:`get`, :func:`put` and
:func:`bind`. :func:`bind` ties a widget (whose key tests and CSS rely on, e.g. ``train-dataset``) to a
choice: a widget moved by the person (or by code that sets its key) moves the choice, and a choice moved
elsewhere (another page, the URL) moves the widget. A dotted name (``calc.stride``) is one part of a
choice that holds a dict. Widget preferences that are not choices (a chart's smoothing, a threshold) stay
with ``ui.keep``.

To add a choice, add one :class:`Choice` line to :data:`CHOICES`. The language (``lang``) is one: read it
through ``ui.i18n.language()``, which falls back to the browser's preferred language.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import streamlit as st

log = logging.getLogger("cnndash.ui")

_CHOSEN = "workspace"  # session key of {choice name: value}; present once the URL has been read
_SYNCED = "workspace-synced"  # session key of {widget key: (widget value, choice value) at its last draw}
MAX_NAME = 200  # characters of a dataset, pipeline or run name read from a URL
MAX_JSON = 20_000  # characters of a structured choice (the stack, the pipeline) read from a URL


def _name(raw: str) -> str:
    """A name from a URL: plain text of sane length (whether it exists is the page's question)."""
    if not raw or len(raw) > MAX_NAME or any(ord(c) < 32 or c in "/\\" for c in raw):
        raise ValueError(f"not a name: {raw[:40]!r}")
    return raw


def _count(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 3:
        raise ValueError(f"not a small number: {raw[:40]!r}")
    return int(raw)


def _plain(value: Any) -> bool:
    """JSON of plain scalars, lists and dicts only (no NaN or infinity), as choices hold."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


_LANGUAGE_TAG = re.compile(r"[a-z]{2,3}(-[A-Za-z]{2,4})?")


def _language_tag(raw: str) -> str:
    """A language tag from a URL (``zh-CN``); whether it is offered is ``ui.i18n``'s question."""
    if not _LANGUAGE_TAG.fullmatch(raw):
        raise ValueError(f"not a language tag: {raw[:40]!r}")
    return raw


def _json_of(kind: type) -> Callable[[str], Any]:
    def decode(raw: str) -> Any:
        value = json.loads(raw) if len(raw) <= MAX_JSON else None
        if not isinstance(value, kind) or not _plain(value):
            raise ValueError(f"not a JSON {kind.__name__}")
        return value

    return decode


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Choice:
    """One thing the workspace keeps: its ``name`` (also its key in the URL's query) and how its value is
    written into the URL (``encode``) and read back (``decode``, which raises ``ValueError`` for anything
    malformed)."""

    name: str
    encode: Callable[[Any], str] = str
    decode: Callable[[str], Any] = _name


CHOICES = {
    choice.name: choice
    for choice in (
        Choice("dataset"),  # the Data page, the augmentation preview and Training
        Choice("pipeline"),  # the saved augmentation pipeline Training uses
        Choice("run"),  # the run Evaluation, Grad-CAM and Learn open: the one just trained or chosen
        Choice("compare", _dump, _json_of(dict)),  # {"a", "b"}: the two runs of the Runs tab's comparison
        Choice("lesson", str, _count),  # the Learn lesson, by number
        Choice("calc", _dump, _json_of(dict)),  # the Single layer and Kernel playground settings
        Choice("stack", _dump, _json_of(dict)),  # the Layer stack: preset, input, shortcut, edited rows
        Choice("augment", _dump, _json_of(list)),  # the augmentation pipeline being edited, saved or not
        Choice("section"),  # the Data page's section: datasets | augmentation
        Choice("lang", str, _language_tag),  # the language of every page (ui.i18n; the sidebar's switch)
    )
}


# --------------------------------------------------------------------------------------------------
# The session and the URL


def _chosen() -> dict[str, Any]:
    state = st.session_state
    if _CHOSEN not in state:  # the session's first run: a new tab, a reload or a shared link
        state[_CHOSEN] = _from_url()
    return state[_CHOSEN]


def _from_url() -> dict[str, Any]:
    chosen = {}
    for name, choice in CHOICES.items():
        raw = st.query_params.get(name)
        if raw is None:
            continue
        try:
            chosen[name] = choice.decode(str(raw))
        except (ValueError, TypeError, RecursionError):
            log.info("ignoring the URL's %s: it is not well formed", name)
    return chosen


def _mirror(name: str) -> None:
    """Write one choice into the URL's query (or take it out)."""
    value = _chosen().get(name)
    params = st.query_params
    if value is None:
        if name in params:
            del params[name]
        return
    text = CHOICES[name].encode(value)
    if params.get(name) != text:
        params[name] = text


def sync() -> None:
    """Read the URL once per session, and put every choice back into the URL (a page switch empties it).
    Called at the top of every page run (``ui.route_guard``)."""
    for name in CHOICES:
        _mirror(name)


def get(
    name: str,
    default: Any = None,
    *,
    options: Collection | None = None,
    accept: Callable[[Any], bool] | None = None,
) -> Any:
    """The choice ``name`` (``choice`` or ``choice.part``); ``default`` when there is none or it is not
    among ``options`` / not accepted by ``accept(value)`` (a deleted run, a dataset from another's link)."""
    top, _, part = name.partition(".")
    value = _chosen().get(top)
    if part:
        value = value.get(part) if isinstance(value, dict) else None
    if value is None or not _valid(value, options, accept):
        return default
    return value


def put(name: str, value: Any) -> None:
    """Choose ``value`` for ``name`` (``choice`` or ``choice.part``); None forgets it. Mirrored in the URL."""
    top, _, part = name.partition(".")
    if top not in CHOICES:
        raise KeyError(f"{top!r} is not a workspace choice; add it to ui.workspace.CHOICES")
    chosen = _chosen()
    if part:
        parts = dict(chosen.get(top) or {})
        if value is None:
            parts.pop(part, None)
        else:
            parts[part] = value
        value = parts or None
    if value is None:
        chosen.pop(top, None)
    else:
        chosen[top] = value
    _mirror(top)


def _valid(value: Any, options: Collection | None, accept: Callable[[Any], bool] | None) -> bool:
    try:
        return (options is None or value in options) and (accept is None or bool(accept(value)))
    except TypeError:  # an unhashable value against a set, a comparison of unlike types
        return False


# --------------------------------------------------------------------------------------------------
# Widgets bound to a choice

_NOTHING = ("nothing",)  # no value (a tuple: never equal to a widget value or a choice)


def bind(
    name: str,
    key: str,
    *,
    default: Any,
    options: Collection | None = None,
    accept: Callable[[Any], bool] | None = None,
    convert: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of a widget keyed ``key`` whose value is the choice ``name``.

    Call it just before drawing the widget, which gets no ``value=``/``index=`` of its own. ``default``
    (valid for the widget) is shown while nothing valid is chosen; ``options`` / ``accept`` say what is
    valid; ``convert`` is ``(choice → widget value, widget value → choice)`` when the two differ (the lesson
    number and its title). Only a move is recorded: a widget that merely shows its default chooses nothing,
    so the URL carries only what the person changed.
    """
    state = st.session_state
    synced = state.setdefault(_SYNCED, {})
    to_widget, from_widget = convert or (_same, _same)
    chosen = get(name, _NOTHING)
    shown = _converted(to_widget, chosen)
    last_widget, last_chosen = synced.get(key, (_NOTHING, _NOTHING))
    current = state.get(key, _NOTHING)
    current_ok = current is not _NOTHING and _valid(current, options, accept)
    value = current if current_ok else default
    if current_ok and current != last_widget and (chosen == last_chosen or last_widget is _NOTHING):
        # The widget moved (the person, or code that set its key): the choice follows.
        if shown != current:
            put(name, from_widget(current))
    elif (
        (chosen != last_chosen or not current_ok) and shown is not _NOTHING and _valid(shown, options, accept)
    ):
        # The choice moved (another page, the URL) or the widget is new: the widget follows. A choice this
        # widget cannot show (a run without a checkpoint on Grad-CAM) leaves it as it is, or at default.
        value = shown
    # Written on every run, not only when it changes: Streamlit sends a value set through session state
    # only with the run that sets it, and a browser that drops that run's elements (a fresh session's
    # first deep link) would otherwise show the widget's own default while the server holds the choice.
    state[key] = value
    synced[key] = (value, get(name, _NOTHING))
    return {"key": key}


def _same(value: Any) -> Any:
    return value


def _converted(to_widget: Callable[[Any], Any], chosen: Any) -> Any:
    if chosen is _NOTHING:
        return _NOTHING
    try:
        return to_widget(chosen)
    except (KeyError, IndexError, ValueError, TypeError):
        return _NOTHING
