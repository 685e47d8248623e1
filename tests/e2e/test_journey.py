"""A newcomer's journey in Chromium, on a realistic photo upload the test builds itself (issue 13):
upload -> the report lists the skipped files -> a pipeline -> Train shows the resolution -> reload mid-run
(form and sidebar show that run) -> stop -> resume in place -> evaluate (click a cell, see its images) ->
Grad-CAM (not flat by default) -> download the overlay. Screenshots of each step go to test-artifacts/.

The zip is what a phone or Mac export looks like: one top-level folder, ``__MACOSX`` resource forks, a
``.DS_Store``, JPEG/PNG in CMYK, RGBA, grayscale and RGB, 64–160 px texture photos in three classes, and
one truncated JPEG (skipped and reported, not a refusal of the whole archive).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndash import augment, data
from tests.e2e.harness import (
    assert_no_exception,
    choose,
    set_number,
    stop_training_and_remove_new_runs,
    wait_for_app,
)

CLASSES = ("brick", "grass", "gravel")
PER_CLASS = 30
DATASET = "Photos-Export"  # the name the page derives from "Photos Export.zip"
PIPELINE = "journey-crop64"
CROP64 = [
    {"op": "RandomResizedCrop", "size": [64, 64], "scale": [0.6, 1.0]},
    {"op": "RandomHorizontalFlip", "p": 0.5},
]


def _texture(kind: str, side: int, rng: np.random.Generator) -> Image.Image:
    """A photo-like texture: bricks with mortar lines, grass blades, or gravel blobs, with noise."""
    y, x = np.mgrid[0:side, 0:side]
    noise = rng.random((side, side))
    if kind == "brick":
        img = np.stack([150 + 40 * noise, 60 + 20 * rng.random((side, side)), 40 + 20 * noise], -1)
        img[((y % 16) < 2) | (((x + 8 * ((y // 16) % 2)) % 24) < 2)] = 200
    elif kind == "grass":
        img = np.stack([40 + 30 * noise, 120 + 80 * rng.random((side, side)), 30 + 30 * noise], -1)
        img[:, ::3] *= 0.7
    else:
        blobs = rng.random((side // 8 + 1, side // 8 + 1)).repeat(8, 0).repeat(8, 1)[:side, :side]
        grey = 90 + 120 * blobs + 20 * noise
        img = np.stack([grey, grey * 0.95, grey * 0.9], -1)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def build_photo_zip(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        k = 0
        for cls in CLASSES:
            for _ in range(PER_CLASS):
                k += 1
                image, buffer = _texture(cls, int(rng.integers(64, 161)), rng), io.BytesIO()
                if k % 5 == 0:
                    image.save(buffer, "JPEG")
                    name = f"IMG_{k:04d}.jpg"
                elif k % 5 == 1:
                    image.convert("CMYK").save(buffer, "JPEG")
                    name = f"IMG_{k:04d}.jpeg"
                else:
                    image.convert(("RGBA", "L", "RGB")[k % 5 - 2]).save(buffer, "PNG")
                    name = f"IMG_{k:04d}.png"
                zf.writestr(f"Photos Export/{cls}/{name}", buffer.getvalue())
                zf.writestr(f"__MACOSX/Photos Export/{cls}/._{name}", b"\x00\x05\x16\x07resource fork")
        buffer = io.BytesIO()
        _texture("brick", 120, rng).save(buffer, "JPEG")
        zf.writestr("Photos Export/brick/IMG_9999.jpg", buffer.getvalue()[: len(buffer.getvalue()) // 2])
        zf.writestr("Photos Export/.DS_Store", b"\x00\x00\x00\x01Bud1")
    return path


@pytest.fixture
def journey(browser, app_url, e2e_data_dir, e2e_runs_dir) -> Iterator[Path]:
    """The server's folders; what the journey adds (dataset, pipeline, runs) is removed afterwards, a
    run still training is stopped first."""
    runs_before = {p.name for p in e2e_runs_dir.iterdir()}
    augment.save_pipeline(PIPELINE, CROP64, data_dir=e2e_data_dir)
    yield e2e_runs_dir
    stop_training_and_remove_new_runs(browser, app_url, e2e_runs_dir, runs_before)
    augment.delete_pipeline(PIPELINE, data_dir=e2e_data_dir)
    for name in data.list_datasets(e2e_data_dir):
        if name.startswith(DATASET):
            data.delete_dataset(name, data_dir=e2e_data_dir)


def _shot(page, artifacts_dir: Path, step: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"journey-{step}.png"), full_page=True)


def _upload(page, app_url: str, zip_path: Path, artifacts_dir: Path) -> None:
    page.goto(f"{app_url}/data")
    wait_for_app(page, timeout=90_000)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(zip_path))
    page.get_by_text(f"Stored as '{DATASET}'").wait_for(timeout=120_000)
    wait_for_app(page)
    expander = page.get_by_text(re.compile(r"^Files skipped during upload \(\d+\)$"))
    expander.wait_for(timeout=30_000)
    skipped = int(re.search(r"\((\d+)\)", expander.inner_text()).group(1))
    assert skipped >= PER_CLASS * len(CLASSES) + 2  # resource forks, .DS_Store and the truncated JPEG
    expander.click()
    assert_no_exception(page)
    _shot(page, artifacts_dir, "1-upload-report")


def _start_training(page, app_url: str, artifacts_dir: Path) -> str:
    page.goto(f"{app_url}/training")
    wait_for_app(page, timeout=90_000)
    choose(page, "train-dataset", f"{DATASET} (uploaded)")
    choose(page, "train-pipeline", PIPELINE)
    seen = page.get_by_text(re.compile(r"The model will see 64×64 px · RGB, 3 channels"))
    seen.wait_for(timeout=60_000)
    box = page.locator("[data-testid='stMarkdownContainer']", has_text="The model will see").first
    assert "pipeline outputs 64×64" in box.inner_text()
    page.get_by_text("A training batch after augmentation").wait_for(timeout=60_000)
    set_number(page, "train-epochs", 300)
    set_number(page, "train-batch-size", 16)
    assert not page.locator(".st-key-train-start button").is_disabled()
    _shot(page, artifacts_dir, "2-train-form")
    page.locator(".st-key-train-start button").click()
    # The model is the one-click suggestion for these photos (issue 24), whichever it is.
    heading = page.get_by_role("heading", name=re.compile(rf"^Training \w+-{DATASET}-"))
    heading.wait_for(timeout=60_000)
    return re.search(rf"\w+-{DATASET}-[\w-]+", heading.inner_text()).group(0)


def _reload_mid_run(page, run_name: str, artifacts_dir: Path) -> None:
    page.reload()
    wait_for_app(page, timeout=90_000)
    page.get_by_role("heading", name=f"Training {run_name}").wait_for(timeout=60_000)
    assert page.locator(".st-key-train-dataset input[role='combobox']").input_value().startswith(DATASET)
    assert page.locator(".st-key-train-pipeline input[role='combobox']").input_value() == PIPELINE
    assert page.locator(".st-key-train-epochs input").input_value() == "300"
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text(run_name).wait_for(timeout=30_000)
    sidebar.get_by_text(re.compile(r"epoch \d+/300")).wait_for(timeout=60_000)
    page.locator("[data-testid='stMetric']").filter(
        has_text=re.compile(r"Best val accuracy\s*[\d.]+\s*%")
    ).wait_for(timeout=120_000)
    assert_no_exception(page)
    _shot(page, artifacts_dir, "3-reload-mid-run")


def _stop_and_resume(page, run_name: str, artifacts_dir: Path) -> None:
    page.locator(".st-key-train-stop button").click()
    page.get_by_role("heading", name=f"Run {run_name}").wait_for(timeout=60_000)
    page.get_by_text("Stopped by the user").wait_for(timeout=30_000)
    wait_for_app(page)
    _shot(page, artifacts_dir, "4-stopped")
    page.get_by_role("button", name="Resume this run").click()  # right under the stop message
    page.get_by_role("heading", name=f"Training {run_name}").wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^Resumed after epoch \d+")).wait_for(timeout=60_000)
    assert_no_exception(page)
    _shot(page, artifacts_dir, "5-resumed")
    page.locator(".st-key-train-stop button").click()
    page.get_by_role("heading", name=f"Run {run_name}").wait_for(timeout=60_000)
    wait_for_app(page)


def _evaluate(page, app_url: str, run_name: str, artifacts_dir: Path) -> None:
    page.goto(f"{app_url}/evaluation")
    wait_for_app(page, timeout=90_000)
    page.wait_for_selector(".st-key-eval-run input[role='combobox']", timeout=60_000)
    if not page.locator(".st-key-eval-run input[role='combobox']").input_value().startswith(run_name):
        choose(page, "eval-run", re.compile(rf"^{re.escape(run_name)} "))
    page.wait_for_selector(".st-key-eval-cm-chart .heatmaplayer", timeout=60_000)
    page.locator(".st-key-eval-cm-chart .scatterlayer .point").nth(0).click(force=True)
    wait_for_app(page)
    page.get_by_text(re.compile(r"images? of \S+ predicted as")).first.wait_for(timeout=30_000)
    assert_no_exception(page)
    _shot(page, artifacts_dir, "6-evaluation-cell")


def _gradcam_and_download(page, app_url: str, run_name: str, artifacts_dir: Path) -> None:
    page.goto(f"{app_url}/gradcam")
    wait_for_app(page, timeout=90_000)
    page.wait_for_selector(".st-key-cam-run input[role='combobox']", timeout=60_000)
    if not page.locator(".st-key-cam-run input[role='combobox']").input_value().startswith(run_name):
        choose(page, "cam-run", re.compile(rf"^{re.escape(run_name)}"))
    page.get_by_text("Prediction:").first.wait_for(timeout=90_000)
    page.get_by_text(re.compile(r"^Default: ")).wait_for(timeout=30_000)
    assert page.get_by_text(re.compile(r"maps are flat")).count() == 0  # an informative default layer
    assert_no_exception(page)
    _shot(page, artifacts_dir, "7-gradcam")
    with page.expect_download() as download_info:
        page.locator(".st-key-cam-download button").click()
    download = download_info.value
    assert re.fullmatch(r"[A-Za-z0-9._-]+\.png", download.suggested_filename), download.suggested_filename
    target = artifacts_dir / "journey-8-overlay.png"
    download.save_as(str(target))
    assert Image.open(target).size[0] >= 64


@pytest.mark.e2e
def test_newcomer_journey(page, app_url, journey, artifacts_dir, tmp_path):
    zip_path = build_photo_zip(tmp_path / "Photos Export.zip")
    page.set_default_timeout(60_000)
    _upload(page, app_url, zip_path, artifacts_dir)
    run_name = _start_training(page, app_url, artifacts_dir)
    _reload_mid_run(page, run_name, artifacts_dir)
    _stop_and_resume(page, run_name, artifacts_dir)
    _evaluate(page, app_url, run_name, artifacts_dir)
    _gradcam_and_download(page, app_url, run_name, artifacts_dir)
