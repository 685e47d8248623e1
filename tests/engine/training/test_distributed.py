"""Data-parallel training under torchrun, on the CPU with gloo and 2 real processes.

Each test starts ``python -m torch.distributed.run --standalone --nproc-per-node 2 -m cnndash train …`` in a
subprocess from the repository root, as a user would, and compares with the single-process trainer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from cnndash.runs import read_json
from cnndash.training.batches import MemoryData, batch_indices, global_batch_sizes, shard_batches
from cnndash.training.loops import TrainConfig, train
from tests.conftest import ROOT
from tests.engine.training.test_tblog import read_events

TORCHRUN_TIMEOUT_S = 240  # far above the ~30 s a run takes on 2 busy cores: a hang fails, it does not stall


def torchrun_command(out: Path, *train_args: str, torchrun_args: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *torchrun_args,
        "-m", "cnndash", "train", "--dataset", "digits", "--model", "lenet", "--device", "cpu", "--out", str(out),
        *train_args,
    ]  # fmt: skip


def worker_env() -> dict:
    # One thread per worker: two workers on two cores (torchrun only sets this when it is unset).
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


_AGENTS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_torchrun_left_behind():
    """A failed or hung test must not leave a torchrun group running for the tests after it."""
    _AGENTS.clear()
    yield
    for agent in _AGENTS:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(30)


def torchrun(out: Path, *train_args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        torchrun_command(out, *train_args), cwd=ROOT, env=worker_env(), capture_output=True, text=True,
        timeout=TORCHRUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


# --------------------------------------------------------------------------------------------------
# Sharding (no processes needed)


def test_every_rank_takes_its_contiguous_share_of_the_same_global_batches():
    batches = batch_indices(103, 10, shuffle=True, seed=5, min_last=4)
    assert [len(b) for b in batches] == global_batch_sizes(103, 10, world=4)
    assert len(batches[-1]) == 13  # a last batch of 3 < 4 processes is folded into the one before
    shares = [shard_batches(batches, (rank, 4)) for rank in range(4)]
    for i, batch in enumerate(batches):
        assert torch.equal(torch.cat([shares[rank][i] for rank in range(4)]), batch)  # same order, no overlap
        assert max(len(s[i]) for s in shares) - min(len(s[i]) for s in shares) <= 1
    x, y = torch.arange(7).view(7, 1, 1, 1).to(torch.uint8), torch.arange(7)
    val = [MemoryData(x, y).batches(3, shuffle=False, seed=0, shard=(rank, 2)) for rank in range(2)]
    labels = sorted(int(v) for batches in val for _, yb in batches for v in yb)
    assert labels == list(range(7))  # validation: every image once over the ranks (empty shares skipped)


# --------------------------------------------------------------------------------------------------
# Runs under torchrun


def test_two_processes_with_half_batches_give_the_weights_of_one_process(tmp_path):
    # Constant LR SGD, no augmentation, no BatchNorm (LeNet): DDP's averaged gradient of each rank's share,
    # weighted by the share, is the gradient of the global batch, so one epoch must give the same weights.
    # Batch 33 does not divide by 2 (17 + 16, last batch 10 + 9): uneven shares are exact too.
    settings = dict(
        epochs=1, batch_size=33, optimizer="sgd", lr=0.05, schedule="constant", label_smoothing=0.0
    )
    train(
        TrainConfig(dataset="digits", model="lenet", device="cpu", tensorboard=False, **settings),
        tmp_path / "one",
    )
    torchrun(
        tmp_path / "two", "--epochs", "1", "--batch-size", "33", "--optimizer", "sgd", "--lr", "0.05",
        "--schedule", "constant", "--label-smoothing", "0", "--no-tensorboard",
    )  # fmt: skip
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys()  # the unwrapped model's names: loads without DDP
    for name in one:
        assert torch.allclose(one[name], two[name], rtol=0, atol=1e-5), (
            name,
            (one[name] - two[name]).abs().max(),
        )
    m1, m2 = pd.read_csv(tmp_path / "one" / "metrics.csv"), pd.read_csv(tmp_path / "two" / "metrics.csv")
    for column in ("train_loss", "train_acc", "val_loss", "val_acc"):  # of the whole epoch, not one shard
        assert m2[column].iloc[0] == pytest.approx(m1[column].iloc[0], abs=1e-4), column


def test_a_two_process_run_writes_one_run_folder_and_reaches_the_single_process_accuracy(tmp_path):
    single = train(TrainConfig(dataset="digits", model="lenet", epochs=4, device="cpu"), tmp_path / "single")
    result = torchrun(tmp_path / "runs" / "R", "--epochs", "4")
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["R"]
    run = tmp_path / "runs" / "R"
    summary = read_json(run / "summary.json")
    assert summary["world_size"] == 2 and summary["status"] == "finished" and summary["epochs"] == 4
    assert json.loads(result.stdout)["world_size"] == 2  # rank 0 alone prints the summary
    assert read_json(run / "status.json")["status"] == "finished"
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2, 3, 4]
    # The same global batches in the same order and the same averaged gradient: the runs differ only by
    # rounding (and by augmentation's randomness, none here). 3 points is ~10 of digits' 359 validation images.
    assert abs(summary["val_accuracy"] - single["val_accuracy"]) <= 0.03, (summary, single)
    assert summary["val_accuracy"] > 0.85
    hparams = read_events(run).PluginTagToContent("hparams")
    assert b"world_size" in hparams["_hparams_/session_start_info"]


def test_a_batch_smaller_than_the_processes_is_refused(tmp_path):
    result = subprocess.run(
        torchrun_command(tmp_path / "r", "--epochs", "1", "--batch-size", "1"), cwd=ROOT, env=worker_env(),
        capture_output=True, text=True, timeout=TORCHRUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Batch size 1 is smaller than the 2 processes" in result.stderr


def _worker_pid(agent: subprocess.Popen, rank: int) -> int:
    """The pid of the worker of ``rank`` that torchrun (``agent``) started."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == agent.pid and f"RANK={rank}".encode() in environ:
            return int(proc.name)
    raise AssertionError(f"no worker of rank {rank} under torchrun {agent.pid}")


