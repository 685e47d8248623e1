"""A training job in a ``torchrun`` subprocess: one data-parallel run over N processes, started from the app.

:meth:`ProcessJob.start` runs ``python -m torch.distributed.run --standalone --nproc-per-node N -m cnndash
train --config launch.json … --out RUN_DIR`` in a session of its own, its output in ``RUN_DIR/train.log``.
Rank 0 writes the run folder as in any run; a monitor thread reads it (``status.json``, ``metrics.csv``,
``batches.csv``, ``summary.json``) into the same :class:`JobSnapshot` a run in a thread has, so the sidebar
and the live charts cannot tell the two apart.

Stop sends SIGTERM to torchrun's process group. torchrun forwards it to every worker (each runs in a session
of its own); a worker's handler only sets the stop flag, which is all-reduced before every batch, so all
ranks stop after the same batch, rank 0 saves ``last.pt`` and the run ends ``stopped``, resumable.

torchrun runs in a session of its own, so it outlives a server that stops. ``launch.json`` records which
process it is (pid, start time, boot id): a restarted server adopts the run with :meth:`ProcessJob.adopt`
and follows and stops it as if it had started it.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import cnndash
from cnndash.device import resolve_device
from cnndash.jobs.snapshot import MAX_BATCH_POINTS, BackgroundJob, JobSnapshot
from cnndash.paths import data_dir
from cnndash.runs import BATCH_LOG, read_batch_log, read_json, write_json_atomic
from cnndash.runs.files import STATUS_FILE, owner_alive, owner_record, process_start
from cnndash.runs.store import read_process_log
from cnndash.runs.writer import PROCESS_LOG
from cnndash.training.loops import TrainConfig

LAUNCH_FILE = "launch.json"  # the TrainConfig and the command the job ran (the CLI reads its config)
LOG_FILE = PROCESS_LOG  # torchrun's and every rank's stdout and stderr
POLL_SECONDS = 0.5  # how often the monitor reads the run folder
# After a Stop, torchrun has this long to end before its whole tree is killed (it SIGKILLs workers that
# outlive its own 30 s grace period, so this only catches a torchrun that hangs).
KILL_AFTER_SECONDS = 60
ENDED = ("finished", "stopped", "failed")


def torchrun_command(processes: int, run_dir: Path, *, resume: bool) -> list[str]:
    """The command a job runs: torchrun on this machine (``--standalone``), ``cnndash train`` in each process."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
        "-m", "cnndash", "train", "--config", str(run_dir / LAUNCH_FILE), "--out", str(run_dir),
    ]  # fmt: skip
    return [*command, "--resume"] if resume else command


def failure_from_log(text: str, returncode: int | None) -> str:
    """Why a torchrun job failed when rank 0 could not write it into ``status.json``: the CLI's one-line
    error, or torchrun's record of the first failed worker (its rank and how it ended)."""
    lines = [line.strip() for line in text.splitlines()]
    errors = [line for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1].removeprefix("error: ")
    root = next((k for k, line in enumerate(lines) if line.startswith("Root Cause")), None)
    if root is not None:
        block = dict(
            (key.strip(), value.strip())
            for key, _, value in (line.partition(":") for line in lines[root + 1 : root + 12])
            if value
        )
        if "rank" in block:
            rank = block["rank"].split(" ")[0]
            why = block.get("traceback") or f"exit code {block.get('exitcode', '?')}"
            return f"rank {rank} failed: {why}"
    last = next((line for line in reversed(lines) if line), "no output")
    return f"torchrun exited with status {returncode}: {last[:300]}"


