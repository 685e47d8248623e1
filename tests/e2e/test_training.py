"""Browser journey: press Train with a built-in dataset, watch the live chart grow, reload mid-run, see the result."""

from __future__ import annotations

import re

from tests.e2e.conftest import assert_no_exception, wait_for_app

BATCH_CHART = ".st-key-live-batch-chart .js-plotly-plot"
# Number of per-batch points drawn in the live chart (the smoothed loss trace).
POINTS_JS = f"() => {{ const el = document.querySelector('{BATCH_CHART}'); return el && el.data ? el.data[1].x.length : 0; }}"


def test_train_watch_reload_and_see_final_accuracy(page, app_url):
    page.goto(f"{app_url}/training")
    wait_for_app(page)
    assert_no_exception(page)
    epochs = page.locator(".st-key-train-epochs input")
    epochs.wait_for(timeout=90_000)  # the first page load imports torch in the server
    epochs.fill("6")
    epochs.press("Enter")
    wait_for_app(page)
    batch_size = page.locator(".st-key-train-batch-size input")
    batch_size.fill("16")
    batch_size.press("Enter")
    wait_for_app(page)

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

    # When it ends the page switches to the results: final accuracy, best epoch, downloads, links.
    page.locator(".st-key-train-goto-evaluation").wait_for(timeout=90_000)
    wait_for_app(page)
    accuracy = page.locator("[data-testid='stMetric']").filter(has_text="Best val accuracy").first
    value = float(re.search(r"([\d.]+)\s*%", accuracy.inner_text()).group(1))
    assert value >= 90.0
    assert page.get_by_role("heading", name=f"Run {run_name}").is_visible()
    assert page.locator(".st-key-final-epoch-chart .js-plotly-plot").count() == 1
    assert page.locator(".st-key-train-download-checkpoint").is_visible()
    assert not page.locator(".st-key-train-start button").is_disabled()
    assert_no_exception(page)
