"""A fresh server whose FIRST request is a deep link renders the real app (issue 12.8).

Streamlit serves its legacy ``pages/`` mode (file names in the sidebar, no device panel) to a deep link
that reaches a server before anything has run ``app.py``; ``ui.route_guard`` re-routes such a run. This
test therefore needs its own unwarmed server: the session's shared one has already served ``/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.harness import (
    SERVER_READY_LINE,
    SERVER_START_TIMEOUT_S,
    SERVER_STOP_TIMEOUT_S,
    assert_no_exception,
    free_port,
    new_context,
    wait_for_app,
)

# Sidebar titles of app.py's navigation; the legacy mode shows file names (training, grad_cam, …) instead.
NAV_TITLES = ["Home", "Conv calculator", "Data & augmentation", "Training", "Evaluation", "Grad-CAM"]
LEGACY_NAMES = ["conv_calculator", "data_augmentation", "grad_cam"]


@contextmanager
def fresh_server(home: Path) -> Iterator[str]:
    """A new ``streamlit run app.py`` that has served nothing yet; its URL."""
    for sub in ("data", "runs"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CNNDASH_DATA_DIR=str(home / "data"), CNNDASH_RUNS_DIR=str(home / "runs"))
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    cmd += ["--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    ready, lines = threading.Event(), []

    def copy_output() -> None:
        for line in proc.stdout:
            lines.append(line)
            if SERVER_READY_LINE in line:
                ready.set()
        ready.set()

    threading.Thread(target=copy_output, daemon=True).start()
    try:
        if not ready.wait(SERVER_START_TIMEOUT_S) or proc.poll() is not None:
            raise RuntimeError("streamlit did not start:\n" + "".join(lines))
        url = f"http://127.0.0.1:{port}"
        # The health check is not a page request: the server has still run no script.
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as resp:
            assert resp.status == 200
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        (home / "streamlit.log").write_text("".join(lines))


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("path", "title"), [("training", "Training"), ("evaluation", "Evaluation"), ("", "cnndash")]
)
def test_first_request_is_a_deep_link(browser, tmp_path, artifacts_dir, path, title):
    with fresh_server(tmp_path) as url:
        context = new_context(browser, viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{url}/{path}")
            wait_for_app(page, timeout=120_000)
            page.get_by_role("heading", name=title).first.wait_for(state="visible")
            nav = page.get_by_test_id("stSidebarNav")
            nav.get_by_role("link", name="Grad-CAM", exact=True).wait_for(state="visible")
            for name in NAV_TITLES:
                assert nav.get_by_role("link", name=name, exact=True).count() == 1, name
            for name in LEGACY_NAMES:
                assert nav.get_by_role("link", name=name, exact=True).count() == 0, name
            sidebar = page.get_by_test_id("stSidebar")
            assert "Compute device" in sidebar.inner_text()
            # Home paints before the engine is imported; the device line follows without a reload.
            sidebar.get_by_text(re.compile(r"^(CPU|CUDA|MPS) — ")).wait_for(timeout=120_000)
            assert page.url.rstrip("/").endswith(f"/{path}".rstrip("/"))
            assert_no_exception(page)
            shot = artifacts_dir / f"deeplink-first-{path or 'home'}.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
