"""The translation catalogues (part of ``make test``): every message id the code marks has a Chinese string,
no catalogue entry is unused, and every ``{placeholder}`` of an id survives in its translation; the
translator falls back to English, marks the pseudo-locale and formats after translating; a typed error
keeps its template and parameters (also across a pickle) and is shown translated by ``ui.user_errors``.
"""

from __future__ import annotations

import pickle
import re

import pytest
from streamlit.testing.v1 import AppTest

from cnndash.errors import UserError
from cnndash.runs.layout import RunError
from cnndash.training.config import ConfigError
from ui import catalogs, i18n

EXTRACTED = catalogs.extract_all()


def _translated(message) -> bool:
    return all(message.string) if message.pluralizable else bool(message.string)


@pytest.mark.parametrize("domain", catalogs.DOMAINS)
def test_every_message_the_code_uses_has_a_chinese_string(domain):
    catalog = catalogs.read_catalog(domain)
    strings = {(m.id[0] if m.pluralizable else m.id): m for m in catalog if m.id}
    missing = [
        msgid for msgid in EXTRACTED[domain] if msgid not in strings or not _translated(strings[msgid])
    ]
    assert missing == [], f"run `make i18n` and translate these in locales/zh_CN/LC_MESSAGES/{domain}.po"


@pytest.mark.parametrize("domain", catalogs.DOMAINS)
def test_no_catalogue_entry_is_unused(domain):
    ids = [(m.id[0] if m.pluralizable else m.id) for m in catalogs.read_catalog(domain) if m.id]
    assert [msgid for msgid in ids if msgid not in EXTRACTED[domain]] == [], "run `make i18n` to drop them"


@pytest.mark.parametrize("domain", catalogs.DOMAINS)
def test_every_placeholder_survives_translation(domain):
    wrong = []
    for m in catalogs.read_catalog(domain):
        if not m.id or not _translated(m):
            continue
        ids = m.id if m.pluralizable else (m.id,)
        wanted = set().union(*(catalogs.placeholders(i) for i in ids))
        for string in m.string if m.pluralizable else (m.string,):
            if catalogs.placeholders(string) != wanted:
                wrong.append((ids[0], string))
    assert wrong == []


def test_every_file_uses_the_translator_of_its_domain():
    """A file's ``_`` is its own domain's translator: its message ids are extracted into that domain's
    catalogue. (Another domain's translator under another name may translate text marked elsewhere: the
    engine's N_ strings, the calculator's figure shown on Learn.)"""
    uses = re.compile(r"""^_ = .*translator\(\s*["'](\w+)["']\s*\)""", re.MULTILINE)
    wrong = [
        (path.name, used, catalogs.domain_of(path))
        for path in catalogs.sources()
        for used in uses.findall(path.read_text(encoding="utf-8"))
        if used != catalogs.domain_of(path)
    ]
    assert wrong == []


def test_the_errors_not_yet_templated_are_real_user_errors():
    assert set(catalogs.error_domains()) >= catalogs.NOT_YET_TEMPLATED


@pytest.fixture
def in_language(monkeypatch):
    def use(lang: str) -> None:
        monkeypatch.setattr(i18n, "language", lambda: lang)

    return use


def test_english_is_the_message_id_and_chinese_comes_from_the_catalogue(in_language):
    _ = i18n.translator("common")
    in_language("en")
    assert _("Compute device") == "Compute device"
    in_language("zh-CN")
    assert _("Compute device") == "计算设备"
    assert _("Not in any catalogue: {x}", x=3) == "Not in any catalogue: 3"  # falls back to English


def test_the_pseudo_locale_marks_the_whole_string_with_parameters_inside(in_language):
    in_language(i18n.PSEUDO)
    _ = i18n.translator("common")
    assert _("Stored as {name}: {n}", name="pets", n=3) == "⟦Stored as pets: 3⟧"
    assert _.plural("{n} image", "{n} images", 2) == "⟦2 images⟧"


def test_plural_picks_the_english_form_and_formats_n(in_language):
    in_language("en")
    _ = i18n.translator("data")
    assert _.plural("{n} image in {name}", "{n} images in {name}", 1, name="a") == "1 image in a"
    assert _.plural("{n} image in {name}", "{n} images in {name}", 5, name="a") == "5 images in a"


def test_a_translation_that_does_not_format_falls_back_to_the_english(in_language, monkeypatch):
    in_language("zh-CN")
    monkeypatch.setitem(i18n.catalog("zh-CN", "common"), "Hello {name}", "你好 {nom}")
    assert i18n.translator("common")("Hello {name}", name="x") == "Hello x"


