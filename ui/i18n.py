"""Text a person reads, in their language: English or 简体中文, from gettext catalogues.

Every string a page shows goes through a translator of its *domain* (``common``, ``calculator``,
``learn``, ``data``, ``training``, ``evaluation``, ``gradcam``, ``engine``), one ``.po`` file per domain
under ``locales/zh_CN/LC_MESSAGES/`` — the standard gettext format, so a translator works with Poedit or
any PO editor and never reads Python. The English text is the message id; a message without a
translation falls back to it.

    _ = i18n.translator("training")
    st.button(_("Train"))
    st.caption(_("Stored as '{name}': {count} images.", name=ui.text(name), count=n))
    st.caption(_.plural("{n} image", "{n} images", n, n=n))

Parameters are formatted *after* translation (``str.format``), so a translation may move them; names
from uploads are passed already escaped (:func:`ui.text.text`) or plain (:func:`ui.text.plain`). The
language is read at call time from the workspace (the ``lang`` choice, mirrored in the URL as
``?lang=zh-CN``; the browser's preferred language when nothing is chosen), so a module-level ``_`` serves
every session. ``make i18n`` extracts the message ids with Babel (``ui/catalogs.py``) and updates the
catalogues; ``tests/test_i18n.py`` fails on a message id without a Chinese string, on a catalogue entry no
code uses, and on a translation that drops or invents a ``{placeholder}``.

Catalogues are read with Babel's PO reader once per process (no ``.mo`` files to build or commit). The
pseudo-locale :data:`PSEUDO` (``?lang=qps``, never offered in the switch) shows every translated string
as ``⟦…⟧``: the tests render every page in it and fail on visible text that is neither marked nor data.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import streamlit as st
from babel.messages.pofile import read_po
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui import workspace

log = logging.getLogger("cnndash.ui")

LOCALE_DIR = Path(__file__).resolve().parents[1] / "locales"
LANGUAGES = {"en": "English", "zh-CN": "简体中文"}  # what the sidebar's switch offers, each in itself
DEFAULT_LANGUAGE = "en"
PSEUDO = "qps"  # the pseudo-locale of the tests (qps: the code Windows reserves for pseudo-locales)
PSEUDO_OPEN, PSEUDO_CLOSE = "⟦", "⟧"
CODES = (*LANGUAGES, PSEUDO)  # what ?lang= may hold
DOMAINS = ("common", "calculator", "learn", "data", "training", "evaluation", "gradcam", "engine")
CATALOG_DIRS = {"zh-CN": "zh_CN"}  # gettext's folder name of each translated language


def preferred_language(browser_locale: str | None) -> str:
    """The first choice for a new visitor: 简体中文 for a browser set to any Chinese, else English."""
    tag = (browser_locale or "").lower().replace("_", "-")
    return "zh-CN" if tag.startswith("zh") else DEFAULT_LANGUAGE


def browser_language() -> str:
    """:func:`preferred_language` of this session's browser (``st.context.locale``; English without one)."""
    try:
        return preferred_language(st.context.locale)
    except (AttributeError, RuntimeError):  # no browser behind this run (AppTest, a bare script)
        return DEFAULT_LANGUAGE


def language() -> str:
    """The language of the current script run: the workspace's ``lang`` choice, else the browser's; English
    outside a script run (the CLI, tests that call a part directly, background threads)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return DEFAULT_LANGUAGE
    return workspace.get("lang", options=CODES) or browser_language()


@functools.cache
def catalog(lang: str, domain: str) -> dict[str, str | tuple[str, ...]]:
    """``domain``'s translations into ``lang``: message id → string (a tuple of plural forms for a plural
    message, keyed by its singular id). Empty for English, a missing file and untranslated or fuzzy ids."""
    folder = CATALOG_DIRS.get(lang)
    path = LOCALE_DIR / str(folder) / "LC_MESSAGES" / f"{domain}.po"
    if folder is None or not path.is_file():
        return {}
    with open(path, "rb") as handle:
        parsed = read_po(handle, locale=folder)
    out: dict[str, str | tuple[str, ...]] = {}
    for message in parsed:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple | list) else message.id
        if isinstance(message.string, tuple | list):
            if all(message.string):
                out[key] = tuple(message.string)
        elif message.string:
            out[key] = message.string
    return out


class Translator:
    """``_(msgid, **params)`` and ``_.plural(singular, plural, n, **params)`` for one domain, in the
    language of the current script run."""

    def __init__(self, domain: str) -> None:
        if domain not in DOMAINS:
            raise ValueError(f"unknown translation domain {domain!r}; one of {', '.join(DOMAINS)}")
        self.domain = domain

    def __call__(self, msgid: str, /, **params: object) -> str:
        lang = language()
        found = catalog(lang, self.domain).get(msgid)
        return _finish(found if isinstance(found, str) else msgid, msgid, params, lang)

    def plural(self, singular: str, plural: str, n: int, /, **params: object) -> str:
        """The form for ``n`` (Chinese has one form, English two), formatted with ``params`` (and ``n``)."""
        lang = language()
        found = catalog(lang, self.domain).get(singular)
        english = singular if n == 1 else plural
        text = found[0] if isinstance(found, tuple) else english  # zh_CN: nplurals=1
        return _finish(text, english, {"n": n, **params}, lang)


def _finish(text: str, english: str, params: dict[str, object], lang: str) -> str:
    if params:
        try:
            text = text.format(**params)
        except (KeyError, IndexError, ValueError):  # a broken translation: the English still reads
            log.warning("translation of %r does not format; showing the English", english)
            text = english.format(**params)
    return f"{PSEUDO_OPEN}{text}{PSEUDO_CLOSE}" if lang == PSEUDO else text


@functools.cache
def translator(domain: str) -> Translator:
    """The translator of ``domain`` (one per domain and process)."""
    return Translator(domain)
