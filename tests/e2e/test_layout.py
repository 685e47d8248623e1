"""Layout checks in a real browser (issue 13, point 9): what a screenshot shows, asserted where a number can
say it, and saved to ``test-artifacts/layout-*.png`` for a person to look at."""

from __future__ import annotations

import re

import pytest

from tests.e2e.harness import assert_no_exception, set_number, wait_for_app
from tests.e2e.test_data import add_step, open_augmentation
from tests.e2e.test_gradcam import open_gradcam

pytestmark = pytest.mark.e2e


def _open(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page, timeout=90_000)
    dialog = page.get_by_role("dialog")
    if dialog.count():  # Streamlit's stray "Page not found" on a deep link (see test_data.open_data_page)
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")
    wait_for_app(page)


def test_calculator_window_zooms_and_stack_flags(page, app_url, artifacts_dir):
    _open(page, f"{app_url}/calculator")
    set_number(page, "conv-in-h", 224)
    set_number(page, "conv-in-w", 224)
    chart = page.locator(".st-key-window-figure")
    title = chart.locator(".g-gtitle, .annotation-text").first
    chart.get_by_text(re.compile("zoomed: rows")).first.wait_for(state="visible")
    assert title.count()
    chart.screenshot(path=str(artifacts_dir / "layout-calculator-window.png"))
    page.get_by_role("tab", name=re.compile("stack", re.I)).first.click()
    wait_for_app(page)
    editor = page.locator("[class*='st-key-stack-editor-']")
    editor.wait_for(state="visible")
    editor.screenshot(path=str(artifacts_dir / "layout-calculator-stack.png"))
    hover_chart = page.locator(".st-key-stack-chart")
    hover_chart.scroll_into_view_if_needed()
    hover_chart.hover()
    hover_chart.screenshot(path=str(artifacts_dir / "layout-calculator-shape-chart-hover.png"))
    assert_no_exception(page)


def test_augmentation_pairs_are_readable(page, app_url, artifacts_dir):
    open_augmentation(page, app_url)
    add_step(page, "RandomResizedCrop")
    step = page.locator("[class*='st-key-aug-step-']").filter(has_text=". RandomResizedCrop").first
    step.screenshot(path=str(artifacts_dir / "layout-augment-random-resized-crop.png"))
    for label in ("scale min", "scale max", "ratio min", "ratio max"):
        box = step.get_by_label(label, exact=True)
        assert box.bounding_box()["width"] >= 120, label  # wide enough for the value next to the steppers
    assert_no_exception(page)


def test_evaluation_outlines_the_clicked_cell(page, app_url, e2e_tiny_run, artifacts_dir):
    _open(page, f"{app_url}/evaluation")
    chart = page.locator(".st-key-eval-cm-chart")
    chart.wait_for(state="visible", timeout=90_000)
    points = chart.locator(".scatterlayer .point")
    k = round(points.count() ** 0.5)
    points.nth(1 * k + 0).click(force=True)  # true class 1, predicted class 0
    wait_for_app(page)
    true, pred = (
        page.locator(f".st-key-{key} input[role='combobox']").input_value()
        for key in ("eval-true", "eval-pred")
    )
    outline = chart.locator(".shapelayer path")
    assert outline.count() == 1
    cell = points.nth(1 * k + 0).bounding_box()
    box = outline.first.bounding_box()
    print("selected", true, pred, "outline", box, "cell", cell)
    assert box["x"] <= cell["x"] + cell["width"] / 2 <= box["x"] + box["width"]
    assert box["y"] <= cell["y"] + cell["height"] / 2 <= box["y"] + box["height"]
    chart.screenshot(path=str(artifacts_dir / "layout-evaluation-selected-cell.png"))
    assert_no_exception(page)


def test_gradcam_filters_are_readable(page, app_url, e2e_tiny_run, artifacts_dir):
    open_gradcam(page, app_url)
    page.locator(".st-key-cam-explore").get_by_text("Filters", exact=True).click()
    wait_for_app(page)
    image = page.locator("[data-testid='stImage'] img").last
    image.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "layout-gradcam-filters.png"), full_page=True)
    assert image.bounding_box()["width"] >= 400
    page.locator(".st-key-cam-explore").get_by_text("Feature maps", exact=True).click()
    wait_for_app(page)
    page.screenshot(path=str(artifacts_dir / "layout-gradcam-feature-maps.png"), full_page=True)
    assert_no_exception(page)


def test_plotly_toolbar_leaves_legends_readable(page, app_url, e2e_tiny_run, artifacts_dir):
    _open(page, f"{app_url}/training")
    chart = page.locator("[class*='-epoch-chart']").first
    chart.wait_for(state="visible", timeout=90_000)
    chart.scroll_into_view_if_needed()
    chart.locator(".legend").first.wait_for(state="visible")  # Plotly draws the legend after the chart
    chart.hover()
    box = chart.bounding_box()
    clip = {"x": box["x"], "y": box["y"] - 40, "width": box["width"], "height": box["height"] + 40}
    page.screenshot(path=str(artifacts_dir / "layout-training-epoch-chart-hover.png"), clip=clip)
    assert chart.locator(".legend").first.is_visible()
    assert not chart.locator(".modebar-container").first.is_visible()  # nothing drawn over the legend
    assert_no_exception(page)


def test_home_cards_line_up(page, app_url, artifacts_dir):
    _open(page, app_url)
    cards = page.locator("[class*='st-key-home-card-']")
    heights = {round(cards.nth(i).bounding_box()["height"]) for i in range(cards.count())}
    page.screenshot(path=str(artifacts_dir / "layout-home.png"), full_page=True)
    assert cards.count() == 6 and len(heights) == 1, heights  # Learn, then the five tools
    for i in range(6):  # nothing cut: every card shows its whole text and its Open link
        card = cards.nth(i)
        link = card.get_by_text("Open", exact=True)
        assert link.is_visible() and link.bounding_box()["y"] + 10 < card.bounding_box()["y"] + max(heights)
    assert_no_exception(page)
