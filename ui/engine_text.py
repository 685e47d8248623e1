"""Engine text on a page, in the reader's language: typed errors, :class:`cnndash.text.Phrase` reasons and
warnings, and ``N_``-marked constants (model descriptions, chart labels), all from the ``engine`` catalogue.

The engine stays English and never imports the UI: it marks what a page shows (``N_``), keeps the template
and parameters of what it formats (``Phrase``, ``UserError``), and the page translates at display.
"""

from __future__ import annotations

from cnndash.errors import Phrase, UserError
from ui.i18n import translator
from ui.state import error_text, phrase_text


def engine_text(value: object) -> str:
    """``value`` in the reader's language: a :class:`~cnndash.errors.UserError` or a ``Phrase`` through its
    template (its parameters filled in after translation, a ``Phrase`` parameter translated too); any other
    string is looked up as an ``engine`` message id (an ``N_`` constant), English when it is none."""
    if isinstance(value, UserError):
        return error_text(value)
    if isinstance(value, Phrase):  # nested parts in their own domains (Phrase.of), Terms translated
        return phrase_text(value, "engine")
    template, params = getattr(value, "template", None), getattr(value, "params", None)
    if isinstance(template, str) and isinstance(params, dict):
        filled = {key: engine_text(p) if hasattr(p, "template") else p for key, p in params.items()}
        return translator("engine")(template, **filled)
    return translator("engine")(str(value))
