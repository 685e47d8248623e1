"""The learning-rate finder on the Training page (ui.training.lr_finder_view): a button runs the engine's
find_lr in the background; its finished finding shows the curve on a log axis with the learning rate offered,
the trial runs, and "Use this learning rate" sets the form's value."""

from __future__ import annotations

import time

from tests.pages.test_pages import run_page

PAGE = "pages/training.py"


def wait_for_finder(at, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while at.session_state["train-lr-finder-task"].alive and time.monotonic() < deadline:
        time.sleep(0.2)
    return at.run()


def test_the_finder_runs_on_its_button_and_its_pick_sets_the_form():
    at = run_page(PAGE)
    assert "train-lr-finder-task" not in at.session_state  # never on a rerun by itself
    assert not [c for c in at.get("plotly_chart") if c.proto.id.endswith("train-lr-finder-chart")]
    at.number_input(key="train-lr").set_value(1e-5).run()  # far too low: a learning rate the finder can beat
    at.button(key="train-lr-finder-start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.get("progress") or not at.session_state["train-lr-finder-task"].alive
    at = wait_for_finder(at)
    assert not at.exception, [e.value for e in at.exception]
    dataset, finding = at.session_state["train-lr-finding"]
    assert dataset == "digits" and len(finding.lrs) >= 5 and finding.trials
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith("train-lr-finder-chart"))
    assert '"type":"log"' in chart.proto.spec.replace(" ", "")  # the learning rate on a log axis
    assert finding.reliable, (
        finding.reason
    )  # Adam at 1e-5 barely moves in 20 batches: a candidate does better
    offered = [s.value.replace("\\", "") for s in at.success]  # Markdown-escaped text, read back plain
    assert any(f"Offered: {finding.suggestion:.2g}" in text for text in offered), offered
    at.button(key="train-lr-finder-use").click().run()
    assert at.number_input(key="train-lr").value == finding.suggestion
    assert at.button(key="train-lr-finder-use").disabled  # the form uses it now
