"""Text from uploads, shown as text: class names, file names, dataset and run names never become Markdown,
HTML, icons or LaTeX on a page.

Streamlit reads Markdown in far more places than ``st.markdown``: captions (``st.caption``, ``st.image``'s
caption), alerts, toasts, widget labels (buttons, checkboxes, expanders, tabs, metrics), radio options,
``st.table`` cells and progress texts. A name reaches any of these only through

- :func:`md` — a Markdown template written in code whose every ``{field}`` is escaped:
  ``ui.md("**{n}** images of **{true}**", n=3, true=name)``; the way to build a sentence around names;
- :func:`text` — one value escaped, for a place that takes a single name (a caption, a label).

Where a widget shows plain text (selectbox and multiselect options, ``st.dataframe`` cells, ``st.code``)
no escaping is wanted (a backslash would show): :func:`plain` only makes control characters visible.
Plotly and Matplotlib have their own markup: :mod:`cnndash.text` escapes names for them.
"""

from __future__ import annotations

import re
import string
from typing import Any

from cnndash.text import MARKDOWN_SPECIALS, isolate, visible_controls

# At the start of a line '#', '+', '-', '>', '=' also count (headings, lists, quotes), so a leading one is
# escaped as well, and so is the '.' or ')' after leading digits (MARKDOWN_SPECIALS: cnndash.text).
_LINE_START_SPECIALS = frozenset("#+->=")
_ORDERED_LIST = re.compile(r"(\d{1,9})[.)]")  # "1." or "1)" opens an ordered list


def text(value: object) -> str:
    """``value`` as literal text inside Markdown: class names, file names and other strings from uploads
    are shown as they are, never read as Markdown, HTML, icons or LaTeX. Newlines become spaces, control
    characters show as ``⟨U+XXXX⟩``, and a right-to-left name is isolated from the text around it."""
    plain_text = visible_controls(value)
    escaped = "".join("\\" + ch if ch in MARKDOWN_SPECIALS else ch for ch in plain_text)
    if escaped[:1] in _LINE_START_SPECIALS:
        escaped = "\\" + escaped
    elif ordered := _ORDERED_LIST.match(escaped):
        escaped = ordered[1] + "\\" + escaped[len(ordered[1]) :]
    return isolate(escaped)


class _EscapingFormatter(string.Formatter):
    """``str.format`` whose every replacement field is formatted (``{p:.0%}`` as usual), then escaped;
    numbers are left as they are (digits, separators and signs carry no markup in a sentence)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, format_spec)
        return text(format(value, format_spec))


_FORMATTER = _EscapingFormatter()


def md(template: str, /, *args: Any, **kwargs: Any) -> str:
    """``template`` (Markdown written in code) with its fields filled by :func:`text` of the arguments:
    ``md("Stored as **{name}**: {count}", name=report.name, count=plural(n, "image"))``."""
    return _FORMATTER.vformat(template, args, kwargs)


def plain(value: object) -> str:
    """``value`` for a widget that shows plain text (selectbox options, dataframe cells): one line, every
    character visible, a right-to-left name isolated, nothing escaped (there is no markup to escape)."""
    return isolate(visible_controls(value))
