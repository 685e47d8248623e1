"""What a page shows, as text, and which of it escaped translation: the pseudo-locale check.

Render a page with ``?lang=qps`` (``ui.i18n.PSEUDO``): every translated string then reads ``⟦…⟧``.
:func:`visible_text` gathers every string an AppTest shows — titles, Markdown, captions, widget labels,
help texts, placeholders and options, buttons, tabs, expanders, metrics, alerts, dataframe headers, image
captions, Plotly titles, axes and legends — and :func:`unmarked` returns those that still hold words
outside ``⟦…⟧`` once data is set aside: numbers, code (inline ``code``, ``$math$``, code blocks are not
collected), icons, and the names a test passes (``data=``: dataset, class, run and model names, which are
never translated).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from streamlit.testing.v1 import AppTest

from ui.i18n import LANGUAGES, PSEUDO_CLOSE, PSEUDO_OPEN

# Proto fields that hold text a person reads; element types whose text is code or markup, not prose.
TEXT_FIELDS = frozenset({"body", "label", "help", "placeholder", "options", "caption", "delta", "text"})
NOT_PROSE = frozenset({"code", "html", "json", "empty", "balloons", "snow", "iframe", "deck_gl_json_chart"})
# Always data: the language switch names each language in itself; the app's name; the device kinds.
DATA = (*LANGUAGES.values(), "cnndash", "CPU", "CUDA", "MPS", "GPU")

_MARKED = re.compile(f"{PSEUDO_OPEN}[^{PSEUDO_OPEN}{PSEUDO_CLOSE}]*{PSEUDO_CLOSE}")
_ESCAPE = re.compile(r"\\(.)")
_CODE = re.compile(r"`[^`]*`|\$\$?[^$]*\$\$?")
_ICON = re.compile(r":[a-z_]+/[a-z_0-9]+:|:[a-z_]+:")
WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more, in any script


def _proto_texts(message, depth: int = 0) -> Iterator[str]:
    if depth > 6:
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None:
            for item in [value] if hasattr(value, "ListFields") else value:
                if hasattr(item, "ListFields"):
                    yield from _proto_texts(item, depth + 1)
        elif descriptor.name in TEXT_FIELDS and descriptor.type == descriptor.TYPE_STRING:
            yield from [value] if isinstance(value, str) else value


def _plotly_texts(spec: str) -> Iterator[str]:
    figure = json.loads(spec)
    layout = figure.get("layout", {})
    for key, part in layout.items():
        if key == "title" or key.startswith(("xaxis", "yaxis", "coloraxis", "legend", "scene")):
            title = part.get("title") if isinstance(part, dict) and key != "title" else part
            text = title.get("text") if isinstance(title, dict) else title
            if isinstance(text, str):
                yield text
    for note in layout.get("annotations", []):
        if isinstance(note.get("text"), str):
            yield note["text"]
    for trace in figure.get("data", []):
        if isinstance(trace.get("name"), str) and trace.get("showlegend", True) is not False:
            yield trace["name"]
        bar = trace.get("colorbar", {}).get("title", {})
        if isinstance(bar, dict) and isinstance(bar.get("text"), str):
            yield bar["text"]


def _table_headers(node) -> list[str]:
    """A table's column headers as shown: the column configuration's label (and help) where one is set."""
    config = json.loads(node.proto.columns) if getattr(node.proto, "columns", "") else {}
    out = []
    for column in node.value.columns:
        settings = config.get(str(column)) or config.get(f"_pos:{column}") or {}
        if settings.get("hidden"):
            continue
        out += [settings.get("label") or str(column), settings.get("help") or ""]
    return out


def visible_text(at: AppTest) -> list[str]:
    """Every string the page shows (order of appearance; empty strings left out)."""
    out: list[str] = []
    for node in at._tree:  # AppTest offers no public walk over every element
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind in NOT_PROSE or proto is None:
            continue
        if kind == "plotly_chart":
            out += _plotly_texts(proto.spec)
        elif kind in ("dataframe", "table", "arrow_data_frame"):
            out += _table_headers(node)
        elif hasattr(proto, "ListFields"):
            out += list(_proto_texts(proto))
    return [t for t in out if t and t.strip()]


def residue(text: str, data: Iterable[str] = ()) -> str:
    """What is left of ``text`` once the marked strings, escapes, code, icons and ``data`` are taken out."""
    text = _ESCAPE.sub(r"\1", text)
    while (shorter := _MARKED.sub(" ", text)) != text:  # innermost first: a marked string inside another
        text = shorter
    text = _ICON.sub(" ", _CODE.sub(" ", text))
    for name in sorted({*DATA, *data}, key=len, reverse=True):
        if name:
            text = text.replace(name, " ")
    return text


def unmarked(at: AppTest, data: Iterable[str] = ()) -> list[str]:
    """The visible strings holding a word (two letters or more) that is neither translated nor data."""
    data = list(data)
    return [text for text in visible_text(at) if WORD.search(residue(text, data))]
