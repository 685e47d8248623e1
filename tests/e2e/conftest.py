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
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, make_tiny_run
from tests.e2e.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SERVER_READY_LINE,
    SERVER_START_TIMEOUT_S,
    SERVER_STOP_TIMEOUT_S,
    TINY_RUN,
    free_port,
    new_context,
    wait_for_app,
)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


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
    port = free_port()
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
