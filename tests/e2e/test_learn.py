"""Chromium journey through the Learn page: open it from the sidebar, step a window, visit every lesson."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.harness import assert_no_exception, wait_for_app

LESSONS = [
    "1 · Cross-correlation step by step",
    "2 · Learning a kernel",
    "3 · Padding and stride",
    "4 · Channels",
    "5 · Convolution as matrix multiplication",
    "6 · Pooling",
    "7 · Normalisation layers",
    "8 · Dropout in train and eval",
    "9 · Classic networks",
    "10 · What a trained network sees",
]


def _choose(page, key: str, option: str) -> None:
    """Pick an option of a selectbox; reopen the list if a rerun closed it under the click."""
    combobox = page.locator(f".st-key-{key} [role='combobox']")
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        combobox.click()
        try:
            choice.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeout:
            wait_for_app(page)
            continue
        choice.click()
        break
    wait_for_app(page)
    assert combobox.input_value() == option


def _has_katex(page, text: str) -> None:
    page.wait_for_function(
        "(text) => [...document.querySelectorAll('.katex')].some(k => k.innerText.replace(/\\s/g, '').includes(text))",
        arg=text,
    )


@pytest.mark.e2e
def test_every_lesson_renders_and_the_window_steps(page, app_url, artifacts_dir, e2e_tiny_run):
    page.set_viewport_size({"width": 1400, "height": 1800})  # tall: the screenshots show a whole lesson
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Learn", exact=True).click()
    wait_for_app(page)
    page.get_by_role("heading", name="Learn").first.wait_for(state="visible")
    assert_no_exception(page)

    _has_katex(page, "=19")  # the tutorial's first window: 0·0 + 1·1 + 3·2 + 4·3
    thumb = page.get_by_role("slider").first  # the lesson's only slider: the window position
    thumb.focus()
    thumb.press("ArrowRight")
    wait_for_app(page)
    _has_katex(page, "=25")

    for number, lesson in enumerate(LESSONS, start=1):
        _choose(page, "learn-lesson", lesson)
        page.get_by_text("What to notice.").first.wait_for(state="visible")
        assert_no_exception(page)
        assert page.locator("[data-testid='stAlertContentError']").count() == 0, lesson
        if number == len(LESSONS):  # the image, its filters and its feature maps arrive after the run
            page.locator("[data-testid='stImage'] img").nth(2).wait_for(state="visible")
            page.wait_for_function(
                "() => [...document.querySelectorAll('[data-testid=stImage] img')]"
                ".every(i => i.complete && i.naturalWidth > 0)"
            )
        page.screenshot(path=str(artifacts_dir / f"learn-{number}.png"), full_page=True)
    assert page.locator("[data-testid='stImage'] img").count() == 3  # the image, its filters, its maps
