"""Browser-test helpers shared by the e2e tests, the e2e fixtures (conftest.py) and the first-paint benchmark:
where chromium is, how the server says it is ready, the run tracker that tells when Streamlit has answered an
interaction, and the small actions every journey repeats (choose an option, type a number, open a run).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = os.environ.get("CNNDASH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Seconds for `streamlit run` to import the app and start serving (a cold start imports torch).
SERVER_START_TIMEOUT_S = 90
# Seconds to wait for the server to exit after SIGTERM before it is killed.
SERVER_STOP_TIMEOUT_S = 15
# What Streamlit prints once it serves the app (streamlit/web/bootstrap.py, _print_url).
SERVER_READY_LINE = "You can now view your Streamlit app"

# Runs in every page before Streamlit's own scripts (``add_init_script``) and records, with one counter
# for exact ordering, when the browser last asked the server for a script run and when the server last
# reported a run as finished. Both are read off the websocket, whose messages are protobufs:
# - a BackMsg is a oneof, so its first byte is the tag of its one field: 0x5A is field 11 (rerun_script,
#   length-delimited: 11 << 3 | 2); 0x82 0x01 is field 16 (file_urls_request), the start of an upload,
#   which ends in a rerun;
# - a ForwardMsg with field 6 (script_finished) ends a run, unless its status is 2
#   (FINISHED_EARLY_FOR_RERUN: another run follows).
# The wire, not the app root's data-test-script-state, because React may batch a fast run's
# "running" and "notRunning" into one render, and then the attribute never changes.
RUN_TRACKER = """
(() => {
  const runs = window.__cnndashRuns = {tick: 0, requested: 0, finished: 0};
  const EARLY_FOR_RERUN = 2;
  const bytesOf = (data) => data instanceof ArrayBuffer ? new Uint8Array(data)
    : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
  const finishStatus = (bytes) => {  // the script_finished value of a ForwardMsg, or -1 if it has none
    let i = 0;
    const varint = () => { let v = 0, m = 1, b; do { b = bytes[i++]; v += (b & 127) * m; m *= 128; } while (b & 128); return v; };
    while (i < bytes.length) {
      const key = varint(), field = Math.floor(key / 8), wire = key % 8;
      if (wire === 0) { const v = varint(); if (field === 6) return v; }
      else if (wire === 2) { const length = varint(); i += length; }
      else if (wire === 1) i += 8;
      else if (wire === 5) i += 4;
      else return -1;
    }
    return -1;
  };
  const onMessage = (event) => {
    const bytes = bytesOf(event.data);
    const status = bytes ? finishStatus(bytes) : -1;
    if (status >= 0 && status !== EARLY_FOR_RERUN) runs.finished = ++runs.tick;
  };
  const watched = new WeakSet();
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (!watched.has(this)) { watched.add(this); this.addEventListener('message', onMessage); }
    const bytes = bytesOf(data);
    if (bytes && (bytes[0] === 0x5A || (bytes[0] === 0x82 && bytes[1] === 0x01))) runs.requested = ++runs.tick;
    return send.call(this, data);
  };
})();
"""


TINY_RUN = "tiny"


def new_context(browser, **options):
    """A browser context whose pages carry :data:`RUN_TRACKER` (needed by :func:`wait_for_app`)."""
    context = browser.new_context(**options)
    context.add_init_script(script=RUN_TRACKER)
    return context


def stop_training_and_remove_new_runs(browser, app_url: str, runs_dir: Path, before: set[str]) -> None:
    """Teardown for tests that start runs: stop a run still training (through a page of its own, so the
    test's page stays as it was for the failure screenshot), then delete every run folder not in
    ``before``, so the other browser tests find the runs folder as they expect it."""
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{app_url}/training")
        wait_for_app(page, timeout=90_000)
        stop = page.locator(".st-key-train-stop button")
        if stop.count() and stop.is_visible() and stop.is_enabled():
            stop.click()
            page.locator(".st-key-train-start button:enabled").wait_for(timeout=60_000)
    finally:
        context.close()
    for path in runs_dir.iterdir():
        if path.name not in before:
            shutil.rmtree(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the script run that answers the last interaction.

    Done means: the server has reported a run finished since the browser last asked for one
    (:data:`RUN_TRACKER`; the attribute alone is not enough: the server may start the run requested by a
    click hundreds of milliseconds later, and until then the root still says ``notRunning`` from the
    previous run), the app root says ``notRunning``, and no element is still shown stale.
    An interaction whose request leaves the browser later (a debounced widget) must wait for its effect.
    """
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_function(
        """() => {
          const app = document.querySelector('[data-testid="stApp"]');
          const runs = window.__cnndashRuns;
          return app && app.getAttribute('data-test-script-state') === 'notRunning'
            && (!runs || runs.finished > runs.requested)
            && !document.querySelector('[data-stale="true"]');
        }""",
        timeout=timeout,
    )


def assert_no_exception(page) -> None:
    boxes = page.locator("[data-testid='stException']")
    assert boxes.count() == 0, boxes.first.inner_text()


def set_number(page, key: str, value: int) -> None:
    """Type ``value`` into the number input with key ``key`` and wait for the rerun it causes."""
    box = page.locator(f".st-key-{key} input")
    box.wait_for(timeout=90_000)  # the first page load imports torch in the server
    box.fill(str(value))
    box.press("Enter")
    wait_for_app(page)


def selectbox_value(page, key: str) -> str:
    """The shown value of a selectbox (Streamlit renders it as a combobox input)."""
    return page.locator(f".st-key-{key} input[role='combobox']").input_value()


def choose(page, key: str, option: str | re.Pattern) -> None:
    """Pick ``option`` in a selectbox; retried because a rerun that redraws the box closes its list."""
    item = page.get_by_role("option", name=option, exact=isinstance(option, str))
    for _ in range(3):
        page.locator(f".st-key-{key} button[aria-label='Open']").click()
        try:
            item.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeoutError:
            continue
        item.click()
        wait_for_app(page)
        return
    raise AssertionError(f"option {option!r} of {key!r} never appeared")


def whole_page_screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main section, so the window is made as tall as it."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), 8000)})
    try:  # widgets newly in view are drawn as skeletons first
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000
        )
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