def _kill_rank1_mid_epoch_2(out: Path, *torchrun_args: str) -> subprocess.Popen:
    """Start a 3-epoch run, SIGKILL rank 1 just after epoch 1 is saved (in epoch 2), return torchrun."""
    agent = subprocess.Popen(
        torchrun_command(out, "--epochs", "3", "--batch-size", "16", torchrun_args=torchrun_args),
        cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _AGENTS.append(agent)
    deadline = time.monotonic() + TORCHRUN_TIMEOUT_S
    metrics = out / "metrics.csv"
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2):
        assert agent.poll() is None and time.monotonic() < deadline, "the run ended before epoch 1 was saved"
        time.sleep(0.05)
    os.kill(_worker_pid(agent, 1), signal.SIGKILL)
    return agent


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_a_killed_worker_fails_the_run_naming_its_rank_and_a_resume_finishes_it(tmp_path):
    run = tmp_path / "run"
    agent = _kill_rank1_mid_epoch_2(run)
    _, stderr = agent.communicate(timeout=TORCHRUN_TIMEOUT_S)
    assert agent.returncode != 0
    status = read_json(run / "status.json")
    assert status["status"] == "failed", (status, stderr[-3000:])
    assert "rank 1" in status["message"] and "died" in status["message"], status["message"]
    assert read_json(run / "summary.json") is None
    torchrun(run, "--epochs", "3", "--resume")  # all ranks resume from rank 0's last.pt
    assert read_json(run / "summary.json")["epochs"] == 3
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2, 3]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_torchrun_max_restarts_resumes_from_the_last_checkpoint_and_finishes(tmp_path):
    run = tmp_path / "run"
    # A restarted group reads its peers' addresses under keys of its own attempt (distributed._attempt_store):
    # before that it found the dead group's addresses in torchrun's shared store and could not connect.
    agent = _kill_rank1_mid_epoch_2(run, "--max-restarts", "2")
    _, stderr = agent.communicate(timeout=TORCHRUN_TIMEOUT_S)
    assert agent.returncode == 0, stderr[-3000:]
    summary = read_json(run / "summary.json")
    assert summary["status"] == "finished" and summary["epochs"] == 3 and summary["world_size"] == 2
    assert pd.read_csv(run / "metrics.csv")["epoch"].tolist() == [1, 2, 3]  # epoch 2 redone once, not twice
    assert read_json(run / "status.json")["status"] == "finished"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds torchrun's workers through /proc")
def test_a_stop_on_one_worker_stops_every_rank_after_the_same_batch(tmp_path):
    # SIGTERM to rank 1 alone (what the app's Stop or a preemption sends): the stop flag is all-reduced before
    # every batch, so rank 0 stops too, saves last.pt and reports "stopped"; a resume finishes the run.
    run = tmp_path / "run"
    agent = subprocess.Popen(
        torchrun_command(run, "--epochs", "3", "--batch-size", "16", "--no-tensorboard"),
        cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _AGENTS.append(agent)
    deadline = time.monotonic() + TORCHRUN_TIMEOUT_S
    while (read_json(run / "status.json") or {}).get("status") != "running":
        assert agent.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # into the first epoch
    os.kill(_worker_pid(agent, 1), signal.SIGTERM)
    _, stderr = agent.communicate(timeout=TORCHRUN_TIMEOUT_S)
    assert agent.returncode == 0, stderr[-3000:]
    summary = read_json(run / "summary.json")
    assert summary["status"] == "stopped" and "resume" in summary["message"], summary
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    torchrun(run, "--epochs", "3", "--resume")
    assert read_json(run / "summary.json")["status"] == "finished"
