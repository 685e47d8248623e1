"""Errors a user can cause, messages a callback leaves for a later run (said in that run's language), and
widget values that survive while their widget is not drawn."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cnndash.errors import Phrase, Term, UserError
from ui.i18n import translator
from ui.text import text

log = logging.getLogger("cnndash.ui")


@contextmanager
def user_errors() -> Iterator[None]:
    """Show errors a user can cause (``ValueError`` and subclasses) as ``st.error``, never a traceback; a
    :class:`~cnndash.errors.UserError` in the person's language (its template translated in its domain's
    catalogue, then formatted with its parameters), any other ``ValueError`` as its English text."""
    try:
        yield
    except ValueError as exc:
        log.info("user error: %s", exc)
        st.error(text(error_text(exc)), icon=":material/error:")


def error_text(exc: ValueError) -> str:
    """The message of a user error in the person's language (English for a plain ``ValueError``, and for
    a :class:`~cnndash.errors.UserError` built from an already formatted message)."""
    if isinstance(exc, UserError):
        return phrase_text(Phrase(exc.template, **exc.params), exc.domain)
    return str(exc)


def phrase_text(phrase: Phrase, domain: str) -> str:
    """``phrase`` in the person's language: its template translated in ``domain``'s catalogue, filled with its
    parameters, each nested :class:`~cnndash.errors.Phrase` and :class:`~cnndash.errors.Term` translated too,
    and so is a :class:`~cnndash.errors.UserError` carried inside (``"Cannot read {file}: {exc}"``, in its own
    domain), so that no English sentence hides in a translated one."""

    def shown(value: object, domain: str) -> object:
        if isinstance(value, UserError):
            value = Phrase.of(value)
        if isinstance(value, Phrase):
            domain = value.domain or domain
            parts = {name: shown(part, domain) for name, part in value.params.items()}
            return translator(domain)(value.template, **parts)
        return translator(domain)(value) if isinstance(value, Term) else value

    return str(shown(phrase, domain))


# A message a callback leaves in the session for a later run, as a function that says it: ``lambda: _("Deleted
# dataset '{name}'.", name=ui.text(name))``. Said only when shown (:func:`said`), so a language switch in
# between shows it in the new language; the ``_`` call stays in the code, where Babel extracts it.
Said = Callable[[], str]


def said(message: str | Said) -> str:
    """The text of a message left for this run: a :data:`Said` said now, in this run's language."""
    return message() if callable(message) else message


def keep(key: str, default: Any = None, *, options: Collection | None = None) -> dict[str, Any]:
    """The keyword arguments of a widget whose value survives while it is not drawn.

    Streamlit forgets a widget that a run does not draw (a closed tab, the other section, another page);
    ``st.radio("Normalise", choices, **ui.keep("eval-normalize", "counts"))`` keeps it for the session.
    ``default`` is its first value, set once through session state — so the widget gets no ``value=`` /
    ``index=`` of its own, and code may still set ``st.session_state[key]`` before drawing it.
    ``options``: a kept single choice that is no longer among them (a deleted run or dataset) is dropped.
    """
    state = st.session_state
    if options is not None and key in state and state[key] not in options:
        del state[key]
    if default is not None and key not in state:
        state[key] = default
    return {"key": key, "persist_state": "session"}


def kept_tabs(ids: Sequence[str], key: str, tr: Callable[[str], str]) -> Sequence[DeltaGenerator]:
    """``st.tabs`` labelled with the translations ``tr(id)`` of ``ids`` (message ids), keyed ``key`` and
    rerun on a switch (so each tab's ``.open`` says whether it is the open one).

    Streamlit knows a tab set by its labels: a language switch renames every tab, and the set would come
    back on its first tab. The open tab's id is kept as ``{key}-open``; when the tab the widget remembers is
    no longer one of the labels (they were translated since), the same tab is opened again by its new label.
    """
    labels = [tr(tab_id) for tab_id in ids]
    opened = f"{key}-open"
    state = st.session_state
    if state.get(key) not in labels and state.get(opened) in ids:
        state[key] = tr(state[opened])  # set before the widget is drawn: it opens on that tab
    tabs = st.tabs(labels, key=key, on_change="rerun")
    for tab_id, tab in zip(ids, tabs, strict=True):
        if tab.open:
            state[opened] = tab_id
    return tabs
