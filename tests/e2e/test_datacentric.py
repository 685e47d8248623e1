"""Browser journey of issue 17, see → fix → retrain → compare: a small digits run; Evaluation → Data;
relabel the most suspicious image with one click (and the next one with its keyboard shortcut); "Retrain
on the edited version"; Training → Runs compares the two runs (accuracy of each, the confusion-matrix
difference, per-class change). Screenshots of each step go to test-artifacts/datacentric-*.png.

The run the test starts from is trained by the test itself (LeNet, one epoch on 16 px digits: seconds);
the retrain runs in the app with the same settings. Runs, dataset versions and the built-in's image files
the test added are removed afterwards.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnndash import data
from cnndash.data import versions
from cnndash.training.loops import TrainConfig, train
from tests.e2e.harness import (
    assert_no_exception,
    choose,
    selectbox_value,
    stop_training_and_remove_new_runs,
    wait_for_app,
)

RUN = "datacentric-digits"
CONFIG = TrainConfig(dataset="digits", model="lenet", epochs=1, image_size=16, tensorboard=False, threads=1)
RETRAIN_TIMEOUT_MS = 180_000  # one LeNet epoch on digits takes seconds; a loaded machine, much longer


@pytest.fixture
def digits_run(browser, app_url, e2e_data_dir, e2e_runs_dir) -> Iterator[Path]:
    runs_before = {p.name for p in e2e_runs_dir.iterdir()}
    datasets_before = set(data.list_datasets(e2e_data_dir))
    builtin_files = e2e_data_dir / "builtin-files"
    had_builtin_files = builtin_files.exists()
    train(CONFIG, e2e_runs_dir / RUN)
    yield e2e_runs_dir / RUN
    stop_training_and_remove_new_runs(browser, app_url, e2e_runs_dir, runs_before)
    for name in set(data.list_datasets(e2e_data_dir)) - datasets_before:
        if versions.is_version(name, data_dir=e2e_data_dir):
            data.delete_dataset(name, data_dir=e2e_data_dir)
    if not had_builtin_files:
        shutil.rmtree(builtin_files, ignore_errors=True)
    assert set(data.list_datasets(e2e_data_dir)) == datasets_before
    assert {p.name for p in e2e_runs_dir.iterdir()} == runs_before


def _shot(page, artifacts_dir: Path, step: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"datacentric-{step}.png"), full_page=True)


def _open_data_view(page, app_url: str) -> None:
    page.goto(f"{app_url}/evaluation")
    wait_for_app(page, timeout=90_000)
    page.wait_for_selector(".st-key-eval-run input[role='combobox']", timeout=60_000)
    if not selectbox_value(page, "eval-run").startswith(RUN + " "):
        choose(page, "eval-run", re.compile(rf"^{RUN} "))
    page.get_by_role("tab", name="Data").click()
    wait_for_app(page, timeout=90_000)
    page.locator("[class*='st-key-data-relabel-'] button").first.wait_for(timeout=90_000)
    assert_no_exception(page)


def _changed(page) -> int:
    text = page.get_by_text(re.compile(r"Editing version .* images? changed")).inner_text()
    return int(re.search(r"(\d+) images? changed", text).group(1))


def _relabel_and_retrain(page, artifacts_dir: Path) -> str:
    """Relabel with one click, then with the keyboard; retrain; the new run's name."""
    first = page.locator("[class*='st-key-data-relabel-'] button").first
    label = first.inner_text()
    assert label.startswith("Relabel as ")
    first.click()
    wait_for_app(page)
    assert _changed(page) == 1
    _shot(page, artifacts_dir, "1-relabelled")
    page.locator("body").press("a")  # the shortcut of the image that moved up to the first place
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
        ".some(e => e.innerText.includes('2 images changed'))",
        timeout=30_000,
    )
    wait_for_app(page)
    assert_no_exception(page)
    page.locator(".st-key-data-retrain button").click()
    wait_for_app(page)
    started = page.get_by_text(re.compile(r"^Training run \S+ on"))
    started.wait_for(timeout=30_000)
    _shot(page, artifacts_dir, "2-retrain-started")
    return re.search(r"^Training run (\S+) on", started.inner_text()).group(1)


def test_relabel_retrain_and_compare_both_runs(page, app_url, digits_run, artifacts_dir):
    _open_data_view(page, app_url)
    retrained = _relabel_and_retrain(page, artifacts_dir)

    page.goto(f"{app_url}/training")
    wait_for_app(page, timeout=90_000)
    page.get_by_role("heading", name=f"Run {retrained}").wait_for(timeout=RETRAIN_TIMEOUT_MS)
    wait_for_app(page)
    page.get_by_role("tab", name="Runs").click()
    page.locator(".st-key-runs-diff-chart .heatmaplayer").wait_for(timeout=60_000)
    assert_no_exception(page)
    # Both runs' curves are overlaid (the retrain joined the chosen runs when it appeared).
    page.wait_for_function(
        "() => { const el = document.querySelector('.st-key-runs-compare-chart .js-plotly-plot');"
        " return el && el.data && el.data.length === 2; }"
    )
    runs_tab = page.get_by_role("tabpanel", name="Runs")
    runs_tab.locator("[data-testid='stDataFrame']").first.scroll_into_view_if_needed()
    _shot(page, artifacts_dir, "3-runs-table")

    # The default pair: the run and its retrain on the edited version.
    assert (selectbox_value(page, "runs-a"), selectbox_value(page, "runs-b")) == (RUN, retrained)
    accuracy = page.locator("[data-testid='stMetric']")
    accuracy.filter(has_text=re.compile(rf"Accuracy A · {RUN}\s*[\d.]+\s*%")).wait_for()
    accuracy.filter(has_text=re.compile(rf"Accuracy B · {re.escape(retrained)}\s*[\d.]+\s*%")).wait_for()
    page.get_by_text("The two validation sets differ").wait_for()
    # One cell per pair of the ten digits in the difference heatmap, and per-class bars for both runs.
    page.wait_for_function(
        "() => document.querySelectorAll('.st-key-runs-diff-chart .heatmaplayer text').length === 100"
    )
    assert page.locator(".st-key-runs-per-class-chart .bars .point").count() == 20
    page.locator(".st-key-runs-diff-chart").scroll_into_view_if_needed()
    _shot(page, artifacts_dir, "4-runs-compared")
