"""Chromium: the app in the pseudo-locale and in 简体中文 (issue 25). A page opened with ``?lang=qps`` shows no
text in its DOM outside ``⟦…⟧`` beyond data (numbers, code, names); the sidebar's language switch turns the
calculator into Chinese in one rerun, keeps its numbers and puts ``?lang=zh-CN`` in the URL, which a reload
keeps; a browser set to Chinese gets Chinese first. Screenshots: ``test-artifacts/i18n-*.png``.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import assert_no_exception, new_context, set_number, wait_for_app
from tests.pages.pseudo import WORD, residue

# Words Streamlit itself draws (library output, not the app's): its toolbar and widget hints.
STREAMLIT_WORDS = ["Skip to main content", "Deploy", "Press Enter to apply", "Running...", "Stop"]
DATA_CALCULATOR = ["Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "ceil_mode", "same", "valid",
                   "LeNet-5", "china.jpg", "flower.jpg", "Grad-CAM", "nn.Conv2d", "F.conv2d"]  # fmt: skip


def _shot(page, artifacts_dir: Path, step: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"i18n-{step}.png"), full_page=True)


# The app's rendered text (innerText: what is visible, line by line), read with Material icons (their
# ligature names are text: "home") and KaTeX formulas (math, whose \\text{out} is a symbol) hidden.
_VISIBLE_TEXT = """() => {
  const style = document.createElement('style');
  style.textContent = '[data-testid="stIconMaterial"], .katex { display: none !important; }';
  document.head.appendChild(style);
  try { return document.querySelector('[data-testid="stApp"]').innerText; } finally { style.remove(); }
}"""


def _visible_lines(page) -> list[str]:
    """Every line of text the app shows now (its main area and sidebar, as rendered)."""
    return [line.strip() for line in page.evaluate(_VISIBLE_TEXT).splitlines() if line.strip()]


def test_a_page_in_the_pseudo_locale_shows_only_marked_text_and_data(page, app_url, artifacts_dir):
    page.goto(f"{app_url}/calculator?lang=qps")
    wait_for_app(page, timeout=90_000)
    page.locator(".st-key-conv-stride input").wait_for(timeout=90_000)
    page.locator(".stPlotlyChart .main-svg").first.wait_for(timeout=60_000)
    assert_no_exception(page)
    _shot(page, artifacts_dir, "qps-calculator")
    lines = _visible_lines(page)
    assert any(line.startswith("⟦") for line in lines), lines[:20]
    left = [line for line in lines if WORD.search(residue(line, [*DATA_CALCULATOR, *STREAMLIT_WORDS]))]
    assert left == [], left


def test_the_language_switch_keeps_the_calculator_and_goes_into_the_url(page, app_url, artifacts_dir):
    page.goto(f"{app_url}/calculator?lang=en")
    wait_for_app(page, timeout=90_000)
    set_number(page, "conv-stride", 3)
    set_number(page, "conv-in-h", 41)
    page.get_by_role("heading", name="Conv calculator").first.wait_for()
    page.locator(".st-key-app-language").get_by_text("简体中文").click()
    wait_for_app(page)
    page.get_by_role("heading", name="卷积计算器").first.wait_for()
    assert_no_exception(page)
    _shot(page, artifacts_dir, "switched-calculator")
    assert "lang=zh-CN" in page.url, page.url
    assert page.locator(".st-key-conv-stride input").input_value() == "3"
    assert page.locator(".st-key-conv-in-h input").input_value() == "41"
    nav = page.get_by_test_id("stSidebarNav")
    assert nav.get_by_role("link", name="卷积计算器", exact=True).count() == 1
    assert "步幅" in page.locator(".st-key-conv-stride").inner_text()
    link = page.url
    page.goto(link)  # a reload (a new session reads the URL): still Chinese, still stride 3
    wait_for_app(page, timeout=90_000)
    page.get_by_role("heading", name="卷积计算器").first.wait_for()
    page.locator(".st-key-conv-stride input").wait_for()
    assert page.locator(".st-key-conv-stride input").input_value() == "3", link


def test_a_browser_set_to_chinese_gets_chinese_first(browser, app_url, artifacts_dir):
    context = new_context(browser, locale="zh-CN")
    try:
        page = context.new_page()
        page.goto(app_url)
        wait_for_app(page, timeout=90_000)
        page.get_by_role("heading", name="cnndash").first.wait_for()
        assert page.get_by_text("工作流程").count() == 1
        assert "lang=" not in page.url  # the browser's choice is not a choice the person made
        _shot(page, artifacts_dir, "browser-chinese-home")
    finally:
        context.close()
