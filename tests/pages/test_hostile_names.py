"""Every page on the hostile-names dataset (tests/fixtures.py) through AppTest: class, file, dataset and run
names reach the page as text — escaped wherever Streamlit reads Markdown, inert in every Plotly figure, and
never inside HTML the page lets through (``unsafe_allow_html``, ``st.html``).

Where Streamlit reads Markdown: markdown, captions, headings, alerts, toasts, image captions, widget labels
and help, expander, tab and popover labels, metric labels, radio options, progress texts and ``st.table``
cells. The check is on the element tree the browser receives: every occurrence of a hostile name there must
have each of its Markdown characters backslash-escaped (an occurrence escaped only in part fails), and the
names the page shows must occur at least once (a page that silently dropped them would pass otherwise).
``tests/e2e/test_hostile_names.py`` checks the rendered DOM in Chromium.
"""

from __future__ import annotations

import io
import json
import re
import shutil

from google.protobuf.json_format import MessageToDict
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnndash.text import MARKDOWN_SPECIALS, visible_controls
from tests.conftest import ROOT
from tests.fixtures import (
    HOSTILE_CLASSES,
    HOSTILE_DATASET,
    HOSTILE_FILES,
    HOSTILE_RUN,
    HOSTILE_TEXTS,
    hostile_names_zip,
)

MARKDOWN_KEYS = {"body", "label", "help", "caption", "text", "placeholder"}
MARKDOWN_OPTIONS = {"radio", "button_group"}  # widgets whose options are Markdown (selectbox's are plain)
HTML_TYPES = {"html"}
ASCII_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
PLOTLY_MARKUP = re.compile(r"<(?!br>|/?extra>)|\$")  # Plotly tags other than the figures' own, or LaTeX


def _name_pattern(name: str) -> re.Pattern:
    """``name`` as shown (controls visible), each ASCII punctuation optionally backslash-escaped; the groups
    capture the backslash before each Markdown special character."""
    parts = []
    for ch in visible_controls(name):
        if ch in MARKDOWN_SPECIALS:
            parts.append(r"(\\)?" + re.escape(ch))
        elif ch in ASCII_PUNCTUATION:
            parts.append(r"(?:\\)?" + re.escape(ch))
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts))


PATTERNS = {name: _name_pattern(name) for name in HOSTILE_TEXTS}


def _strings(node_type: str, value, key: str = "") -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(node_type, v, k)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(node_type, v, key)]
    markdown = key in MARKDOWN_KEYS or (key == "options" and node_type in MARKDOWN_OPTIONS)
    return [value] if isinstance(value, str) and markdown else []


def markdown_texts(at: AppTest) -> list[str]:
    """Every string of the page that Streamlit renders as Markdown."""
    found: list[str] = []
    for node in at._tree:
        proto, node_type = getattr(node, "proto", None), getattr(node, "type", "")
        if proto is None or node_type in ("plotly_chart", "dataframe", "code", "json", "exception"):
            continue
        if node_type == "table":  # st.table renders its cells as Markdown
            found += [str(cell) for cell in node.value.to_numpy().ravel()]
            continue
        found += _strings(node_type, MessageToDict(proto))
    return found


def _html_bodies(at: AppTest) -> list[str]:
    bodies = [node.proto.body for node in at._tree if getattr(node, "type", "") in HTML_TYPES]
    bodies += [m.value for m in at.markdown if m.proto.allow_html]
    return bodies


def _figure_texts(at: AppTest) -> list[str]:
    texts: list[str] = []

    def walk(node, key=""):
        if key == "customdata":
            return
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str):
            texts.append(node)

    for chart in at.get("plotly_chart"):
        walk(json.loads(chart.proto.spec))
    return texts


def assert_names_are_text(at: AppTest, shown: list[str], *, at_least: int = 0) -> None:
    """No hostile name is Markdown, HTML or Plotly markup on the page; every name in ``shown`` is there, and
    at least ``at_least`` different hostile names in all (where which ones depends on the trained model)."""
    assert not at.exception, [e.value for e in at.exception]
    texts = markdown_texts(at)
    for name, pattern in PATTERNS.items():
        for text in texts:
            for match in pattern.finditer(text):
                assert all(group for group in match.groups()), f"{name!r} is not escaped in {text!r}"
    present = {name for name, pattern in PATTERNS.items() if any(pattern.search(text) for text in texts)}
    assert not set(shown) - present, f"not shown: {set(shown) - present}"
    assert len(present) >= at_least, f"only {sorted(present)} shown"
    for body in _html_bodies(at):
        assert not any(visible_controls(name)[:12] in body for name in HOSTILE_TEXTS), body[:200]
    for text in _figure_texts(at):
        assert not PLOTLY_MARKUP.search(re.sub(r"<br>|</?extra>", "", text)), text


def open_page(page: str, state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.run()
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.switch_page(page)
    return at.run()


def _png(colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), colour).save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# The pages


