"""Browser journey: press Train on a built-in dataset, watch the live chart grow, reload mid-run and still
see the run, then stop it and read its final accuracy.

The run is long (100 epochs) and stopped by the test, so the journey does not depend on how fast the
machine trains: a fast machine would finish a short run before the reload, a busy one would take
minutes. Finishing a run on its own is covered by the AppTest tests (tests/pages/test_training.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    assert_no_exception,
    set_number,
    stop_training_and_remove_new_runs,
    wait_for_app,
)

BATCH_CHART = ".st-key-live-batch-chart .js-plotly-plot"
# Number of per-batch points drawn in the live chart (the smoothed loss trace).
POINTS_JS = f"() => {{ const el = document.querySelector('{BATCH_CHART}'); return el && el.data ? el.data[1].x.length : 0; }}"


@pytest.fixture
def new_runs(browser, app_url, e2e_runs_dir) -> Iterator[Path]:
    """The server's runs folder; runs the test starts are stopped (if still training) and deleted
    afterwards, so the other browser tests find the folder as they expect it. The stop goes through a
    page of its own, so the test's page stays as it was for the failure screenshot."""
    before = {p.name for p in e2e_runs_dir.iterdir()}
    yield e2e_runs_dir
    stop_training_and_remove_new_runs(browser, app_url, e2e_runs_dir, before)


def test_train_watch_reload_stop_and_see_final_accuracy(page, app_url, new_runs):
    e2e_runs_dir = new_runs
    page.goto(f"{app_url}/training")
    wait_for_app(page)
    assert_no_exception(page)
    set_number(page, "train-epochs", 100)
    set_number(page, "train-batch-size", 16)

    page.locator(".st-key-train-start button").click()
    live_heading = page.get_by_role("heading", name=re.compile(r"^Training lenet-digits-"))
    live_heading.wait_for(timeout=30_000)
    run_name = re.search(r"lenet-digits-[\w-]+", live_heading.inner_text()).group(0)
    page.wait_for_function(f"({POINTS_JS})() > 0", timeout=60_000)
    assert page.locator(".st-key-train-start button").is_disabled()

    # A reload (a new browser session) shows the same run, still live, and its chart keeps growing.
    page.reload()
    page.get_by_role("heading", name=f"Training {run_name}").wait_for(timeout=30_000)
    page.wait_for_function(f"({POINTS_JS})() > 0", timeout=20_000)
    first = page.evaluate(POINTS_JS)
    page.wait_for_function(f"({POINTS_JS})() > {first}", timeout=20_000)
    assert_no_exception(page)

    # After the first epoch the live view shows a validation accuracy; then stop the run.
    live_accuracy = page.locator("[data-testid='stMetric']").filter(
        has_text=re.compile(r"Best val accuracy\s*[\d.]+\s*%")
    )
    live_accuracy.wait_for(timeout=60_000)
    page.locator(".st-key-train-stop button").click()

    # The results: the final (best) accuracy as recorded on disk, the curves, downloads, links.
    page.get_by_role("heading", name=f"Run {run_name}").wait_for(timeout=30_000)
    wait_for_app(page)
    page.get_by_text("Stopped by the user").wait_for(timeout=10_000)
    summary = json.loads((e2e_runs_dir / run_name / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["epochs"] >= 1
    shown = page.locator("[data-testid='stMetric']").filter(has_text="Best val accuracy").first.inner_text()
    assert f"{summary['val_accuracy']:.1%}" in shown
    assert page.locator(".st-key-final-epoch-chart .js-plotly-plot").count() == 1
    assert page.locator(".st-key-final-batch-chart .js-plotly-plot").count() == 1
    assert page.locator(".st-key-train-download-checkpoint").is_visible()
    assert page.locator(".st-key-train-goto-evaluation").is_visible()
    assert not page.locator(".st-key-train-start button").is_disabled()
    assert_no_exception(page)
