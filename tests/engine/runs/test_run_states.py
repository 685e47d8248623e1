"""Run states against real processes: a killed trainer, a live process named in the files, a restarted
server (issue 12, class 4; issue 22).

A run is training exactly while its lease is renewed (cnndash.runs.lease); no pid in any file counts.
Anything else claiming "running" is interrupted and resumable. The lease is made short here, so a dead
trainer's run reads interrupted within about a second.
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
from cnndash.runs.lease import LEASE_ENV, Lease
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


@pytest.fixture(autouse=True)
def _short_lease(monkeypatch):
    monkeypatch.setenv(LEASE_ENV, "0.2")  # stale after 1 s (the subprocesses inherit it)


def test_a_killed_training_process_leaves_an_interrupted_resumable_run(tmp_path):
    run_dir = tmp_path / "runs" / "killed"
    proc = start_training(run_dir)
    try:
        # Running, from another process's point of view, once the first epoch's checkpoint exists.
        assert wait_for(lambda: (run_dir / "last.pt").is_file()), "the first epoch never finished"
        assert load_run(run_dir).status == "running"
        with pytest.raises(ValueError, match="still training"):
            delete_run("killed", tmp_path / "runs")
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to write a final status
        proc.wait(30)
    assert wait_for(lambda: load_run(run_dir).status == "interrupted", 10)  # once the lease is stale
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


def test_a_live_process_named_in_the_files_is_not_the_owner_only_a_fresh_lease_is(tiny_run, tmp_path):
    import shutil

    run_dir = tmp_path / "reused"
    shutil.copytree(tiny_run, run_dir)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # What the old code trusted: a live pid (this very process, or another one) in status.json.
        for pid in (other.pid, os.getpid(), 1):
            record = {"status": "running", "message": "", "updated": time.time(), "pid": pid}
            (run_dir / "status.json").write_text(json.dumps(record))
            assert load_run(run_dir).status == "interrupted"
        # A lease renewed by another process makes it running; that process killed, interrupted once stale.
        renewer = subprocess.Popen(
            [sys.executable, "-c", "import sys, time; from cnndash.runs.lease import Lease; "
             "Lease(sys.argv[1], 'other-owner').acquire(); time.sleep(60)", str(run_dir)],
            cwd=ROOT,
        )  # fmt: skip
        try:
            assert wait_for(lambda: load_run(run_dir).status == "running", 30)
            with pytest.raises(ValueError, match="still training"):
                delete_run("reused", tmp_path)
        finally:
            renewer.kill()
            renewer.wait(10)
        assert wait_for(lambda: load_run(run_dir).status == "interrupted", 10)
        # A lease from the future (another machine's clock, or a forged file) is not trusted either.
        lease = json.loads((run_dir / "lease.json").read_text()) | {"renewed": time.time() + 3600}
        (run_dir / "lease.json").write_text(json.dumps(lease))
        assert load_run(run_dir).status == "interrupted"
        assert other.poll() is None  # never signalled
    finally:
        other.kill()
        other.wait(10)
    delete_run("reused", tmp_path)
    assert not run_dir.exists()


def test_a_lease_held_by_another_live_trainer_refuses_a_second_trainer(tiny_run, tmp_path):
    import shutil

    run_dir = tmp_path / "busy"
    shutil.copytree(tiny_run, run_dir)
    first = Lease(run_dir, "first")
    first.acquire()
    try:
        with pytest.raises(ValueError, match="already being trained"):
            Lease(run_dir, "second").acquire()
        with pytest.raises(ValueError, match="being trained right now"):
            train(TrainConfig(dataset="unused"), run_dir, resume=True)  # before anything in it changes
    finally:
        first.release()
    assert not (run_dir / "lease.json").exists()
