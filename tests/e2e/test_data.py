"""Chromium journeys on the Data & augmentation page: upload a zip, build a pipeline, export its code."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from cnndash.data import delete_dataset, list_datasets, load_dataset
from tests.e2e.harness import assert_no_exception, wait_for_app

PREVIEW_IMAGES = ".st-key-aug-preview [data-testid='stImage'] img"
# Milliseconds for a changed pipeline to show new augmented samples (the rerun draws 8 of them).
NEW_GRID_TIMEOUT_MS = 30_000


@pytest.fixture
def uploaded_datasets(e2e_data_dir) -> Iterator[Path]:
    """The server's data folder; datasets the test stores there through the page are deleted afterwards."""
    before = set(list_datasets(e2e_data_dir))
    yield e2e_data_dir
    for name in set(list_datasets(e2e_data_dir)) - before:
        delete_dataset(name, data_dir=e2e_data_dir)


def make_zip(path: Path) -> Path:
    """A small image-folder zip: 5 cats, 4 dogs (16×16 PNGs) plus macOS metadata to be skipped."""
    with zipfile.ZipFile(path, "w") as zf:
        for k, (cls, n) in enumerate({"cat": 5, "dog": 4}.items()):
            for i in range(n):
                buffer = io.BytesIO()
                Image.new("RGB", (16, 16), (k * 120, i * 40, 60)).save(buffer, format="PNG")
                zf.writestr(f"e2epets/{cls}/{i}.png", buffer.getvalue())
        zf.writestr("__MACOSX/e2epets/._cat", b"\x00\x05\x16\x07")
    return path


PREVIEW_COUNT = 9  # the original and 8 augmented samples


def preview_sources(page) -> list[str]:
    """The preview grid's image sources, once all of them are drawn (Streamlit adds them one by one: the
    first can be visible while the last is not there yet)."""
    images = page.locator(PREVIEW_IMAGES)
    images.first.wait_for(state="visible")
    page.wait_for_function(
        "([selector, n]) => document.querySelectorAll(selector).length >= n",
        arg=[PREVIEW_IMAGES, PREVIEW_COUNT],
        timeout=NEW_GRID_TIMEOUT_MS,
    )
    return [images.nth(i).get_attribute("src") for i in range(images.count())]


def open_data_page(page, app_url, query: str = "") -> None:
    """Open the page by URL (a deep link).

    Streamlit 1.67 answers a deep link in a new session with a "Page not found" dialog while it still
    renders the right page (the pages are registered by st.navigation during that first run); close it.
    """
    page.goto(f"{app_url}/data{query}")
    wait_for_app(page)
    page.get_by_role("heading", name="Data & augmentation").wait_for(state="visible")
    dialog = page.get_by_role("dialog")
    if dialog.count():
        assert "Page not found" in dialog.inner_text()
        page.keyboard.press("Escape")
        dialog.wait_for(state="hidden")
    wait_for_app(page)


def open_augmentation(page, app_url) -> None:
    open_data_page(page, app_url, "?section=augmentation")
    page.locator(".st-key-aug-add-op").wait_for(state="visible")


def add_step(page, op: str) -> None:
    box = page.locator(".st-key-aug-add-op input")
    box.click()
    box.fill(op)
    page.get_by_role("option", name=f"{op} (").first.click()
    wait_for_app(page)
    page.locator(".st-key-aug-add button").click()
    page.locator("[class*='st-key-aug-step-']").filter(has_text=f". {op}").wait_for(state="visible")
    wait_for_app(page)


def wait_for_new_grid(page, old: list[str]) -> list[str]:
    """The preview's image sources once the augmented samples differ from ``old`` (the rerun that
    redraws them can finish after the widgets it depends on have appeared)."""
    page.wait_for_function(
        """([selector, old]) => {
          const now = [...document.querySelectorAll(selector)].map((img) => img.getAttribute('src'));
          return now.length === old.length && now.slice(1).join() !== old.slice(1).join();
        }""",
        arg=[PREVIEW_IMAGES, old],
        timeout=NEW_GRID_TIMEOUT_MS,
    )
    wait_for_app(page)
    current = preview_sources(page)
    assert current[1:] != old[1:], "the augmented samples did not change"
    return current


@pytest.mark.e2e
def test_upload_zip_shows_class_counts(page, app_url, tmp_path, uploaded_datasets, artifacts_dir):
    e2e_data_dir = uploaded_datasets
    zip_path = make_zip(tmp_path / "e2epets.zip")
    open_data_page(page, app_url)
    page.locator(".st-key-data-upload input[type=file]").set_input_files(str(zip_path))
    page.get_by_text("Stored as 'e2epets'").wait_for(state="visible")
    wait_for_app(page)
    assert_no_exception(page)
    table = page.get_by_test_id("stTable")
    table.wait_for(state="visible")
    rows = {
        cells[0]: cells[1:]
        for cells in (
            [c.strip() for c in row.split("\t")] for row in table.locator("tbody tr").all_inner_texts()
        )
    }
    # class -> train, val, total
    assert rows["cat"][-1] == "5" and rows["dog"][-1] == "4"
    stored = load_dataset("e2epets", data_dir=e2e_data_dir).root  # the zip's wrapper folder is kept
    assert stored.name == "e2epets" and (stored / "cat").is_dir()
    page.get_by_text("Files skipped during upload (1)").wait_for(state="visible")
    page.screenshot(path=str(artifacts_dir / "data-upload.png"), full_page=True)

    # An archive that tries to escape its folder is refused with a message, not a traceback.
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("cat/../../escape.png", b"x")
    page.locator(".st-key-data-upload input[type=file]").set_input_files(str(evil))
    page.get_by_test_id("stAlertContentError").filter(has_text="'..'").wait_for(state="visible")
    assert_no_exception(page)
    assert "evil" not in list_datasets(e2e_data_dir)
    assert not (e2e_data_dir / "escape.png").exists()


@pytest.mark.e2e
def test_adding_rotation_changes_the_preview_grid(page, app_url, artifacts_dir):
    open_augmentation(page, app_url)
    before = preview_sources(page)
    assert len(before) == 9  # the original + 8 samples
    add_step(page, "RandomRotation")
    assert_no_exception(page)
    page.locator(".st-key-aug-1-degrees-min").wait_for(state="visible")
    after = wait_for_new_grid(page, before)
    assert after[0] == before[0]  # the original is unchanged
    assert len(after) == 9
    page.screenshot(path=str(artifacts_dir / "data-augmentation.png"), full_page=True)
    # Resample draws another grid from seed + 1
    # (a button with a help tooltip is rendered twice by Streamlit; either one works)
    page.locator(".st-key-aug-resample button").first.click()
    page.locator(".st-key-aug-seed input").and_(page.locator("[value='1']")).wait_for()
    wait_for_new_grid(page, after)


@pytest.mark.e2e
def test_export_code(page, app_url):
    open_augmentation(page, app_url)
    add_step(page, "ColorJitter")
    page.get_by_test_id("stCode").filter(has_text="v2.ColorJitter(").wait_for(state="visible")
    code = page.get_by_test_id("stCode").first.inner_text()
    assert "from torchvision.transforms import v2" in code and "v2.ColorJitter(" in code
    with page.expect_download() as info:
        page.locator(".st-key-aug-download-code button").click()
    downloaded = Path(info.value.path()).read_text()
    assert downloaded.startswith("# Augmentation pipeline exported from cnndash.")
    namespace: dict = {}
    exec(downloaded, namespace)
    assert type(namespace["transform"].transforms[-1]).__name__ == "ColorJitter"