def open_url(page, url: str) -> None:
    """Go to ``url``; close the "Page not found" dialog Streamlit may show a fresh session's deep link."""
    page.goto(url)
    wait_for_app(page, timeout=90_000)
    dialog = page.get_by_role("dialog")
    if dialog.count() and dialog.first.is_visible():
        page.keyboard.press("Escape")
        dialog.first.wait_for(state="hidden")
    wait_for_app(page)


def go_to(page, link: str, heading: str) -> None:
    """Switch pages through the sidebar, as a person does, and wait for the page's heading."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=link, exact=True).click()
    wait_for_app(page, timeout=90_000)
    page.get_by_role("heading", name=heading).first.wait_for(state="visible")
    assert_no_exception(page)


def selectbox_options(page, key: str) -> list[str]:
    """The options a selectbox lists (opened, read, closed); retried as :func:`choose` is, because a click
    right after another list closed may not open this one."""
    for _ in range(3):
        page.locator(f".st-key-{key} button[aria-label='Open']").click()
        try:
            page.get_by_role("option").first.wait_for(state="visible", timeout=5_000)
        except PlaywrightTimeoutError:
            continue
        names = [option.inner_text() for option in page.get_by_role("option").all()]
        page.keyboard.press("Escape")
        page.get_by_role("option").first.wait_for(state="hidden")
        return names
    raise AssertionError(f"the options of {key!r} never appeared")


def open_run_in_evaluation(page, app_url: str) -> None:
    page.goto(f"{app_url}/evaluation")
    wait_for_app(page)
    page.wait_for_selector(".st-key-eval-run input[role='combobox']", timeout=60_000)
    if not selectbox_value(page, "eval-run").startswith(TINY_RUN + " "):
        # Other browser tests may have trained newer runs: pick ours explicitly.
        choose(page, "eval-run", re.compile(rf"^{TINY_RUN} "))
        page.wait_for_function(
            "name => document.querySelector('.st-key-eval-run input').value.startsWith(name + ' ')",
            arg=TINY_RUN,
        )
    page.wait_for_selector(".st-key-eval-cm-chart .heatmaplayer", timeout=60_000)
    # The cell gallery comes after the heatmap: once it is there, the cell selectors are drawn.
    page.wait_for_selector("[class*='st-key-eval-cell-gradcam-']", state="attached", timeout=60_000)
    assert_no_exception(page)
