"""Background jobs: a run trains in a thread (or under torchrun in a subprocess), reports progress, stops within
a batch, one per device."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cnndash.device import max_processes
from cnndash.jobs.registry import JobBusyError, JobRegistry, ProcessJob, get_registry
from cnndash.jobs.torchrun import descendants, failure_from_log
from cnndash.runs import load_run, read_json
from cnndash.training.loops import ConfigError, TrainConfig

TORCHRUN_TIMEOUT_S = 240  # far above the ~30 s a 2-process run takes on 2 busy cores

SMALL = "shapes:count=120,size=32"


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_registry_is_process_wide():
    assert get_registry() is get_registry()


def test_job_trains_in_the_background_and_reports_progress(tmp_path):
    registry = JobRegistry()
    job = registry.start(
        TrainConfig(dataset=SMALL, epochs=2, batch_size=16), run_name="bg", runs_dir=tmp_path
    )
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert [row["epoch"] for row in snap.epoch_rows] == [1, 2]
    assert len(snap.batch_points) == 2 * snap.batches
    assert snap.fraction == 1.0 and job.fraction_done() == 1.0
    assert snap.summary["epochs"] == 2
    assert "finished after 2/2 epochs" in job.status_text()
    assert registry.active() is None and registry.latest() is job and registry.get("bg") is job
    assert load_run(tmp_path / "bg").status == "finished"
    assert job.config.threads == max(1, (os.cpu_count() or 2) - 1)  # a core left for the web server


def test_one_run_per_device_and_stop_within_a_batch(tmp_path):
    registry = JobRegistry()
    long = registry.start(
        TrainConfig(dataset=SMALL, epochs=200, batch_size=8), run_name="long", runs_dir=tmp_path
    )
    try:
        assert wait_until(lambda: long.snapshot().batch_points), long.snapshot().error
        assert registry.active() is long
        assert 0 < long.fraction_done() < 1
        assert "epoch 1/200" in long.status_text() or "epoch 2/200" in long.status_text()
        with pytest.raises(JobBusyError, match="already training"):
            registry.start(TrainConfig(dataset=SMALL, epochs=1), run_name="second", runs_dir=tmp_path)
        steps_at_stop = long.snapshot().batch_points[-1]["step"]
        long.stop()
        assert long.wait(30)
    finally:
        long.stop()
        long.wait(30)
    snap = long.snapshot()
    assert snap.status == "stopped"
    assert snap.batch_points[-1]["step"] <= steps_at_stop + 1  # at most the batch in flight
    run = load_run(tmp_path / "long")
    assert run.status == "stopped"
    assert run.load_model("last") is not None
    # The device is free again.
    again = registry.start(TrainConfig(dataset=SMALL, epochs=1), run_name="after", runs_dir=tmp_path)
    assert again.wait(60) and again.snapshot().status == "finished"


def test_failures_are_reported_on_the_job(tmp_path):
    registry = JobRegistry()
    diverging = registry.start(
        TrainConfig(dataset=SMALL, epochs=2, optimizer="sgd", lr=10.0, weight_decay=1.0, schedule="constant"),
        run_name="nan",
        runs_dir=tmp_path,
    )
    assert diverging.wait(60)
    assert diverging.snapshot().status == "failed"
    assert "lower it" in diverging.status_text()

    missing = registry.start(
        TrainConfig(dataset="no-such-data", epochs=1), run_name="nodata", runs_dir=tmp_path
    )
    assert missing.wait(60)
    assert "no-such-data" in missing.snapshot().error

    with pytest.raises(ConfigError, match=r"(?i)epochs"):
        registry.start(TrainConfig(dataset=SMALL, epochs=0), runs_dir=tmp_path)


# --------------------------------------------------------------------------------------------------
# Jobs in a torchrun subprocess: 2 real CPU processes (gloo) on digits/LeNet


def ddp_config(epochs: int) -> TrainConfig:
    return TrainConfig(dataset="digits", model="lenet", epochs=epochs, device="cpu", batch_size=16)


@pytest.fixture
def torchrun_registry():
    """A registry whose torchrun jobs are all gone afterwards, also when a test fails or hangs."""
    registry = JobRegistry()
    yield registry
    for job in registry.jobs():
        if isinstance(job, ProcessJob):
            job.kill()
            job.wait(30)
            assert not job.alive


def worker_pids(job: ProcessJob) -> dict[int, int]:
    """rank -> pid of the job's torchrun workers (read from their environment in /proc)."""
    found = {}
    for pid in descendants(job.pid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ranks = [e for e in environ if e.startswith(b"RANK=")]
        if ranks and any(e.startswith(b"TORCHELASTIC_RUN_ID=") for e in environ):
            found[int(ranks[0].split(b"=")[1])] = pid
    return found


LOOPBACK = ("127.0.0.1", "::1")


def listeners(pids: set[int]) -> list[tuple[str, int]]:
    """(address, pid) of every listening TCP socket of ``pids`` (Linux /proc/net/tcp and tcp6)."""
    inodes = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes[target[8:-1]] = pid
    found = []
    for table, width in (("tcp", 4), ("tcp6", 16)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # state LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, width, 4))  # little-endian words
                found.append((str(ipaddress.ip_address(words)), inodes[fields[9]]))
    return found


def test_a_torchrun_job_trains_two_processes_and_reports_like_a_thread_job(tmp_path, torchrun_registry):
    registry = torchrun_registry
    # val_fraction has no command-line option: it reaches the workers through launch.json (--config).
    job = registry.start(
        replace(ddp_config(2), val_fraction=0.25), run_name="ddp", runs_dir=tmp_path, processes=2
    )
    assert isinstance(job, ProcessJob) and job.processes == 2 and registry.active() is job
    assert job.wait(TORCHRUN_TIMEOUT_S), job.log_text()
    snap = job.snapshot()
    assert snap.status == "finished", (snap.error, job.log_text()[-3000:])
    assert snap.world_size == 2 and snap.summary["world_size"] == 2 and snap.summary["epochs"] == 2
    assert [row["epoch"] for row in snap.epoch_rows] == [1, 2]
    assert snap.batches == 85  # digits' 1348 training images (75 %) in global batches of 16
    assert [p["step"] for p in snap.batch_points] == list(range(1, 171))  # every batch, from batches.csv
    assert snap.fraction == 1.0 and "finished after 2/2 epochs" in job.status_text()
    assert registry.active() is None and registry.latest() is job and registry.get("ddp") is job
    run = load_run(tmp_path / "ddp")
    assert run.status == "finished" and run.summary["world_size"] == 2
    assert run.config == {**job.config.to_dict(), "image_size": 28}  # the form's settings, all of them
    assert run.batch_log() == list(snap.batch_points)
    assert (tmp_path / "ddp" / "train.log").is_file() and "epoch 2:" in job.log_text()
    launch = read_json(tmp_path / "ddp" / "launch.json")
    assert launch["processes"] == 2 and launch["config"]["epochs"] == 2
    assert worker_pids(job) == {}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_stop_reaches_every_rank_also_from_a_restarted_server_and_the_run_is_resumable(
    tmp_path, torchrun_registry
):
    registry = torchrun_registry
    job = registry.start(ddp_config(200), run_name="long", runs_dir=tmp_path, processes=2)
    assert wait_until(lambda: job.snapshot().batch_points, TORCHRUN_TIMEOUT_S), job.log_text()
    assert sorted(worker_pids(job)) == [0, 1]
    # torchrun started by the app listens on loopback only (its agent not at all: a file rendezvous).
    listening = listeners({job.pid, *descendants(job.pid)})
    assert listening and all(addr in LOOPBACK for addr, _ in listening), listening
    snap = job.snapshot()
    assert snap.status == "running" and "epoch 1/200" in snap.status_text() and 0 < snap.fraction < 1
    with pytest.raises(JobBusyError, match="already training on the CPU"):
        registry.start(ddp_config(1), run_name="second", runs_dir=tmp_path)
    # The server restarts while the run trains (torchrun lives in its own session): the new server process
    # adopts the run from the jobs table, follows it and stops it — by request: it holds no handle, and no
    # pid is read from disk (an adopted job has none).
    restarted = JobRegistry()
    adopted = restarted.adopt_running(tmp_path)
    assert [a.run_name for a in adopted] == ["long"] and restarted.active() is adopted[0]
    assert adopted[0].job_id == job.job_id and adopted[0].pid is None
    assert restarted.adopt_running(tmp_path) == []  # adopted once
    assert wait_until(
        lambda: adopted[0].snapshot().status == "running" and adopted[0].snapshot().batch_points
    )
    asked = time.monotonic()
    adopted[0].stop()
    assert adopted[0].wait(90) and job.wait(90)
    assert time.monotonic() - asked < 30  # one batch, a checkpoint and the processes' exit
    assert adopted[0].snapshot().status == "stopped" and restarted.active() is None
    assert JobRegistry().adopt_running(tmp_path) == []  # an ended run is not adopted
    snap = job.snapshot()
    assert snap.status == "stopped", (snap.error, job.log_text()[-3000:])
    assert "Stopped by the user" in snap.error and snap.summary["world_size"] == 2
    assert worker_pids(job) == {} and registry.active() is None
    run = load_run(tmp_path / "long")
    assert run.status == "stopped" and run.resumable
    # Every rank stopped after the same batch, the last one logged (the log is flushed at the end).
    last = run.batch_log()[-1]
    assert f"epoch {last['epoch']}, batch {last['batch']} of 90" in snap.error
    assert read_json(tmp_path / "long" / "status.json")["status"] == "stopped"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_a_dead_worker_fails_the_job_naming_its_rank(tmp_path, torchrun_registry):
    job = torchrun_registry.start(ddp_config(200), run_name="dies", runs_dir=tmp_path, processes=2)
    assert wait_until(lambda: job.snapshot().batch_points, TORCHRUN_TIMEOUT_S), job.log_text()
    os.kill(worker_pids(job)[1], signal.SIGKILL)
    assert job.wait(TORCHRUN_TIMEOUT_S)
    snap = job.snapshot()
    assert snap.status == "failed" and "rank 1" in snap.error, (snap.error, job.log_text()[-3000:])
    run = load_run(tmp_path / "dies")
    assert run.status == "failed" and "rank 1" in run.message
    assert (
        run.process_log() == job.log_text() and "torch.distributed" in run.process_log()
    )  # shown by the page
    assert worker_pids(job) == {}


def test_processes_are_checked_before_anything_starts(tmp_path):
    registry = JobRegistry()
    with pytest.raises(ConfigError, match="Processes must be a whole number from 1 to"):
        registry.start(ddp_config(1), runs_dir=tmp_path, processes=0)
    with pytest.raises(ConfigError, match="Processes must be"):
        registry.start(ddp_config(1), runs_dir=tmp_path, processes=max_processes("cpu") + 1)
    with pytest.raises(ConfigError, match="Batch size 1 is smaller than the 2 processes"):
        registry.start(replace(ddp_config(1), batch_size=1), runs_dir=tmp_path, processes=2)
    assert registry.jobs() == [] and list(tmp_path.iterdir()) == []


def test_a_failure_is_read_from_torchrun_output_when_rank_0_could_not_write_it():
    assert (
        failure_from_log("noise\nerror: Unknown dataset 'x'; use digits\n", 1)
        == "Unknown dataset 'x'; use digits"
    )
    torchrun_report = """
Root Cause (first observed failure):
[0]:
  time      : 2026-12-02_20:00:00
  host      : box
  rank      : 0 (local_rank: 0)
  exitcode  : -9 (pid: 4242)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 4242
"""
    assert failure_from_log(torchrun_report, 1) == "rank 0 failed: Signal 9 (SIGKILL) received by PID 4242"
    assert failure_from_log("", 3) == "torchrun exited with status 3: no output"
