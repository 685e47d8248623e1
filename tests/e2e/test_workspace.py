"""Chromium: the workspace follows the person (issue 23, points 1, 2, 5 and 6). A dataset chosen on the Data
page is Training's; the calculator and the lesson survive page switches through the sidebar; learning rate
100 blocks Train with its range right under the field; the view survives a reload; the URL, opened in a
fresh browser context (a shared link), reproduces it; a run chosen on Evaluation is Grad-CAM's; a label
check's fold run is in no run picker; an unsaved augmentation pipeline stays. Screenshots: ``test-artifacts/workspace-*.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    TINY_RUN,
    choose,
    go_to,
    new_context,
    open_url,
    selectbox_options,
    selectbox_value,
    set_number,
    wait_for_app,
)

LESSON = "3 · Padding and stride"
NEWER = "tiny-newer"  # a finished run newer than "tiny": the pickers' default
FOLD = "tiny-fold1of2"  # one fold of a label check of "tiny"


@pytest.fixture
def workspace_runs(e2e_tiny_run: Path) -> Iterator[None]:
    """Next to ``tiny``: a newer finished run and a label check's fold run, removed afterwards."""
    added = []
    for name, when, extra in (
        (NEWER, 4e9, {}),
        (FOLD, 4e9 + 1, {"purpose": "fold", "group": "label-check:tiny"}),
    ):
        target = e2e_tiny_run.parent / name
        shutil.copytree(e2e_tiny_run, target)
        config = target / "config.json"
        config.write_text(json.dumps(json.loads(config.read_text()) | extra))
        os.utime(config, (when, when))  # newest first in every list
        added.append(target)
    yield
    for target in added:
        shutil.rmtree(target, ignore_errors=True)


def _shot(page, artifacts_dir: Path, step: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"workspace-{step}.png"), full_page=True)


def _kept(page) -> None:
    """The unsaved pipeline on its section, the calculator's stride and the lesson, as left."""
    go_to(page, "Data & augmentation", "Data & augmentation")
    page.locator(".st-key-aug-0-p input").wait_for()
    assert page.locator(".st-key-aug-0-p input").input_value() == "0.250"
    assert selectbox_value(page, "aug-dataset") == "digits — built-in"
    go_to(page, "Conv calculator", "Conv calculator")
    page.locator(".st-key-conv-stride input").wait_for()
    assert page.locator(".st-key-conv-stride input").input_value() == "2"
    assert page.get_by_text("8×18×24").first.is_visible()
    go_to(page, "Learn", "Learn")
    assert selectbox_value(page, "learn-lesson") == LESSON


def _choose_and_carry(page, app_url: str, artifacts_dir: Path) -> None:
    """Points 1 and 2: choices made on one page hold on the others."""
    open_url(page, app_url)
    go_to(page, "Data & augmentation", "Data & augmentation")
    choose(page, "data-dataset", "digits — built-in")
    page.locator(".st-key-data-section").get_by_text("Augmentation", exact=True).click()
    wait_for_app(page)
    assert selectbox_value(page, "aug-dataset") == "digits — built-in"  # the preview is on the choice
    set_number(page, "aug-0-p", 0.25)  # an unsaved pipeline
    _shot(page, artifacts_dir, "1-data-digits-preview")
    go_to(page, "Conv calculator", "Conv calculator")
    set_number(page, "conv-stride", 2)
    _shot(page, artifacts_dir, "2-calculator-stride-2")
    go_to(page, "Learn", "Learn")
    choose(page, "learn-lesson", LESSON)
    _kept(page)
    _shot(page, artifacts_dir, "3-learn-lesson-kept")
    go_to(page, "Training", "Training")
    assert selectbox_value(page, "train-dataset") == "digits"


def _learning_rate_100(page, artifacts_dir: Path) -> None:
    """Point 5: the value stays as typed, Train is off, and the range is right under the field."""
    set_number(page, "train-lr", 100)
    message = page.get_by_text("Learning rate must be a positive number of at most 10 (e.g. 0.003), got 100.")
    message.wait_for()
    field = page.locator(".st-key-train-lr input").bounding_box()
    shown = message.bounding_box()
    assert field["y"] + field["height"] <= shown["y"] <= field["y"] + field["height"] + 200, (field, shown)
    assert page.locator(".st-key-train-lr input").input_value().startswith("100")
    assert page.locator(".st-key-train-start button").is_disabled()
    _shot(page, artifacts_dir, "4-training-lr-100")
    set_number(page, "train-lr", 0.003)
    page.locator(".st-key-train-start button:enabled").wait_for()


def _runs_follow(page, artifacts_dir: Path, step: str) -> None:
    """Points 1 and 6: the run chosen on Evaluation is Grad-CAM's; the fold run is in neither picker."""
    go_to(page, "Evaluation", "Evaluation")
    page.locator(".st-key-eval-run input[role='combobox']").wait_for(timeout=60_000)
    listed = selectbox_options(page, "eval-run")
    assert not [name for name in listed if name.startswith(FOLD)], listed
    if not selectbox_value(page, "eval-run").startswith(f"{TINY_RUN} "):
        choose(page, "eval-run", re.compile(rf"^{TINY_RUN} "))
    go_to(page, "Grad-CAM", "Grad-CAM")
    page.locator(".st-key-cam-run input[role='combobox']").wait_for(timeout=60_000)
    assert selectbox_value(page, "cam-run") == TINY_RUN
    assert FOLD not in selectbox_options(page, "cam-run")
    page.get_by_text("Prediction:").first.wait_for(timeout=90_000)
    _shot(page, artifacts_dir, step)


@pytest.mark.e2e
def test_choices_follow_across_pages_a_reload_and_a_shared_link(
    page, browser, app_url, artifacts_dir, workspace_runs
):
    page.set_default_timeout(60_000)
    _choose_and_carry(page, app_url, artifacts_dir)
    _learning_rate_100(page, artifacts_dir)
    _runs_follow(page, artifacts_dir, "5-gradcam-on-the-chosen-run")

    page.reload()  # a new session: the URL carries the workspace
    wait_for_app(page, timeout=90_000)
    link = page.url
    assert re.search(r"[?&]dataset=digits(&|$)", link) and re.search(r"[?&]lesson=3(&|$)", link), link
    assert f"run={TINY_RUN}" in link and "calc=" in link, link
    assert selectbox_value(page, "cam-run") == TINY_RUN
    _shot(page, artifacts_dir, "6-reloaded")

    context = new_context(browser, viewport={"width": 1400, "height": 1000})
    try:
        shared = context.new_page()
        shared.set_default_timeout(60_000)
        open_url(shared, link.replace("/gradcam", "/training"))  # the link, opened on another page
        shared.get_by_role("heading", name="Training").first.wait_for(state="visible")
        assert selectbox_value(shared, "train-dataset") == "digits"
        _shot(shared, artifacts_dir, "7-link-training")
        _kept(shared)
        _shot(shared, artifacts_dir, "8-link-learn")
        go_to(shared, "Evaluation", "Evaluation")
        shared.locator(".st-key-eval-run input[role='combobox']").wait_for(timeout=60_000)
        assert selectbox_value(shared, "eval-run").startswith(f"{TINY_RUN} ")
        _shot(shared, artifacts_dir, "9-link-evaluation")
    finally:
        context.close()