def _metrics_rows(path: Path) -> tuple[dict, ...]:
    try:
        with open(path, newline="") as handle:
            return tuple(
                {k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                for row in csv.DictReader(handle)
            )
    except (OSError, ValueError, TypeError):
        return ()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; [] elsewhere): torchrun's workers live in sessions of their
    own, so killing torchrun's group would not reach them."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        with suppress(OSError, ValueError, IndexError):
            stat = (proc / "stat").read_text()
            children.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(int(proc.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


@dataclass
class ProcessJob(BackgroundJob):
    """One training run of ``processes`` torchrun workers, followed through its run folder."""

    config: TrainConfig
    processes: int
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _launched: float = 0.0
    _owner: dict = field(default_factory=dict)  # torchrun's pid, start time and boot id (launch.json)

    @property
    def pid(self) -> int | None:
        """torchrun's pid, which is also its process group's id."""
        if self._proc is not None:
            return self._proc.pid
        return self._owner.get("pid") if self._owner else None

    def _torchrun_running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return bool(self._owner) and owner_alive(self._owner, self.run_dir)

    @classmethod
    def adopt(cls, run_dir: Path) -> ProcessJob | None:
        """The torchrun run in ``run_dir`` that another server process started and that is still training,
        as a job of this process (its monitor reads the run folder; Stop signals torchrun); None otherwise."""
        launch = read_json(Path(run_dir) / LAUNCH_FILE)
        if not isinstance(launch, dict) or not isinstance(launch.get("torchrun"), dict):
            return None
        owner = launch["torchrun"]
        if not owner_alive(owner, run_dir):
            return None
        try:
            config = TrainConfig.from_dict(launch["config"])
            processes = int(launch["processes"])
            device = resolve_device(config.device).type
        except (KeyError, TypeError, ValueError):
            return None
        snap = JobSnapshot(
            run_name=Path(run_dir).name, run_dir=Path(run_dir), device=device, epochs=config.epochs,
            world_size=processes,
        )  # fmt: skip
        job = cls(config=config, processes=processes, _snap=snap, _owner=owner)
        job._start_monitor()
        return job

    def start(self, *, resume: bool) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        command = torchrun_command(self.processes, self.run_dir, resume=resume)
        write_json_atomic(
            self.run_dir / LAUNCH_FILE,
            {"config": self.config.to_dict(), "processes": self.processes, "command": command},
        )
        package_root = str(Path(cnndash.__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p),
            "CNNDASH_DATA_DIR": str(data_dir().resolve()),  # the workers find uploads wherever they run
            "OMP_NUM_THREADS": str(max(1, self.config.threads)),
            "PYTHONUNBUFFERED": "1",
        }
        self._launched = time.time()
        with open(self.run_dir / LOG_FILE, "ab") as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        # Who torchrun is, so that a restarted server can adopt the run (launch.json is replaced atomically;
        # the workers read only its config).
        self._owner = {**owner_record(), "pid": self._proc.pid, "pid_start": process_start(self._proc.pid)}
        write_json_atomic(
            self.run_dir / LAUNCH_FILE,
            {
                "config": self.config.to_dict(),
                "processes": self.processes,
                "command": command,
                "torchrun": self._owner,
            },
        )
        self._start_monitor()

    # ---- the monitor: the run folder -> the snapshot
    def _start_monitor(self) -> None:
        self._thread = threading.Thread(
            target=self._monitor, name=f"cnndash-torchrun-{self.run_name}", daemon=True
        )
        self._thread.start()

    def _monitor(self) -> None:
        stop_sent: float | None = None
        while self._torchrun_running():
            self._refresh()
            with self._lock:
                if self._snap.stop_requested and stop_sent is None:
                    stop_sent = time.monotonic()
            if stop_sent is not None and time.monotonic() - stop_sent > KILL_AFTER_SECONDS:
                self.kill()
            time.sleep(POLL_SECONDS)
        self._refresh()
        self._finish(self._proc.returncode if self._proc is not None else None)

    def _status(self) -> dict:
        """``status.json`` if this job's run wrote it (a resumed run's old one does not count)."""
        status = read_json(self.run_dir / STATUS_FILE)
        if not isinstance(status, dict) or not isinstance(status.get("updated"), int | float):
            return {}
        return status if status["updated"] >= self._launched else {}

    def _refresh(self) -> None:
        status = self._status()
        if not status:
            return
        changes: dict = {
            "world_size": int(status.get("world_size") or self.processes),
            "device_description": str(status.get("device_description", "")),
            "image_size": int(status.get("image_size") or 0),
            "in_channels": int(status.get("in_channels") or 0),
        }
        epochs = int(status.get("epochs") or self.config.epochs)
        start_epoch = int(status.get("start_epoch") or 0)
        rows = read_batch_log(self.run_dir / BATCH_LOG)
        epoch_rows = _metrics_rows(self.run_dir / "metrics.csv")
        done = epoch_rows[-1]["epoch"] if epoch_rows else start_epoch
        changes |= {"epochs": epochs, "epoch_rows": epoch_rows, "completed_epochs": done}
        changes["batches"] = int(status.get("steps_per_epoch") or 0)
        if rows:
            last = rows[-1]
            step = max(1, len(rows) // MAX_BATCH_POINTS + 1)
            changes |= {
                "epoch": last["epoch"], "batch": last["batch"], "batches": last["batches"], "lr": last["lr"],
                "images_per_sec": last["images_per_sec"], "batch_points": tuple(rows[::-1][::step][::-1]),
            }  # fmt: skip
        else:
            changes["epoch"] = done + 1
        with self._lock:
            snap = self._snap
            if snap.status == "starting" and status.get("status") == "running":
                changes |= {
                    "status": "running",
                    "started": time.time(),
                    "start_fraction": start_epoch / max(epochs, 1),
                }
            self._snap = replace(snap, **changes)

    def _finish(self, returncode: int | None) -> None:
        status = self._status()
        state = status.get("status")
        summary = read_json(self.run_dir / "summary.json") if state in ("finished", "stopped") else None
        with self._lock:
            stop_requested = self._snap.stop_requested
        if state in ENDED:
            message = str(status.get("message", ""))
            changes = {"status": state, "error": message if state != "finished" else ""}
        elif stop_requested:
            changes = {"status": "stopped", "error": "Stopped before the first batch; nothing was saved."}
        else:
            text = read_process_log(self.run_dir, limit=200_000)
            changes = {"status": "failed", "error": failure_from_log(text, returncode)}
        self._update(**changes, summary=summary if isinstance(summary, dict) else None, finished=time.time())

    # ---- stopping (the reader side is BackgroundJob's, as for a job in a thread)
    def stop(self) -> None:
        """SIGTERM to torchrun, which passes it to every rank: the run stops after the next batch."""
        self._update(stop_requested=True)
        pid = self.pid
        if pid is not None and self._torchrun_running():
            with suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL torchrun's group and every worker below it (a last resort: nothing is saved)."""
        pid = self.pid
        if pid is None or not self._torchrun_running():
            return
        workers = descendants(pid)
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_text(self, limit: int = 20_000) -> str:
        """The end of torchrun's and the ranks' output (``train.log``)."""
        return read_process_log(self.run_dir, limit)
