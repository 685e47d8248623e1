"""Jobs that trust nothing read from disk (issue 22): no pid from a file is adopted or signalled, a copied
run folder cannot stop the original, malformed files never break the registry, and one rule decides what
may run together — for the app and a terminal alike."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnndash.jobs import claims
from cnndash.jobs import registry as jobs
from cnndash.jobs.registry import JobBusyError, JobRegistry, get_registry
from cnndash.paths import runs_dir
from cnndash.runs import list_runs, load_run, read_run, stop_run
from cnndash.runs.lease import LEASE_ENV
from cnndash.training.loops import TrainConfig
from tests.conftest import ROOT

SMALL = "shapes:count=120,size=32"


@pytest.fixture(autouse=True)
def _short_lease(monkeypatch):
    monkeypatch.setenv(LEASE_ENV, "0.2")  # a dead holder's claim and lease are stale after 1 s


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def sleeper() -> subprocess.Popen:
    """An unrelated process in a session (and process group) of its own, as torchrun would be."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


def test_a_pid_only_launch_file_is_never_adopted_and_its_process_never_signalled(tiny_run, monkeypatch):
    runs = runs_dir()
    bystander = sleeper()
    try:
        for name, launch, status in [
            ("pid-only", {"torchrun": {"pid": bystander.pid}}, {"status": "running", "pid": bystander.pid}),
            ("forged", {"config": {"dataset": "digits", "device": "cuda:0"}, "processes": 2,
                        "torchrun": {"pid": bystander.pid, "pid_start": None}}, {"status": "running"}),
            ("bad-device", {"config": {"dataset": "digits", "device": "cpu:x"}, "processes": 2,
                            "torchrun": {"pid": bystander.pid}}, {"status": "running", "world_size": "x"}),
        ]:  # fmt: skip
            run = Path(shutil.copytree(tiny_run, runs / name))
            (run / "launch.json").write_text(json.dumps(launch))
            (run / "status.json").write_text(json.dumps(status | {"updated": time.time()}))
        monkeypatch.setattr(jobs, "_REGISTRY", None)  # a server starting on this runs folder
        registry = get_registry()
        assert registry.jobs() == [] and registry.active() is None and registry.adopt_running() == []
        registry.stop_all(timeout=5)  # what the old code turned into SIGTERM to the recorded pid
        statuses = {run.name: run.status for run in list_runs(runs, include_broken=True)}
        assert statuses == {"pid-only": "interrupted", "forged": "interrupted", "bad-device": "interrupted"}
        with pytest.raises(ValueError, match="not training"):
            stop_run("pid-only", runs)
        time.sleep(0.3)
        assert bystander.poll() is None  # never signalled
        # A later run still starts and trains (the registry is not broken by any of it).
        job = registry.start(TrainConfig(dataset=SMALL, epochs=1, batch_size=32, tensorboard=False))
        assert job.wait(120) and job.snapshot().status == "finished", job.snapshot().error
    finally:
        bystander.kill()
        bystander.wait(10)


def test_stopping_a_copied_run_folder_never_stops_the_original(tmp_path):
    registry = JobRegistry()
    job = registry.start(TrainConfig(dataset=SMALL, epochs=500, batch_size=8, tensorboard=False),
                         run_name="original", runs_dir=tmp_path)  # fmt: skip
    try:
        assert wait_until(lambda: job.snapshot().batch_points), job.snapshot().error
        shutil.copytree(tmp_path / "original", tmp_path / "copy", ignore=shutil.ignore_patterns(".*"))
        try:  # the copy holds the original's lease file (fresh for a moment, then stale)
            stop_run("copy", tmp_path)
        except ValueError as exc:
            assert "not training" in str(exc)
        assert not JobRegistry().adopt_running(tmp_path / "copy")
        steps = job.snapshot().batch_points[-1]["step"]
        assert wait_until(lambda: job.snapshot().batch_points[-1]["step"] > steps + 5, 30)
        assert job.alive and load_run(tmp_path / "original").status == "running"
        assert wait_until(lambda: load_run(tmp_path / "copy").status == "interrupted", 10)
        stop_run("original", tmp_path)  # a request the trainer reads, as `runs stop` sends it
        assert job.wait(30) and job.snapshot().status == "stopped"
    finally:
        job.stop()
        job.wait(30)
    assert load_run(tmp_path / "original").status == "stopped" and load_run(tmp_path / "original").resumable


def cli_train(out: Path, epochs: int = 200) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cnndash", "train", "--dataset", "digits", "--model", "lenet", "--epochs",
         str(epochs), "--device", "cpu", "--image-size", "12", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_one_rule_for_the_app_and_a_terminal(tmp_path):
    runs = runs_dir()
    terminal = cli_train(runs / "from-terminal")
    try:
        assert wait_until(lambda: read_run(runs / "from-terminal").status == "running", 120)
        registry = JobRegistry()
        with pytest.raises(JobBusyError, match="'from-terminal' is already training on the CPU"):
            registry.start(TrainConfig(dataset=SMALL, epochs=1, device="cpu"))
        with pytest.raises(JobBusyError, match="'from-terminal' is training"):
            claims.claim(claims.LABEL_CHECK, "cpu", "some-run", holder="test")
        [followed] = registry.adopt_running()  # the sidebar and Stop see it
        assert followed.run_name == "from-terminal" and followed.pid is None
        followed.stop()  # a request, as for any run this server did not start
        out, err = terminal.communicate(timeout=60)
        assert terminal.returncode == 0, err
        assert json.loads(out)["status"] == "stopped" and load_run(runs / "from-terminal").resumable
    finally:
        if terminal.poll() is None:
            terminal.kill()
            terminal.wait(10)
    # The other way round: a label check held by this process refuses a terminal's training.
    check = claims.claim(claims.LABEL_CHECK, "cpu", "checked-run", holder="test")
    try:
        refused = cli_train(runs / "refused", epochs=1)
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 2 and "label check of run 'checked-run'" in err
        assert len(err.strip().splitlines()) == 1
    finally:
        check.release()


def test_no_code_finds_jobs_through_sys_modules():
    for folder in ("cnndash", "ui", "pages"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "sys.modules" not in path.read_text(), path
