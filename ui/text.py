"""Text from uploads, shown as text: class names, file names and dataset names never become Markdown,
HTML, icons or LaTeX on a page."""

from __future__ import annotations

# What Streamlit's Markdown (in st.markdown, alerts, captions and widget labels) gives a meaning inline:
# CommonMark's emphasis, code, links and images ('[' starts both, so '(' and ')' are harmless), HTML and
# entities, GFM's strikethrough and tables, and '$' (LaTeX). A ':' followed by a non-space can open an
# emoji, a :material/…: icon or a :red[…] directive. At the start of a line '#', '+', '-', '>', '=' and
# '.' after digits also count (headings, lists, quotes), so a leading one is escaped as well.
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]<>|~$&")
_LINE_START_SPECIALS = frozenset("#+->=")


def text(value: object) -> str:
    """``value`` as literal text inside Markdown: class names, file names and other strings from uploads
    are shown as they are, never read as Markdown, HTML, icons or LaTeX. Newlines become spaces."""
    plain = " ".join(str(value).splitlines())
    out = []
    for k, ch in enumerate(plain):
        opens_colon = ch == ":" and k + 1 < len(plain) and not plain[k + 1].isspace()
        out.append("\\" + ch if ch in _MARKDOWN_SPECIALS or opens_colon else ch)
    escaped = "".join(out)
    if escaped[:1] in _LINE_START_SPECIALS:
        escaped = "\\" + escaped
    elif escaped.split(".", 1)[0].isdigit():
        escaped = escaped.replace(".", "\\.", 1)
    return escaped
