"""Export journey in Chromium: classify three images on the Predict tab, build and download the bundle,
and the unpacked predict.py (without cnndash) reproduces the page's predictions."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image

from tests.e2e.harness import TINY_RUN as RUN_NAME
from tests.e2e.harness import assert_no_exception, open_run_in_evaluation, wait_for_app


def _three_images(folder):
    rng = np.random.default_rng(7)
    folder.mkdir()
    paths = [folder / "noise.png", folder / "cmyk.jpg", folder / "alpha.png"]
    Image.fromarray(rng.integers(0, 256, (45, 60, 3), dtype=np.uint8)).save(paths[0])
    Image.fromarray(rng.integers(0, 256, (80, 50, 3), dtype=np.uint8)).convert("CMYK").save(paths[1])
    Image.fromarray(rng.integers(0, 256, (20, 33, 4), dtype=np.uint8)).save(paths[2])
    return paths


def _rows(text: str) -> dict[str, dict]:
    """CSV rows by file name (the page names uploads by file name, predict.py by path)."""
    return {os.path.basename(r["path"]): r for r in csv.DictReader(io.StringIO(text))}


def test_exported_bundle_reproduces_the_pages_predictions(page, app_url, e2e_tiny_run, tmp_path):
    images = _three_images(tmp_path / "images")
    open_run_in_evaluation(page, app_url)
    page.get_by_role("tab", name="Predict").click()
    wait_for_app(page)
    page.locator(".st-key-eval-upload input[type='file']").set_input_files([str(p) for p in images])
    wait_for_app(page)
    csv_button = page.locator(".st-key-eval-predictions-csv button")
    csv_button.wait_for(timeout=60_000)
    assert_no_exception(page)
    with page.expect_download() as download:
        csv_button.click()
    download.value.save_as(tmp_path / "page.csv")
    page_csv = (tmp_path / "page.csv").read_text()

    # Build the bundle (progress, then the download button) and download it as one zip.
    page.locator(f".st-key-eval-export-build-{RUN_NAME} button").click()
    download_button = page.locator(f".st-key-eval-export-download-{RUN_NAME} button")
    download_button.wait_for(timeout=180_000)
    wait_for_app(page)
    assert_no_exception(page)
    with page.expect_download() as download:
        download_button.click()
    assert download.value.suggested_filename == f"{RUN_NAME}-bundle.zip"
    download.value.save_as(tmp_path / "bundle.zip")
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        archive.extractall(tmp_path / "unpacked")
    script = tmp_path / "unpacked" / f"{RUN_NAME}-bundle" / "predict.py"
    assert script.is_file()

    # predict.py from the unpacked zip, cnndash not importable (-I, another working folder).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [sys.executable, "-I", str(script), *map(str, images)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    ours, theirs = _rows(page_csv), _rows(done.stdout)
    assert set(ours) == set(theirs) == {p.name for p in images}
    for name, row in ours.items():
        assert theirs[name]["predicted"] == row["predicted"], name
        assert abs(float(theirs[name]["probability"]) - float(row["probability"])) <= 1e-4, name
