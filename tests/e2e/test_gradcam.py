"""Grad-CAM in Chromium: open it for a trained run, switch method and layer, watch the overlay change."""

from __future__ import annotations

import pytest

from tests.conftest import make_tiny_run
from tests.e2e.conftest import assert_no_exception, wait_for_app


def overlay_png(page, app_url: str) -> bytes:
    """The bytes of the overlay image the page shows (the image captioned 'Overlay at …')."""
    img = page.locator("[data-testid='stImage']").filter(has_text="Overlay at").locator("img").first
    img.wait_for(state="visible")
    src = img.get_attribute("src")
    url = src if src.startswith("http") else f"{app_url}{src}"
    response = page.request.get(url)
    assert response.ok, url
    return response.body()


def close_stray_dialog(page) -> None:
    """Streamlit sometimes shows a "Page not found" modal on a fresh session opened by URL (the page
    itself renders); it makes the page inert, so close it."""
    dialog = page.get_by_role("dialog")
    if dialog.count() and dialog.first.is_visible():
        page.keyboard.press("Escape")
        dialog.first.wait_for(state="hidden")


def choose(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option).first.click()
    wait_for_app(page)


@pytest.mark.e2e
def test_switch_method_and_layer_changes_the_overlay(page, app_url, e2e_runs_dir, artifacts_dir):
    make_tiny_run(e2e_runs_dir, "tiny")
    page.goto(f"{app_url}/gradcam")
    wait_for_app(page)
    page.get_by_role("heading", name="Grad-CAM").first.wait_for(state="visible")
    close_stray_dialog(page)
    assert_no_exception(page)
    page.get_by_text("Prediction:").first.wait_for(state="visible")
    first = overlay_png(page, app_url)
    assert first[:8] == b"\x89PNG\r\n\x1a\n"

    choose(page, "cam-method", "Grad-CAM++")
    assert_no_exception(page)
    second = overlay_png(page, app_url)
    assert second != first

    choose(page, "cam-layer", "features.0")
    assert_no_exception(page)
    page.get_by_text("Early layer").first.wait_for(state="visible")
    third = overlay_png(page, app_url)
    assert third not in (first, second)
    page.screenshot(path=str(artifacts_dir / "gradcam-layer-switch.png"), full_page=True)
