"""Run states against real processes: a killed trainer, a reused pid, a restarted server (issue 12, class 4).

A run's owner is its process — pid, the process's start time and the boot id — and, inside that process,
the RunWriter.training() registration. Anything else claiming "running" is interrupted and resumable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from cnndash.runs import delete_run, list_runs, load_run
from cnndash.runs.files import owner_record
from cnndash.training.events import BatchEvent, StartEvent
from cnndash.training.loops import TrainConfig, train
from tests.conftest import ROOT

LONG_RUN = ["--dataset", "shapes:count=600,size=32", "--model", "vgg", "--epochs", "200", "--device", "cpu"]


def start_training(run_dir) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnndash", "train", *LONG_RUN, "--out", str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_killed_training_process_leaves_an_interrupted_resumable_run(tmp_path):
    run_dir = tmp_path / "runs" / "killed"
    proc = start_training(run_dir)
    try:
        # Running, from another process's point of view, once the first epoch's checkpoint exists.
        assert wait_for(lambda: (run_dir / "last.pt").is_file()), "the first epoch never finished"
        assert load_run(run_dir).status == "running"
        with pytest.raises(ValueError, match="still training"):
            delete_run(run_dir)
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to write a final status
        proc.wait(30)
    run = load_run(run_dir)
    assert run.status == "interrupted" and run.resumable and "resume" in run.message
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "running"  # the file still says so: liveness decides, not the file
    [listed] = list_runs(tmp_path / "runs")
    assert listed.status == "interrupted"
    # Resuming it works: it continues after the saved epoch (stopped again at its first batch here).
    stop, started = threading.Event(), []

    def on_event(event):
        if isinstance(event, StartEvent):
            started.append(event.start_epoch)
        if isinstance(event, BatchEvent):
            stop.set()

    summary = train(TrainConfig(dataset="unused"), run_dir, resume=True, on_event=on_event, stop_event=stop)
    assert started[0] >= 1 and summary["status"] == "stopped"
    assert load_run(run_dir).status == "stopped"


def test_a_reused_pid_or_another_boot_is_not_the_owner(tiny_run, tmp_path):
    import shutil

    run_dir = tmp_path / "reused"
    shutil.copytree(tiny_run, run_dir)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alive = owner_record() | {"pid": other.pid}
        record = {"status": "running", "message": "", "updated": time.time()}
        # The live process with the recorded start time owns it …
        from cnndash.runs.files import process_start

        assert wait_for(lambda: process_start(other.pid) is not None, 10)
        (run_dir / "status.json").write_text(
            json.dumps(record | alive | {"pid_start": process_start(other.pid)})
        )
        assert load_run(run_dir).status == "running"
        # … a process that merely has the same pid (started at another time) does not,
        (run_dir / "status.json").write_text(json.dumps(record | alive | {"pid_start": 1}))
        assert load_run(run_dir).status == "interrupted"
        # nor does anything written before the machine restarted,
        stale = record | alive | {"pid_start": process_start(other.pid), "boot_id": "another-boot"}
        (run_dir / "status.json").write_text(json.dumps(stale))
        assert load_run(run_dir).status == "interrupted"
        # nor pid 1 of a restarted container (the server itself after a restart, not training this run).
        (run_dir / "status.json").write_text(json.dumps(record | {"pid": os.getpid()}))
        assert load_run(run_dir).status == "interrupted"
    finally:
        other.kill()
        other.wait(10)
    delete_run(run_dir)
    assert not run_dir.exists()
