"""Chromium on the hostile-names dataset and run (tests/fixtures.py): Data, Training (Train and Runs),
Evaluation (every tab) and Grad-CAM render class, file, dataset and run names as the text they are.

In the DOM of each page: no link, image, colour, emphasis, code span, list or KaTeX element made from a name,
no Plotly link or bold text, no right-to-left override obeyed, no emoji from a shortcode — and the names
themselves are there, as literal text. Predict's CSV keeps its flag column and defuses formulas. One
screenshot per page in test-artifacts/hostile-names-*.png.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from cnndash import data
from cnndash.text import visible_controls
from tests.e2e.harness import (
    assert_no_exception,
    choose,
    selectbox_value,
    wait_for_app,
    whole_page_screenshot,
)
from tests.fixtures import HOSTILE_CLASSES, HOSTILE_DATASET, HOSTILE_FILES, HOSTILE_RUN, install_hostile

# Every element a name could have become, if it were read as Markdown, HTML, a Streamlit directive, LaTeX
# or Plotly markup; returns what it finds. The words are the names' own (":red[alarm]", "**bold**",
# "*stars*", "`code`", ":blue[f]", "$x^2$"…), never words the pages use for themselves.
FIND_MARKUP_FROM_NAMES = """
() => {
  const root = document.querySelector('[data-testid="stApp"]');
  const bad = [];
  const words = (el) => el.textContent.trim();
  for (const a of root.querySelectorAll('a')) {
    const href = a.getAttribute('href') || a.getAttribute('xlink:href') || '';
    if (href.startsWith('#') && !a.closest('svg')) continue;  // a heading's own anchor, on this page
    if (href.includes('evil') || a.closest('svg')) bad.push('link ' + href + ' ' + words(a));
  }
  for (const img of root.querySelectorAll('img')) {
    const src = img.getAttribute('src') || '';
    if (src === 'x' || src === 'y' || img.hasAttribute('onerror')) bad.push('image ' + src);
  }
  for (const el of root.querySelectorAll('.katex, .katex-display, mjx-container')) bad.push('latex ' + words(el));
  for (const el of root.querySelectorAll('[style*="color"]'))
    if (['alarm', 'run', 'f'].includes(words(el))) bad.push('colour ' + words(el));
  for (const el of root.querySelectorAll('strong, b, em, i, del, s'))
    if (['bold', 'stars', 'Long class name with'].includes(words(el))) bad.push('emphasis ' + words(el));
  for (const el of root.querySelectorAll('code')) if (words(el) === 'code') bad.push('code span');
  for (const el of root.querySelectorAll('li')) if (el.textContent.includes('bold')) bad.push('list ' + words(el));
  for (const el of root.querySelectorAll('svg tspan'))  // Plotly's own titles are bold: only a name's <b>
    if ((el.getAttribute('style') || '').includes('bold') && words(el) === 'bold') bad.push('plotly <b>');
  const text = root.innerText;
  if (text.includes('\\u202e')) bad.push('a right-to-left override is obeyed');
  if (text.includes('\\u{1F604}')) bad.push('an emoji from :smile:');
  return bad;
}
"""
# Labels cut with an ellipsis (Streamlit truncates button labels in narrow columns).
FIND_CUT_BUTTONS = """
(selector) => [...document.querySelectorAll(selector)]
  .map(b => b.querySelector('[data-testid="stMarkdownContainer"]') || b)
  .filter(label => label.scrollWidth > label.clientWidth + 1).map(label => label.textContent)
"""


@pytest.fixture(scope="module")
def hostile_run(e2e_data_dir, e2e_runs_dir, tmp_path_factory):
    """The hostile-names dataset and run in the server's folders, for this module only."""
    run = install_hostile(e2e_data_dir, e2e_runs_dir, tmp_path_factory.mktemp("hostile-e2e"))
    yield run
    shutil.rmtree(run, ignore_errors=True)
    for name in data.list_datasets(data_dir=e2e_data_dir):
        if name.startswith(HOSTILE_DATASET):
            data.delete_dataset(name, data_dir=e2e_data_dir)


def _check(page, artifacts_dir: Path, step: str, shown: list[str] = ()) -> None:
    """No markup from names on the page, the names in ``shown`` there as text, and a screenshot."""
    wait_for_app(page)
    assert_no_exception(page)
    whole_page_screenshot(page, artifacts_dir / f"hostile-names-{step}.png")
    assert page.evaluate(FIND_MARKUP_FROM_NAMES) == [], step
    text = page.locator("[data-testid='stApp']").inner_text()
    missing = [name for name in shown if visible_controls(name) not in text]
    assert not missing, (step, missing)


