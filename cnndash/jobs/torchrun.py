"""A training job followed through its run folder: a ``torchrun`` subprocess the app launched, or a run
another process trains (adopted after a server restart, or started by another server or a terminal).

:meth:`ProcessJob.start` runs torchrun on this machine only, bound to the loopback interface
(:func:`torchrun_command`): the rendezvous is a file store in the run folder (mode 0600, no listening
socket), the workers' store is hosted by rank 0 on 127.0.0.1 (:mod:`cnndash.training.distributed`) and
gloo/NCCL use the loopback interface. Nothing of it listens on another interface, so nobody else on the
network can reach the stores whose contents the agent and the workers unpickle. Its output goes to
``train.log``; rank 0 writes the run folder as in any run, and a monitor thread reads it (status, metrics,
the bounded batch series, summary) into the same :class:`JobSnapshot` a run in a thread has.

Stop is a request (:func:`cnndash.runs.lease.request_stop`) addressed to the job's id, which rank 0 holds as
its lease: every rank stops after the same batch, rank 0 saves ``last.pt`` and the run ends ``stopped``,
resumable. Only a process this server started is ever signalled, through the :class:`subprocess.Popen` it
holds (SIGKILL when torchrun has not ended :data:`KILL_AFTER_SECONDS` after a stop); an adopted job is
stopped by request only. No pid is read from disk.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

import cnndash
from cnndash.jobs.claims import Claim, JobRow
from cnndash.jobs.snapshot import BackgroundJob, JobSnapshot
from cnndash.paths import data_dir
from cnndash.runs import (
    metric_rows,
    read_batch_series,
    read_process_log,
    read_status,
    read_summary,
    write_json_atomic,
)
from cnndash.runs.layout import BATCH_LOG, launch_file, process_log_file, rendezvous_file
from cnndash.runs.lease import holding, request_stop
from cnndash.training.loops import TrainConfig

JOB_ENV = "CNNDASH_JOB_ID"  # the job id a torchrun run launched by the app trains under (its lease owner)
POLL_SECONDS = 0.5  # how often the monitor reads the run folder
# After a Stop, torchrun has this long to end before its whole tree is killed (it SIGKILLs workers that
# outlive its own 30 s grace period, so this only catches a torchrun that hangs).
KILL_AFTER_SECONDS = 60
ENDED = ("finished", "stopped", "failed")
LOOPBACK = "127.0.0.1"


def loopback_interface() -> str:
    """The loopback interface's name (``lo`` on Linux, ``lo0`` on macOS)."""
    with suppress(OSError, AttributeError):
        for _, name in socket.if_nameindex():
            if name.startswith("lo"):
                return name
    return "lo"


def torchrun_command(
    processes: int, run_dir: Path, *, resume: bool, rendezvous: Path, job_id: str
) -> list[str]:
    """The command a job runs: torchrun on this machine, its rendezvous a file store (no socket), the workers'
    addresses on the loopback interface; ``cnndash train`` in each process."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(processes),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", str(rendezvous), "--rdzv-conf", "store_type=file",
        "--rdzv-id", job_id, "--local-addr", LOOPBACK,
        "-m", "cnndash", "train", "--config", str(launch_file(run_dir)), "--out", str(run_dir),
    ]  # fmt: skip
    return [*command, "--resume"] if resume else command


def loopback_env() -> dict[str, str]:
    """Environment that keeps every socket of the group on the loopback interface: rank 0 hosts the workers'
    store (not torchrun's agent, which would listen on every interface) and gloo/NCCL bind to loopback."""
    interface = loopback_interface()
    return {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", "GLOO_SOCKET_IFNAME": interface,
            "NCCL_SOCKET_IFNAME": interface}  # fmt: skip


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


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; [] elsewhere): torchrun's workers live in sessions of their
    own, so killing torchrun's group would not reach them. Only ever called for a child this server holds."""
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


