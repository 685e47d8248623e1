"""Evaluation journey in Chromium: open a trained run, switch normalisation, click a confused cell, see it."""

from __future__ import annotations

import re

import pytest

from cnndash.evaluate import metrics, predict
from cnndash.text import plural
from tests.e2e.harness import (
    assert_no_exception,
    choose,
    open_run_in_evaluation,
    selectbox_value,
    wait_for_app,
)


@pytest.fixture
def eval_run(e2e_tiny_run):
    return e2e_tiny_run


def _cell_summary(page) -> str:
    return page.locator("[data-testid='stMarkdownContainer']", has_text="predicted as").first.inner_text()


def test_switch_normalisation_and_open_a_confused_cell(page, app_url, eval_run):
    open_run_in_evaluation(page, app_url)
    pred = predict.predict_run(eval_run)
    assert pred.from_cache  # the page computed and cached the predictions
    k = len(pred.classes)
    counts = metrics.confusion_matrix(pred.targets, pred.preds, k)
    chart = page.locator(".st-key-eval-cm-chart")
    page.wait_for_function(
        "n => document.querySelectorAll('.st-key-eval-cm-chart .heatmaplayer text').length === n", arg=k * k
    )
    cell_texts = chart.locator(".heatmaplayer text").all_text_contents()
    assert sorted(cell_texts) == sorted(str(v) for v in counts.ravel())

    # Normalise by true class: every cell shows a percentage, and each row sums to 100 %.
    page.get_by_text("by true class (recall)").click()
    wait_for_app(page)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.st-key-eval-cm-chart .heatmaplayer text')]"
        ".some(t => t.textContent.includes('%'))"
    )
    texts = chart.locator(".heatmaplayer text").all_text_contents()
    assert len(texts) == k * k and all("%" in t for t in texts)
    assert_no_exception(page)

    # Click a confused cell that is not the one preselected (the most confused pair).
    confused = metrics.most_confused(pred.targets, pred.preds, pred.classes)
    assert len(confused) >= 2, "the tiny run should make at least two kinds of mistakes"
    target = confused.iloc[1]
    i, j = int(target["true_index"]), int(target["pred_index"])
    before = _cell_summary(page)
    chart.locator(".scatterlayer .point").nth(i * k + j).click(force=True)
    wait_for_app(page)
    expected = (
        f"{plural(int(target['count']), 'image')} of {target['true']} predicted as {target['predicted']}"
    )
    page.wait_for_function(
        "text => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
        ".some(m => m.innerText.includes(text))",
        arg=expected,
    )
    assert _cell_summary(page) != before
    assert selectbox_value(page, "eval-true") == target["true"]
    assert selectbox_value(page, "eval-pred") == target["predicted"]

    # Its images are shown, each with the predicted probability and a Grad-CAM link.
    indices = metrics.cell_indices(pred, i, j)[:24]
    expected_keys = sorted(f"st-key-eval-cell-gradcam-{index}" for index in indices)
    # Stale elements of the previous cell disappear when the rerun finishes.
    page.wait_for_function(
        "keys => JSON.stringify([...document.querySelectorAll(\"[class*='st-key-eval-cell-gradcam-']\")]"
        ".map(e => [...e.classList].find(c => c.startsWith('st-key-'))).sort()) === JSON.stringify(keys)",
        arg=expected_keys,
    )
    for index in indices[:3]:
        caption = page.get_by_text(re.compile(rf"^#{index} · p\({re.escape(target['predicted'])}\) = \d+%$"))
        assert caption.count() == 1
    images = page.locator("[data-testid='stImage'] img")
    page.wait_for_function(
        "n => [...document.querySelectorAll('[data-testid=stImage] img')].filter(i => i.naturalWidth > 0).length >= n",
        arg=len(indices),
    )
    assert images.count() >= len(indices)
    assert_no_exception(page)


def test_selectors_choose_a_cell(page, app_url, eval_run):
    open_run_in_evaluation(page, app_url)
    pred = predict.predict_run(eval_run)
    # A correctly classified cell, picked with the selectors instead of the heatmap.
    cls = int(
        metrics.per_class_accuracy(pred.targets, pred.preds, pred.classes)["correct"].to_numpy().argmax()
    )
    name = pred.classes[cls]
    for key in ("eval-true", "eval-pred"):
        choose(page, key, name)
    count = len(metrics.cell_indices(pred, cls, cls))
    page.wait_for_function(
        "text => [...document.querySelectorAll('[data-testid=stMarkdownContainer]')]"
        ".some(m => m.innerText.startsWith(text))",
        arg=f"{plural(count, 'image')} of {name} predicted as {name}",
    )
    assert _cell_summary(page).startswith(
        f"{plural(count, 'image')} of {name} predicted as {name} (correctly classified)"
    )
    assert page.locator("[class*='st-key-eval-cell-gradcam-']").count() == min(count, 24)
    assert_no_exception(page)