def _open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()
    wait_for_app(page)


def _png_files(folder: Path) -> list[str]:
    paths = []
    for k, stem in enumerate(HOSTILE_FILES[:4]):
        path = folder / f"{stem}.png"
        Image.new("RGB", (20, 20), (40 * k, 200, 90)).save(path)
        paths.append(str(path))
    return paths


def test_names_are_text_on_every_page(page, app_url, hostile_run, artifacts_dir, tmp_path):
    # Data: the class table, the gallery's captions, the delete checkbox naming the dataset.
    page.goto(f"{app_url}/data")
    wait_for_app(page, timeout=90_000)
    choose(page, "data-dataset", re.compile(rf"^{re.escape(HOSTILE_DATASET)} "))
    page.locator("[data-testid='stTable']").wait_for(timeout=60_000)
    _check(page, artifacts_dir, "1-data", HOSTILE_CLASSES)  # (the dataset's name: in the selectbox)

    # Training: the newest run's results (its name), then the Runs tab (table, curves, comparison, export).
    page.goto(f"{app_url}/training")
    wait_for_app(page, timeout=90_000)
    page.get_by_role("heading", name=re.compile(r"^Run ")).wait_for(timeout=60_000)
    # The newest run of this server (another test's may be newer): Evaluation and Grad-CAM show the hostile
    # run's name below; here no markup from any name.
    _check(page, artifacts_dir, "2-training")
    _open_tab(page, "Runs")
    page.locator(".st-key-runs-compare-chart .main-svg").first.wait_for(timeout=60_000)
    _check(page, artifacts_dir, "3-runs")

    # Evaluation, tab by tab.
    page.goto(f"{app_url}/evaluation")
    wait_for_app(page, timeout=90_000)
    if not selectbox_value(page, "eval-run").startswith(visible_controls(HOSTILE_RUN)):
        choose(page, "eval-run", re.compile(rf"^{re.escape(visible_controls(HOSTILE_RUN))}"))
    page.locator(".st-key-eval-cm-chart .heatmaplayer").wait_for(timeout=90_000)
    page.locator("[class*='st-key-eval-cell-gradcam-']").first.wait_for(timeout=60_000)
    _check(page, artifacts_dir, "4-evaluation-confusion")
    assert "predicted as" in page.locator("[data-testid='stApp']").inner_text()  # the cell's sentence
    cut = page.evaluate(FIND_CUT_BUTTONS, "[class*='st-key-eval-cell-label-'] button")
    assert cut == [], f"labels cut short: {cut}"  # issue 23: "Rela…" / "Rem…"
    _open_tab(page, "Report")
    page.locator(".st-key-eval-per-class .main-svg").first.wait_for(timeout=60_000)
    _check(page, artifacts_dir, "5-evaluation-report")
    _open_tab(page, "Top losses")
    _check(page, artifacts_dir, "6-evaluation-top-losses")
    _open_tab(page, "Predict")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(_png_files(tmp_path))
    page.locator(".st-key-eval-predictions-csv button").wait_for(timeout=60_000)  # once the table is drawn
    _check(page, artifacts_dir, "7-evaluation-predict", [f"{HOSTILE_FILES[0]}.png"])
    with page.expect_download() as download:
        page.locator(".st-key-eval-predictions-csv button").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0][0] == "path" and rows[0][-1] == "flag"  # the flag column is kept
    assert "'=HYPERLINK(1).png" in [row[0] for row in rows[1:]]  # a formula file name stays text
    _open_tab(page, "Data")
    page.locator("[class*='st-key-data-relabel-']").first.wait_for(timeout=120_000)
    _check(page, artifacts_dir, "8-evaluation-data")

    # Grad-CAM: the verdict, the captions, the probability chart.
    page.goto(f"{app_url}/gradcam")
    wait_for_app(page, timeout=90_000)
    if not selectbox_value(page, "cam-run").startswith(visible_controls(HOSTILE_RUN)):
        choose(page, "cam-run", visible_controls(HOSTILE_RUN))
    page.locator(".st-key-cam-probabilities .main-svg").first.wait_for(timeout=90_000)
    _check(page, artifacts_dir, "9-gradcam")
    text = page.locator("[data-testid='stApp']").inner_text()
    assert any(name in text for name in HOSTILE_CLASSES)  # the verdict names the predicted class
