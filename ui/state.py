"""Errors a user can cause, and widget values that survive while their widget is not drawn."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

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
