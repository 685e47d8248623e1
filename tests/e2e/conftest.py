"""Browser end-to-end fixtures: a real ``streamlit run app.py`` server and Debian's chromium via Playwright.

The server is started once per session on a free local port with its own data and runs folders
(``e2e_data_dir`` / ``e2e_runs_dir``: tests may put datasets or runs there before opening a page), and is
stopped afterwards, also when tests fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

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


@pytest.fixture(scope="session")
def app_url(_server_url, browser) -> str:
    """Base URL of the running app, warmed up by one visit to the home page.

    Streamlit (streamlit/streamlit#9992) can show a "Page not found" dialog, and the bare ``pages/``
    file list in the sidebar, to the first session after start-up when it opens a deep link; one
    throw-away visit first means every test starts from the state a returning user sees.
    """
    context = browser.new_context()
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
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not become healthy:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
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
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
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
    """Wait until Streamlit has finished the script run triggered by the last interaction.

    The app root carries ``data-test-script-state`` (``running`` while the script runs, ``notRunning``
    when it is done); the short pause first lets a click's rerun request reach the server.
    """
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    page.wait_for_timeout(250)
    page.wait_for_function(
        "() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
        " return app && app.getAttribute('data-test-script-state') === 'notRunning'; }",
        timeout=timeout,
    )
    page.wait_for_timeout(200)


def assert_no_exception(page) -> None:
    boxes = page.locator("[data-testid='stException']")
    assert boxes.count() == 0, boxes.first.inner_text()
