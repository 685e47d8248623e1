"""Browser end-to-end fixtures: a real ``streamlit run app.py`` server and Debian's chromium via Playwright.

The server is started once per session on a free local port with its own data and runs folders
(``e2e_data_dir`` / ``e2e_runs_dir``: tests may put datasets or runs there before opening a page), and is
stopped afterwards, also when tests fail. Nothing here sleeps for a fixed time: the server is ready when
it says so on its output, and :func:`wait_for_app` waits for the script run that answers the last
interaction (see :data:`RUN_TRACKER`). Files and runs a test adds are removed by fixtures.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_tiny_run

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


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="session")
def e2e_data_dir(e2e_home) -> Path:
    path = e2e_home / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def e2e_runs_dir(e2e_home) -> Path:
    path = e2e_home / "runs"
    path.mkdir(exist_ok=True)
    return path


TINY_RUN = "tiny"


@pytest.fixture(scope="session")
def e2e_tiny_run(e2e_runs_dir) -> Iterator[Path]:
    """The finished LeNet run ``tiny`` in the server's runs folder (Evaluation and Grad-CAM open it),
    trained once per session and removed at its end."""
    run_dir = make_tiny_run(e2e_runs_dir, TINY_RUN)
    yield run_dir
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def app_url(_server_url, browser) -> str:
    """Base URL of the running app, warmed up by one visit to the home page.

    Streamlit (streamlit/streamlit#9992) can show a "Page not found" dialog, and the bare ``pages/``
    file list in the sidebar, to the first session after start-up when it opens a deep link; one
    throw-away visit first means every test starts from the state a returning user sees.
    """
    context = new_context(browser)
    warm = context.new_page()
    warm.goto(_server_url)
    wait_for_app(warm)
    context.close()
    return _server_url


@pytest.fixture(scope="session")
def _server_url(e2e_data_dir, e2e_runs_dir, e2e_home) -> Iterator[str]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        CNNDASH_DATA_DIR=str(e2e_data_dir),
        CNNDASH_RUNS_DIR=str(e2e_runs_dir),
        PYTHONUNBUFFERED="1",
    )
    log_path = e2e_home / "streamlit.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in the finally below
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    ready = threading.Event()

    def copy_output() -> None:
        """Copy the server's output into the log (the pipe must never fill up) and signal readiness; at
        the end of the output (the server exited) signal too, so the wait below does not hang."""
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if SERVER_READY_LINE in line:
                ready.set()
        ready.set()

    copier = threading.Thread(target=copy_output, name="streamlit-log", daemon=True)
    copier.start()
    url = f"http://127.0.0.1:{port}"
    try:
        if not ready.wait(SERVER_START_TIMEOUT_S):
            raise RuntimeError(
                f"streamlit did not start within {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text()}"
            )
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()}")
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as resp:
            assert resp.status == 200, f"streamlit is not healthy:\n{log_path.read_text()}"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        copier.join(timeout=SERVER_STOP_TIMEOUT_S)
        log.close()
        # Keep the server log with the other artifacts for debugging failed runs.
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        shutil.copy(log_path, artifacts / "streamlit-e2e.log")


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, artifacts_dir):
    context = new_context(browser, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        page.screenshot(path=str(artifacts_dir / f"FAILED-{request.node.name}.png"), full_page=True)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


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
