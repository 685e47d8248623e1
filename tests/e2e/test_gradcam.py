"""Grad-CAM in Chromium: open it for a trained run, switch method and layer, watch the overlay change."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.e2e.harness import assert_no_exception, wait_for_app

OVERLAY = "[data-testid='stImage']:has-text('Overlay at') img"


def overlay_src(page) -> str:
    img = page.locator(OVERLAY).first
    img.wait_for(state="visible")
    return img.get_attribute("src")


# Milliseconds for the page to show a new overlay after a change (a CAM on CPU, then a rerun).
OVERLAY_CHANGE_TIMEOUT_MS = 60_000


def overlay_png(page, app_url: str, previous_src: str | None = None) -> bytes:
    """The bytes of the overlay image the page shows (the image captioned 'Overlay at …'); with
    ``previous_src``, first wait until the page shows a different image (the rerun may lag the click)."""
    if previous_src is not None:
        expect(page.locator(OVERLAY).first).not_to_have_attribute(
            "src", previous_src, timeout=OVERLAY_CHANGE_TIMEOUT_MS
        )
    src = overlay_src(page)
    url = src if src.startswith("http") else f"{app_url}{src}"
    response = page.request.get(url)
    assert response.ok, url
    return response.body()


def open_gradcam(page, app_url: str) -> None:
    """Open the page by URL; the first visit imports torch and loads the run, so allow it time."""
    page.goto(f"{app_url}/gradcam")
    wait_for_app(page, timeout=90_000)
    page.get_by_role("heading", name="Grad-CAM").first.wait_for(state="visible", timeout=90_000)
    close_stray_dialog(page)
    page.get_by_text("Prediction:").first.wait_for(state="visible", timeout=90_000)


def close_stray_dialog(page) -> None:
    """Streamlit sometimes shows a "Page not found" modal on a fresh session opened by URL (the page
    itself renders); it makes the page inert, so close it."""
    dialog = page.get_by_role("dialog").first
    try:
        dialog.wait_for(state="visible", timeout=2_000)
    except PlaywrightTimeoutError:
        return
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


def choose(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option).first.click()
    wait_for_app(page)


@pytest.mark.e2e
def test_switch_method_and_layer_changes_the_overlay(page, app_url, e2e_tiny_run, artifacts_dir):
    open_gradcam(page, app_url)
    assert_no_exception(page)
    first_src = overlay_src(page)
    first = overlay_png(page, app_url)
    assert first[:8] == b"\x89PNG\r\n\x1a\n"

    choose(page, "cam-method", "Grad-CAM++")
    assert_no_exception(page)
    second = overlay_png(page, app_url, previous_src=first_src)
    assert second != first  # a different map, not just a new URL
    second_src = overlay_src(page)

    choose(page, "cam-layer", "features.0")
    assert_no_exception(page)
    page.get_by_text("Early layer").first.wait_for(state="visible")
    third = overlay_png(page, app_url, previous_src=second_src)
    assert third not in (first, second)
    page.screenshot(path=str(artifacts_dir / "gradcam-layer-switch.png"), full_page=True)


@pytest.mark.e2e
def test_upload_an_image_and_download_the_overlay(page, app_url, e2e_tiny_run, tmp_path):
    from PIL import Image

    from cnndash.data import generate_shapes

    images, _, _ = generate_shapes(count=3, size=48, seed=5)
    upload = tmp_path / "my shape.png"
    Image.fromarray(images[0]).save(upload)

    open_gradcam(page, app_url)
    page.locator(".st-key-cam-source").get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    page.locator(".st-key-cam-upload input[type=file]").set_input_files(str(upload))
    wait_for_app(page)
    page.get_by_text("Prediction:").first.wait_for(state="visible")
    assert_no_exception(page)
    assert overlay_png(page, app_url)[:4] == b"\x89PNG"

    with page.expect_download() as info:
        page.locator(".st-key-cam-download button").click()
    download = info.value
    assert download.suggested_filename.endswith(".png")
    # the image's name in the file name, made safe for a file system (no spaces, no "#", issue 13.9)
    assert "my-shape" in download.suggested_filename and " " not in download.suggested_filename
    data = Path(download.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(download.path()).size[0] >= 32
