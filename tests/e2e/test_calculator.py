"""Chromium journeys on the conv calculator: change the stride, load LeNet, break its Linear layer."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.harness import assert_no_exception, wait_for_app


def _metric(page, label: str, tab: str = "Single layer"):
    panel = page.get_by_role("tabpanel", name=tab)
    return panel.locator("[data-testid='stMetric']").filter(has_text=label).first


def _open(page, app_url: str) -> None:
    """Open the page by URL. Streamlit 1.67 may answer a deep link in a fresh session with a "Page not
    found" dialog while rendering the right page (the pages register during that first run); the dialog
    makes the page inert, so close it."""
    page.goto(f"{app_url}/calculator")
    wait_for_app(page)
    page.get_by_role("heading", name="Conv calculator").first.wait_for(state="visible")
    dialog = page.get_by_role("dialog")
    if dialog.count() and dialog.first.is_visible():
        assert "Page not found" in dialog.first.inner_text()
        page.keyboard.press("Escape")
        dialog.first.wait_for(state="hidden")
    wait_for_app(page)


@pytest.mark.e2e
def test_changing_the_stride_changes_the_output_size(page, app_url, artifacts_dir):
    _open(page, app_url)
    shape = _metric(page, "Output shape")
    assert "8×35×48" in shape.inner_text()
    stride = page.locator(".st-key-conv-stride input")
    stride.fill("2")
    stride.press("Enter")
    wait_for_app(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetric]')].some(m => m.innerText.includes('8×18×24'))"
    )
    assert "8×18×24" in shape.inner_text()
    # The formula is re-rendered with the new stride as its denominator.
    assert page.locator(".katex").first.inner_text().count("18") >= 1
    assert_no_exception(page)
    page.screenshot(path=str(artifacts_dir / "calculator-stride.png"), full_page=True)


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


ROW_HEIGHT_PX = 35  # the stack editor's fixed row height (ui/calculator/layer_stack.py), header included


def _edit_cell(page, row: int, x_offset: int, text: str) -> None:
    """Open a cell of the layer-stack editor and replace its value.

    The page fixes the row height (35 px, header included) and the column widths (layer 150 px, in
    70 px), so x_offset 218 lands in the "in" column whatever the width of the row-marker column.
    The grid may still be mounting after a rerun, so retry until its cell editor opens.
    """
    grid = page.locator("[class*='st-key-stack-editor'] [data-testid='stDataFrame']").first
    editor = page.locator("#portal input, #portal textarea").first
    for _ in range(5):
        wait_for_app(page)
        grid.wait_for(state="visible")
        box = grid.bounding_box()
        page.mouse.click(box["x"] + x_offset, box["y"] + ROW_HEIGHT_PX * (row + 1) + ROW_HEIGHT_PX // 2)
        page.keyboard.press("Enter")  # opens the selected cell's editor
        try:
            editor.wait_for(state="visible", timeout=3_000)
            break
        except PlaywrightTimeout:
            continue
    editor.fill(text)
    editor.press("Enter")


@pytest.mark.e2e
def test_lenet_preset_final_shape_and_broken_linear_diagnosis(page, app_url, artifacts_dir):
    _open(page, app_url)
    page.get_by_role("tab", name="Layer stack").click()
    _choose(page, "stack-preset", "LeNet-5 (3×32×32)")
    success = page.locator("[data-testid='stAlertContentSuccess']").filter(has_text="Output shape")
    success.wait_for(state="visible")
    assert "1×10" in success.inner_text()
    assert "62,006" in _metric(page, "Parameters", tab="Layer stack").inner_text()
    assert_no_exception(page)

    # Row 7 is the first Linear (400 -> 120); its "in" cell is in_features. Type 300 over it.
    _edit_cell(page, row=7, x_offset=218, text="300")
    wait_for_app(page)
    error = page.locator("[data-testid='stAlertContentError']").filter(has_text="in_features")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "expects 300 input features but receives 16×5×5 = 400" in text
    assert "in_features=400" in text
    assert_no_exception(page)
    page.screenshot(path=str(artifacts_dir / "calculator-broken-linear.png"), full_page=True)