def test_the_browser_picks_the_first_language():
    assert i18n.preferred_language("zh-CN") == "zh-CN"
    assert i18n.preferred_language("zh_TW") == "zh-CN"
    assert i18n.preferred_language("en-GB") == "en"
    assert i18n.preferred_language(None) == "en"


def test_a_user_error_keeps_its_template_and_parameters():
    exc = RunError("No run named {name} in {folder}.", name="a{b}", folder="/tmp")
    assert str(exc) == "No run named a{b} in /tmp." and isinstance(exc, ValueError)
    assert exc.template == "No run named {name} in {folder}." and exc.params == {
        "name": "a{b}",
        "folder": "/tmp",
    }
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is RunError and str(copy) == str(exc) and copy.params == exc.params
    legacy = RunError("already formatted {not a field}")  # one message, as before: kept as it is
    assert str(legacy) == "already formatted {not a field}" and legacy.params == {}


def test_a_config_error_keeps_its_field_across_a_pickle():
    exc = ConfigError("The learning rate {lr} is too high.", "lr", lr=50)
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.field, str(copy), copy.params) == ("lr", "The learning rate 50 is too high.", {"lr": 50})


def _raise_user_error():
    import streamlit as st

    import ui
    from cnndash.errors import UserError

    with ui.user_errors():
        st.write("before")
        raise UserError("Nothing in **{name}**.", name="*x*")


def test_user_errors_shows_the_template_translated_with_its_parameters_escaped():
    at = AppTest.from_function(_raise_user_error)
    at.query_params["lang"] = i18n.PSEUDO
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [r"⟦Nothing in \*\*\*x\*\*\*.⟧"]
    assert UserError.domain == "engine"


def _language_shown():
    import streamlit as st

    from ui import i18n

    st.write(i18n.language())


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({}, "en"),
        ({"lang": "zh-CN"}, "zh-CN"),
        ({"lang": "qps"}, "qps"),
        ({"lang": "fr"}, "en"),
        ({"lang": "../x"}, "en"),
    ],
)
def test_the_language_comes_from_the_url_and_a_bogus_one_falls_back(query, shown):
    at = AppTest.from_function(_language_shown)
    at.query_params.update(query)
    at.run()
    assert at.markdown[0].value == shown


def test_a_calculator_error_is_shown_in_chinese_with_its_axis_translated(in_language):
    from cnndash import arith
    from ui.state import error_text

    with pytest.raises(arith.ShapeError) as caught:
        arith.conv_output_size((5, 40), kernel_size=7)
    assert str(caught.value).startswith("the kernel (7 px along the height")  # the CLI's English
    in_language("zh-CN")
    shown = error_text(caught.value)
    assert shown.startswith("卷积核（在高度方向上，卷积核 7、膨胀 1，共 7 像素）"), shown
    in_language(i18n.PSEUDO)
    assert error_text(caught.value).startswith("⟦the kernel (7 px along the ⟦height⟧")


def test_a_stack_diagnosis_is_english_for_the_cli_and_chinese_on_the_page(in_language):
    """The trace keeps its English ``diagnosis`` (shared/API.md) and gives the page its ``why`` to translate,
    down to the nested window problem and the suggested input."""
    from cnndash.stack import trace_stack
    from ui.state import phrase_text

    rows = [{"layer": "Conv2d", "in": 1, "out": 4, "kernel": "5"}, {"layer": "MaxPool2d", "kernel": "4"}]
    trace = trace_stack(rows, (1, 6, 6))
    assert not trace.ok and trace.diagnosis == str(trace.why)
    assert "cannot work on its 2×2 input" in trace.diagnosis
    in_language("zh-CN")
    shown = phrase_text(trace.why, "calculator")
    assert "无法处理它收到的 2×2 输入" in shown and "窗口" in shown, shown
    assert not _WORDS_OF_A_SENTENCE.search(shown.replace("MaxPool2d", "")), shown


_WORDS_OF_A_SENTENCE = re.compile(r"[A-Za-z]{3,} [A-Za-z]{3,}")  # two English words in a row


