"""Browser journey: the learning-rate finder on the Training page — open it, run it, see its curve with the
offered rate, and use it in the form (the AppTest in tests/pages/test_training_lr_finder.py checks the
finding itself)."""

from __future__ import annotations

from tests.e2e.harness import assert_no_exception, set_number, wait_for_app

CHART = ".st-key-train-lr-finder-chart .js-plotly-plot"


def test_run_the_finder_and_use_its_learning_rate(page, app_url):
    page.goto(f"{app_url}/training")
    wait_for_app(page)
    set_number(page, "train-lr", 0.00001)  # far too low: the finder's trials can beat it
    wait_for_app(page)
    page.get_by_text("Find a learning rate").click()
    page.get_by_role("button", name="Run the finder").click()  # (its help icon is a button too)
    page.locator(CHART).wait_for(timeout=120_000)  # progress, then the curve once the trials are done
    wait_for_app(page)
    assert_no_exception(page)
    x_type = page.evaluate(f"() => document.querySelector('{CHART}').layout.xaxis.type")
    assert x_type == "log"
    page.get_by_test_id("stAlertContentSuccess").get_by_text("Offered:").wait_for(timeout=10_000)
    use = page.get_by_role("button", name="Use this learning rate")
    use.click()
    wait_for_app(page)
    assert use.is_disabled()  # the form uses it now
    value = float(page.locator(".st-key-train-lr input").input_value())
    assert value > 0.00001
    assert_no_exception(page)
