"""Browser journey: a data-parallel run from the Training page. Set Processes to 2 (two CPU processes under
torchrun, launched by the server as a subprocess), press Train, watch the live charts and the sidebar follow
the run, press Stop, and find the run stopped, with world size 2 in its run folder.

The run is long (100 epochs) and stopped by the test, so the journey does not depend on how fast the
machine trains. Whatever happens, no torchrun process of the server outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    assert_no_exception,
    set_number,
    stop_training_and_remove_new_runs,
    wait_for_app,
)

BATCH_CHART = ".st-key-live-batch-chart .js-plotly-plot"
POINTS_JS = f"() => {{ const el = document.querySelector('{BATCH_CHART}'); return el && el.data ? el.data[1].x.length : 0; }}"


def torchrun_processes(runs_dir: Path) -> list[int]:
    """Pids of the torchrun agents and workers the server started for runs in ``runs_dir``."""
    marker = f"CNNDASH_RUNS_DIR={runs_dir}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        torchrun = b"torch.distributed.run" in cmdline or any(
            e.startswith(b"TORCHELASTIC_RUN_ID=") for e in environ
        )
        if marker in environ and torchrun and b"streamlit" not in cmdline:
            found.append(int(proc.name))
    return found


@pytest.fixture
def ddp_runs(browser, app_url, e2e_runs_dir) -> Iterator[Path]:
    """The server's runs folder. Afterwards: a run still training is stopped through a page, whatever
    torchrun left (a failed test) is killed, and the runs the test added are deleted."""
    before = {p.name for p in e2e_runs_dir.iterdir()}
    try:
        yield e2e_runs_dir
    finally:
        try:
            stop_training_and_remove_new_runs(browser, app_url, e2e_runs_dir, before)
        finally:
            for pid in torchrun_processes(e2e_runs_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(
    not Path("/proc/self/environ").exists(), reason="finds the torchrun processes through /proc"
)
def test_two_process_run_from_the_training_page_live_and_stopped(page, app_url, ddp_runs, artifacts_dir):
    page.goto(f"{app_url}/training")
    wait_for_app(page)
    assert_no_exception(page)
    set_number(page, "train-epochs", 100)
    page.get_by_text("More settings").click()
    set_number(page, "train-processes", 2)
    page.get_by_text(re.compile(r"World size 2: 2 processes under torchrun")).wait_for(timeout=10_000)

    page.locator(".st-key-train-start button").click()
    live_heading = page.get_by_role("heading", name=re.compile(r"^Training lenet-digits-"))
    live_heading.wait_for(timeout=30_000)
    run_name = re.search(r"lenet-digits-[\w-]+", live_heading.inner_text()).group(0)

    # Live: the per-batch chart grows from the run folder rank 0 writes; the sidebar shows the run.
    page.wait_for_function(f"({POINTS_JS})() > 0", timeout=120_000)
    first = page.evaluate(POINTS_JS)
    page.wait_for_function(f"({POINTS_JS})() > {first}", timeout=30_000)
    assert len(torchrun_processes(ddp_runs)) == 3  # torchrun and its 2 workers
    page.get_by_text(re.compile(r"× 2 processes \(torchrun\)")).wait_for(timeout=10_000)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Active training run").wait_for(timeout=10_000)
    assert run_name in sidebar.inner_text()
    assert page.locator(".st-key-train-start button").is_disabled()
    assert_no_exception(page)
    page.screenshot(path=str(artifacts_dir / "ddp-live.png"), full_page=True)

    page.locator(".st-key-train-stop button").click()
    page.get_by_role("heading", name=f"Run {run_name}").wait_for(timeout=60_000)
    wait_for_app(page)
    page.get_by_text("Stopped by the user").wait_for(timeout=10_000)
    assert page.locator("[data-testid='stMetric']").filter(has_text="CPU × 2").count() == 1
    assert page.locator(".st-key-final-batch-chart .js-plotly-plot").count() == 1
    assert not page.locator(".st-key-train-start button").is_disabled()
    assert_no_exception(page)
    page.screenshot(path=str(artifacts_dir / "ddp-stopped.png"), full_page=True)

    run = ddp_runs / run_name
    summary = json.loads((run / "summary.json").read_text())
    status = json.loads((run / "status.json").read_text())
    assert summary["status"] == "stopped" and summary["world_size"] == 2
    assert status["status"] == "stopped" and status["world_size"] == 2
    deadline = time.monotonic() + 30
    while torchrun_processes(ddp_runs) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert torchrun_processes(ddp_runs) == []  # Stop ended torchrun and both workers