def test_a_lesson_error_is_shown_in_chinese_with_the_calculator_words_inside_it(in_language):
    from cnndash.lessons import convolution
    from cnndash.lessons.errors import LessonError
    from ui.state import error_text

    with pytest.raises(LessonError) as too_big:
        convolution.correlation_lesson([[1, 2], [3, 4]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    with pytest.raises(LessonError) as no_room:
        convolution.padding_lesson(2, 7, 0, 1)
    assert (
        str(too_big.value)
        == "The kernel has 3 rows but the input only 2; make the kernel smaller or the input larger."
    )
    assert str(no_room.value).startswith("The kernel (7 px along the height")  # a sentence, as before
    in_language("zh-CN")
    assert error_text(too_big.value) == "卷积核有 3 行，但输入只有 2 行；请把卷积核改小，或把输入改大。"
    assert error_text(no_room.value).startswith("卷积核（在高度方向上，卷积核 7、膨胀 1，共 7 像素）")


def test_a_layer_stack_row_error_names_the_row_and_column_in_chinese(in_language):
    from cnndash.stack import LayerSpecError, resolve_stack
    from ui.state import error_text

    with pytest.raises(LayerSpecError) as caught:
        resolve_stack([{"layer": "Conv2d", "in": 1, "out": 4}], (1, 8, 8))
    assert str(caught.value) == "row 1 (Conv2d), column 'kernel' is empty: enter the kernel size"
    in_language("zh-CN")
    assert error_text(caught.value) == "第 1 行（Conv2d）的“kernel”列为空：请填写卷积核大小"


def test_an_engine_error_and_an_engine_phrase_are_said_in_chinese(in_language):
    from cnndash.data import DatasetError
    from cnndash.data.builtin import generate_shapes
    from cnndash.models import auto_image_size
    from ui.engine_text import engine_text

    with pytest.raises(DatasetError) as caught:
        generate_shapes(count=2)  # raised by the engine, as a page would catch it
    english = str(caught.value)
    assert english == "shapes count must be between 3 and 100000, got 2."  # the English text is unchanged
    in_language("zh-CN")
    assert engine_text(caught.value) == "shapes 的 count 必须在 3 到 100000 之间，实际为 2。"
    _side, reason = auto_image_size("lenet", (8, 8))  # a Phrase: the English string, its template kept
    assert reason == "the dataset's 8 px images are upsampled to lenet's range (28 px)"
    assert engine_text(reason) == "数据集的 8 像素图像被放大到 lenet 的范围（28 像素）"
    in_language("en")
    assert engine_text(caught.value) == english


def test_an_error_carried_inside_another_is_said_in_chinese_too(in_language, tmp_path):
    """A typed error inside another's message ("{exc} Remove or replace it.", as the archive import says of an
    image that does not decode) is translated too: no English sentence of ours hides in a Chinese one."""
    from cnndash.data.images import DatasetError, open_image_file
    from ui.engine_text import engine_text

    path = tmp_path / "cat.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG signature, then nothing PIL can read
    with pytest.raises(DatasetError) as caught:
        open_image_file(path, "RGB")
    outer = DatasetError("{exc} Remove or replace it.", exc=caught.value)
    assert str(outer).startswith(f"{path} does not decode as an image: ")  # the English is unchanged
    in_language("zh-CN")
    said = engine_text(outer)
    assert said.startswith(f"{path} 无法解码为图像：") and said.endswith("请移除或替换它。"), said


def _tabs_in_two_languages():
    import streamlit as st

    from ui.state import kept_tabs

    chinese = {"Confusion matrix": "混淆矩阵", "Report": "报告"}
    tr = chinese.__getitem__ if st.session_state.get("zh") else str
    for tab_id, tab in zip(chinese, kept_tabs(list(chinese), "demo-tab", tr), strict=True):
        if tab.open:
            with tab:
                st.write(f"open: {tab_id}")


def test_the_open_tab_stays_open_when_a_language_switch_renames_the_tabs():
    """Streamlit knows a tab set by its labels: a language switch renames them, and the set would fall back
    to its first tab (as the Evaluation page's and the calculator's did). ui.kept_tabs opens the same tab."""
    at = AppTest.from_function(_tabs_in_two_languages)
    at.run()
    assert [m.value for m in at.markdown] == ["open: Confusion matrix"]
    at.session_state["demo-tab"] = "Report"  # as a click on the second tab does
    at.run()
    assert [m.value for m in at.markdown] == ["open: Report"]
    at.session_state["zh"] = True  # the switch: the next run is in Chinese
    at.run()
    assert [t.label for t in at.tabs] == ["混淆矩阵", "报告"]
    assert [m.value for m in at.markdown] == ["open: Report"] and at.session_state["demo-tab"] == "报告"
    at.session_state["zh"] = False
    at.run()
    assert [m.value for m in at.markdown] == ["open: Report"] and at.session_state["demo-tab"] == "Report"
