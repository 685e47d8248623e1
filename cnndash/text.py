"""Words for people: counts with the right plural, and names from uploads made inert for the figures.

Class names, file names, dataset and run names come from whoever made the data (folder names in a zip,
``train --out`` paths). They are shown as the text they are, never read as markup:

- :func:`N_` — marks engine text that a page shows, so it is extracted into a catalogue and translated by
  the UI at display (the engine itself stays English and never imports the UI);
- :func:`plural` — ``1 image``, ``2 images``: the one place a count meets its noun;
- :func:`visible_controls` — invisible control and bidirectional-formatting characters (a right-to-left
  override that makes ``gpj.exe`` read as ``exe.jpg``) shown as ``⟨U+202E⟩``, newlines as spaces;
- :func:`isolate` — a right-to-left name wrapped so it never reorders the sentence or cell around it;
- :func:`plotly_text` — for Plotly titles, axis and tick labels, legends and hover text, which read a
  subset of HTML (``<a href>``, ``<b>``, ``<span style>``) and ``$…$`` as LaTeX; :func:`plotly_label`
  and :func:`plotly_ticks` label a legend or an axis with names cut to a readable length;
- :func:`mpl_text` — for Matplotlib (the seaborn confusion-matrix PNG), which reads ``$…$`` as mathtext.

Markdown, which Streamlit renders in captions, labels and alerts, is escaped by ``ui.text`` in the UI;
:data:`MARKDOWN_SPECIALS` are the characters it escapes.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable
from typing import Any

# Format characters that change how text around them is ordered or shown; zero-width joiners (U+200C,
# U+200D) are left alone: emoji sequences and Persian words need them.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
)
_KEPT_FORMAT = frozenset("\u200c\u200d")
# What Streamlit's Markdown gives a meaning inline (``ui.text`` escapes each with a backslash): CommonMark's
# emphasis, code, links and images ('[' starts both, so '(' and ')' are harmless), HTML and entities, GFM's
# strikethrough and tables, '$' (LaTeX), and every ':' — Streamlit finds :material/…: icons, emoji
# shortcodes and :red[…] directives in the source before Markdown's own escapes apply, so both colons of
# ":material/home:" must be escaped.
MARKDOWN_SPECIALS = frozenset("\\`*_{}[]<>|~$&:")


def N_(message: str) -> str:
    """``message`` unchanged: marks engine text a page shows (a lesson's text, a chart title, a report
    warning) for extraction into a catalogue; the page translates it at display (``ui.i18n``)."""
    return message


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` with its noun: ``plural(1, "image")`` is ``"1 image"``, ``plural(1234, "image")`` is
    ``"1,234 images"``; ``plural_noun`` for nouns that do not take an ``s`` (``"classes"``)."""
    word = noun if count == 1 else (plural_noun or noun + "s")
    return f"{count:,} {word}"


def visible_controls(value: object) -> str:
    """``value`` as one line of text whose every character shows: newlines (and other line breaks) become
    spaces; control characters and bidirectional-formatting ones become ``⟨U+XXXX⟩``."""
    out = []
    for ch in " ".join(str(value).splitlines()):
        category = unicodedata.category(ch)
        if ch in _BIDI_CONTROLS or category == "Cc" or (category == "Cf" and ch not in _KEPT_FORMAT):
            out.append(f"⟨U+{ord(ch):04X}⟩")
        else:
            out.append(ch)
    return "".join(out)


# Unicode's first-strong isolate and pop-directional isolate (HTML's <bdi>): a right-to-left name keeps its
# own order without turning the text around it (a table cell "שלום (13%)" read right to left).
ISOLATE, POP_ISOLATE = "\u2068", "\u2069"


def isolate(text: str) -> str:
    """``text`` wrapped in a bidirectional isolate when it holds right-to-left letters (unchanged otherwise);
    apply to text whose controls are already visible (:func:`visible_controls` would show the isolate)."""
    if any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        return ISOLATE + text + POP_ISOLATE
    return text


def plotly_text(value: object) -> str:
    """``value`` as literal text in a Plotly figure (title, axis or tick label, legend, hover text).

    Plotly reads ``<a href>``, ``<b>``, ``<span style>``… in every text it draws and decodes entities, so
    ``&``, ``<`` and ``>`` become entities (shown as themselves); ``$`` becomes ``&#36;``, so that a page
    that loads MathJax never typesets a name, and ``%`` becomes ``&#37;``, so that a name put into a
    ``hovertemplate`` is never read as a ``%{…}`` placeholder."""
    escaped = html.escape(visible_controls(value), quote=False)
    return escaped.replace("$", "&#36;").replace("%", "&#37;")


def plotly_texts(values: Iterable[object]) -> list[str]:
    """:func:`plotly_text` of every item of ``values`` (class names for an axis, names for a legend)."""
    return [plotly_text(v) for v in values]


TICK_CHARS = 32  # a longer name is cut with "…" where it labels an axis or a legend (hover shows it whole)


def plotly_label(value: object, limit: int = TICK_CHARS) -> str:
    """:func:`plotly_text` of ``value`` cut to ``limit`` characters (with "…"), for a legend entry or an axis
    label: a 200-character class name would otherwise take the whole figure. Cut before escaping, so no
    entity is cut in half."""
    name = visible_controls(value)
    return plotly_text(name if len(name) <= limit else name[: limit - 1] + "…")


def plotly_ticks(values: Iterable[object], limit: int = TICK_CHARS) -> dict:
    """Axis settings that label the categories ``values`` (drawn as :func:`plotly_texts` of them) with
    :func:`plotly_label` of each."""
    values = list(values)
    return {
        "tickmode": "array",
        "tickvals": plotly_texts(values),
        "ticktext": [plotly_label(v, limit) for v in values],
    }


def mpl_text(value: object) -> str:
    """``value`` as literal text in a Matplotlib figure: ``$`` would start mathtext (and an odd number of
    them raises), so it is escaped; controls are made visible."""
    return visible_controls(value).replace("$", r"\$")


class Phrase(str):
    """Engine text for people (a reason, a warning, a status line) that keeps its template and parameters,
    so that a page can say it in the reader's language: ``Phrase(N_("the images are {side} px"), side=32)``
    *is* the English string ``"the images are 32 px"`` (the CLI, logs and tests read it as before), and
    ``.template`` / ``.params`` let the UI format the template's translation instead (``ui.engine_text``).
    The template is marked with ``N_`` so that it is extracted into the ``engine`` catalogue; a parameter
    may itself be a :class:`Phrase` (translated too)."""

    template: str
    params: dict[str, object]
    domain: str | None = None  # the catalogue of its template when not the enclosing text's (Phrase.of)

    def __new__(cls, template: str, /, **params: object) -> Phrase:
        phrase = super().__new__(cls, template.format(**params) if params else template)
        phrase.template = template
        phrase.params = params
        return phrase

    @classmethod
    def of(cls, error: Any) -> Phrase:
        """A typed error's message (``cnndash.errors.UserError``) as a part of another sentence, translated
        in the error's own domain (a shape error inside a lesson's sentence stays the calculator's)."""
        phrase = cls(error.template, **error.params)
        phrase.domain = error.domain
        return phrase

    def __reduce__(self) -> tuple:  # pickled with its template (a job's snapshot crosses processes)
        return (_phrase, (type(self), self.template, self.params, self.domain))


def _phrase(cls: type[Phrase], template: str, params: dict[str, object], domain: str | None = None) -> Phrase:
    phrase = cls(template, **params)
    phrase.domain = domain
    return phrase