def _int(value: object, default: int = 0) -> int:
    """A count from a file another process wrote: anything malformed is ``default``, never an exception."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


@dataclass
class ProcessJob(BackgroundJob):
    """A training run followed through its run folder: ``processes`` torchrun workers this server launched
    (``_proc``), or a run another process trains (``followed``)."""

    config: TrainConfig
    processes: int
    claim: Claim | None = field(default=None, repr=False)
    followed: bool = False  # adopted: trained by another process, stopped by request only
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _launched: float = 0.0
    _held: ExitStack = field(default_factory=ExitStack, repr=False)

    @property
    def job_id(self) -> str:
        return self.claim.id if self.claim is not None else ""

    @property
    def pid(self) -> int | None:
        """torchrun's pid (its process group's id) when this server launched it; None for an adopted run."""
        return self._proc.pid if self._proc is not None else None

    def _running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.claim is not None and self.claim.alive()

    @classmethod
    def follow(cls, row: JobRow, data_folder: Path) -> ProcessJob | None:
        """A job that follows the training ``row`` of another process through its run folder (None when the
        row cannot be followed: no run folder, or a config that does not validate)."""
        settings = row.config_dict()
        if not row.run_dir or settings is None:
            return None
        try:
            config = TrainConfig.from_dict(settings)
            config.validate()
        except ValueError:
            return None
        run_dir = Path(row.run_dir)
        snap = JobSnapshot(run_name=row.name, run_dir=run_dir, device=row.device, epochs=config.epochs,
                           world_size=max(row.processes, 1))  # fmt: skip
        claim = Claim(row.id, data_folder, row.interval)
        job = cls(config=config, processes=max(row.processes, 1), claim=claim, followed=True, _snap=snap,
                  _launched=row.started)  # fmt: skip
        job._start_monitor()
        return job

    def start(self, *, resume: bool) -> None:
        """Launch torchrun; the server holds the run's lease (under the job's id) until torchrun ends."""
        self._held.enter_context(holding(self.run_dir, self.job_id))
        rendezvous = rendezvous_file(self.run_dir, self.job_id)
        self._held.callback(rendezvous.unlink, missing_ok=True)
        command = torchrun_command(self.processes, self.run_dir, resume=resume, rendezvous=rendezvous,
                                   job_id=self.job_id)  # fmt: skip
        # What the workers read (--config) and what a person reads: the settings and the command, no pid.
        write_json_atomic(
            launch_file(self.run_dir),
            {"config": self.config.to_dict(), "processes": self.processes, "command": command},
        )
        package_root = str(Path(cnndash.__file__).resolve().parents[1])
        env = {
            **os.environ,
            **loopback_env(),
            JOB_ENV: self.job_id,
            "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p),
            "CNNDASH_DATA_DIR": str(data_dir().resolve()),  # the workers find uploads wherever they run
            "OMP_NUM_THREADS": str(max(1, self.config.threads)),
            "PYTHONUNBUFFERED": "1",
        }
        self._launched = time.time()
        with open(process_log_file(self.run_dir), "ab") as log:
            self._proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        self._start_monitor()

    # ---- the monitor: the run folder -> the snapshot
    def _start_monitor(self) -> None:
        self._thread = threading.Thread(
            target=self._monitor, name=f"cnndash-follow-{self.run_name}", daemon=True
        )
        self._thread.start()

    def _monitor(self) -> None:
        stop_sent: float | None = None
        try:
            while self._running():
                self._refresh()
                with self._lock:
                    if self._snap.stop_requested and stop_sent is None:
                        stop_sent = time.monotonic()
                if stop_sent is not None and time.monotonic() - stop_sent > KILL_AFTER_SECONDS:
                    self.kill()
                time.sleep(POLL_SECONDS)
            self._refresh()
            self._finish(self._proc.returncode if self._proc is not None else None)
        finally:
            self._held.close()  # the lease and the rendezvous file of a run this server launched
            if self.claim is not None and not self.followed:
                self.claim.release()

    def _status(self) -> dict:
        """``status.json`` if this job's run wrote it (a resumed run's old one does not count)."""
        status = read_status(self.run_dir)
        updated = status.get("updated")
        if not isinstance(updated, int | float) or isinstance(updated, bool):
            return {}
        return status if updated >= self._launched else {}

    def _refresh(self) -> None:
        status = self._status()
        if not status:
            return
        epochs = _int(status.get("epochs"), self.config.epochs) or self.config.epochs
        start_epoch = _int(status.get("start_epoch"))
        epoch_rows = metric_rows(self.run_dir)
        done = epoch_rows[-1]["epoch"] if epoch_rows else start_epoch
        changes: dict = {
            "world_size": _int(status.get("world_size"), self.processes) or self.processes,
            "device_description": str(status.get("device_description", "")),
            "image_size": _int(status.get("image_size")),
            "in_channels": _int(status.get("in_channels")),
            "epochs": epochs, "epoch_rows": epoch_rows, "completed_epochs": done,
            "batches": _int(status.get("steps_per_epoch")),
        }  # fmt: skip
        rows = read_batch_series(self.run_dir / BATCH_LOG).rows  # bounded, thinned, newest row last
        if rows:
            last = rows[-1]
            changes |= {
                "epoch": last["epoch"], "batch": last["batch"], "batches": last["batches"], "lr": last["lr"],
                "images_per_sec": last["images_per_sec"], "batch_points": tuple(rows),
            }  # fmt: skip
        else:
            changes["epoch"] = done + 1
        with self._lock:
            snap = self._snap
            if snap.status == "starting" and status.get("status") == "running":
                changes |= {"status": "running", "started": time.time(),
                            "start_fraction": start_epoch / max(epochs, 1)}  # fmt: skip
            self._snap = replace(snap, **changes)

    def _finish(self, returncode: int | None) -> None:
        status = self._status()
        state = status.get("status")
        summary = read_summary(self.run_dir) if state in ("finished", "stopped") else None
        with self._lock:
            stop_requested = self._snap.stop_requested
        if state in ENDED:
            message = str(status.get("message", ""))
            changes = {"status": state, "error": message if state != "finished" else ""}
        elif stop_requested:
            changes = {"status": "stopped", "error": "Stopped before the first batch; nothing was saved."}
        elif self.followed:
            changes = {"status": "failed", "error": "The process training this run ended without a status."}
        else:
            text = read_process_log(self.run_dir, limit=200_000)
            changes = {"status": "failed", "error": failure_from_log(text, returncode)}
        self._update(**changes, summary=summary, finished=time.time())

    # ---- stopping (the reader side is BackgroundJob's, as for a job in a thread)
    def stop(self) -> None:
        """Ask the run to stop after its current batch: a request its rank 0 reads, never a signal."""
        self._update(stop_requested=True)
        if self.job_id and self.alive:
            request_stop(self.run_dir, self.job_id)

    def kill(self) -> None:
        """SIGKILL torchrun's group and every worker below it — only a torchrun this server launched, through
        the handle it holds (a last resort: nothing is saved). An adopted run is never signalled."""
        proc = self._proc
        if proc is None or proc.poll() is not None:  # reaped: its pid may belong to someone else now
            return
        workers = descendants(proc.pid)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in workers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_text(self, limit: int = 20_000) -> str:
        """The end of torchrun's and the ranks' output (``train.log``)."""
        return read_process_log(self.run_dir, limit)