def test_data_page(hostile_home, tmp_path):
    at = open_page("pages/data_augmentation.py", {"data-dataset": HOSTILE_DATASET})
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [*HOSTILE_CLASSES, HOSTILE_DATASET])  # class table, gallery, delete checkbox
    # The upload path: the same zip, stored next to the first; its success message names it.
    archive = hostile_names_zip(tmp_path / "hostile.zip").read_bytes()
    at.get("file_uploader")[0].set_value(("[x](https:evil.example).zip", archive, "application/zip")).run()
    assert_names_are_text(at, HOSTILE_CLASSES)
    # Augmentation: a dataset image's caption names its class; Normalize offers the dataset's statistics.
    at.radio(key="data-section").set_value("Augmentation").run()
    at.radio(key="aug-source").set_value("Dataset image").run()
    at.selectbox(key="aug-dataset").set_value(HOSTILE_DATASET).run()
    at.selectbox(key="aug-add-op").set_value("Normalize")
    at.button(key="aug-add").click().run()
    assert_names_are_text(at, [HOSTILE_DATASET, HOSTILE_CLASSES[0]])


def test_training_page_and_runs_tab(hostile_home):
    runs_dir = hostile_home[1]
    shutil.copytree(runs_dir / HOSTILE_RUN, runs_dir / f"{HOSTILE_RUN} copy")  # two runs to compare
    at = open_page("pages/training.py", {"train-dataset": HOSTILE_DATASET, "runs-target": HOSTILE_RUN})
    assert not at.error, [e.value for e in at.error]
    # The newest run's results show its name; the Runs tab: table, curves, comparison, export panel.
    at.button(key=f"runs-export-build-{HOSTILE_RUN}").click().run()  # the export panel lists the classes
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [HOSTILE_RUN, *HOSTILE_CLASSES])


def test_evaluation_page_every_tab(hostile_home):
    at = open_page("pages/evaluation.py")
    assert at.selectbox(key="eval-run").value == HOSTILE_RUN
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [], at_least=2)  # the cell's sentence, its captions, the top classes
    for tab in ("Report", "Top losses", "Learning curves"):
        at.session_state["eval-tab"] = tab
        at.run()
        assert not at.error, (tab, [e.value for e in at.error])
        assert_names_are_text(at, [])
    at.session_state["eval-tab"] = "Predict"
    at.run()
    uploads = [(f"{name}.png", _png(), "image/png") for name in HOSTILE_FILES[:4]]
    at.get("file_uploader")[0].set_value(uploads).run()
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [HOSTILE_FILES[0]])  # the detail image's caption
    at.session_state["eval-tab"] = "Data"
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [], at_least=3)  # suggestion cards: given → suggested, paths, Relabel as …


def test_gradcam_page(hostile_home):
    at = open_page("pages/grad_cam.py")
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [], at_least=1)  # the verdict and captions name classes (which: the model's)
    at.radio(key="cam-explore").set_value("Confident mistakes").run()
    assert not at.error, [e.value for e in at.error]
    assert_names_are_text(at, [], at_least=2)  # "#3: true → predicted" under each tile
    at.radio(key="cam-source").set_value("Upload").run()
    at.get("file_uploader")[0].set_value((f"{HOSTILE_FILES[1]}.png", _png(), "image/png")).run()
    assert_names_are_text(at, [HOSTILE_FILES[1]])


def test_learn_page_trained_network(hostile_home):
    at = open_page("pages/learn.py", {"learn-lesson": "10 · What a trained network sees"})
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="learn-run").value == HOSTILE_RUN
    # A selectbox shows plain text: the name as it is, its right-to-left override shown, not obeyed.
    assert visible_controls(HOSTILE_RUN) in at.selectbox(key="learn-run").options
    assert "\u202e" not in "".join(at.selectbox(key="learn-run").options)
    assert_names_are_text(at, [])


# --------------------------------------------------------------------------------------------------
# ui/text.py itself (loaded from its file: importing the ``ui`` package outside a script run would break
# the st.Page objects later AppTests use)


def _ui_text():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ui_text_under_test", ROOT / "ui" / "text.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_text_md_and_plain():
    from hypothesis import given
    from hypothesis import strategies as st

    from cnndash.text import ISOLATE, POP_ISOLATE

    ui_text = _ui_text()
    assert ui_text.text(":material/home: x") == r"\:material/home\: x"  # both colons: no icon
    assert ui_text.text("# title") == r"\# title" and ui_text.text("12) item") == r"12\) item"
    assert ui_text.text("1. item") == r"1\. item" and ui_text.text("- item") == r"\- item"
    assert ui_text.text("שלום") == ISOLATE + "שלום" + POP_ISOLATE
    assert ui_text.text("a\u202eb\nc") == "a⟨U+202E⟩b c"
    assert (
        ui_text.md("**{n}** of **{cls}** at {p:.0%}", n=3, cls="_x_", p=0.5) == r"**3** of **\_x\_** at 50%"
    )
    assert ui_text.plain("*a*\u202e") == "*a*⟨U+202E⟩"  # plain text: nothing escaped, controls shown

    @given(st.text())
    def every_special_is_escaped(value):
        escaped = ui_text.text(value).removeprefix(ISOLATE).removesuffix(POP_ISOLATE)
        shown, k = [], 0  # read it as Markdown does: a backslash escapes the character after it
        while k < len(escaped):
            if escaped[k] == "\\":
                shown.append(escaped[k + 1])
                k += 2
            else:
                assert escaped[k] not in MARKDOWN_SPECIALS, (value, escaped)
                shown.append(escaped[k])
                k += 1
        assert "".join(shown) == visible_controls(value)

    every_special_is_escaped()
