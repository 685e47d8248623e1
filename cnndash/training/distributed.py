"""Data-parallel training across the processes ``torchrun`` starts: torch.distributed and DDP, nothing home-made.

``torchrun --nproc-per-node N [--nnodes M …] -m cnndash train …`` starts one process per device; each reads
its place from the environment torchrun sets (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``). :func:`session` joins the process group (``nccl`` with ``LOCAL_RANK`` → CUDA device, ``gloo``
on the CPU) and yields a :class:`Distributed`, which the trainer uses for the few things ranks must agree on:

- sums of metrics over ranks (:meth:`Distributed.sum_values`), so loss and accuracy are of the whole epoch;
- the stop flag, all-reduced before every batch on a CPU ``gloo`` group (:meth:`Distributed.any`), so a stop
  on any rank (the app's Stop, SIGTERM/SIGINT) ends every rank after the same batch;
- what only rank 0 reads from the run folder (config, ``last.pt``), handed to the others
  (:meth:`Distributed.from_rank0`), so only rank 0 needs the run folder;
- a failure report naming the rank that failed and why (:meth:`Distributed.failure_text`).

Outside torchrun (or with one process) :func:`session` yields ``None`` and training is the single-process
path, unchanged.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from cnndash.device import resolve_device
from cnndash.training.config import ConfigError

T = TypeVar("T")

TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
RESTART_ENV = "TORCHELASTIC_RESTART_COUNT"  # > 0 in a group torchrun restarted after a failure
# Ranks > 0 reseed torch's RNG (augmentation, dropout) with seed + RANK_SEED_STRIDE * rank after the model is
# built: the same initial weights and shuffling everywhere, different random augmentation per rank.
RANK_SEED_STRIDE = 1_000_003
FAILURE_KEY = "cnndash/failure/"  # + rank: a rank's own error, left in the rendezvous store for rank 0
GONE_WAIT_S = 2.0  # how long rank 0 waits for a dead peer's process to show as gone
CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S = "CNNDASH_DIST_CONNECT_TIMEOUT_S", 60.0


def restart_count() -> int:
    """How many times torchrun has restarted this worker group (0 outside torchrun)."""
    try:
        return int(os.environ.get(RESTART_ENV, "0"))
    except ValueError:
        return 0


@dataclass
class Distributed:
    """This process's place in a data-parallel run, and the collectives the trainer needs."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str  # "nccl" | "gloo"
    control: dist.ProcessGroup | None  # CPU (gloo) group for flags and objects; None = the default group
    peers: list[tuple[str, int]]  # (host, pid) of every rank, to tell which one died

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def restarted(self) -> bool:
        return restart_count() > 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world_size

    def wrap(self, model: nn.Module) -> DistributedDataParallel:
        """``model`` (already on this rank's device) in DDP: gradients averaged over ranks in backward."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (a CPU all-reduce: cheap enough for every batch)."""
        value = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.control)
        return bool(value.item())

    def sum_values(self, *values: torch.Tensor | float) -> list[float]:
        """Each of ``values`` summed over the ranks (one all-reduce, float64 on this rank's device)."""
        parts = [v.detach().double().reshape(()) if isinstance(v, torch.Tensor) else float(v) for v in values]
        total = torch.stack([torch.as_tensor(p, dtype=torch.float64, device=self.device) for p in parts])
        dist.all_reduce(total)
        return total.tolist()

    def from_rank0(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on rank 0 only, its result (or the error it raised) given to every rank."""
        payload: list = [None]
        if self.is_main:
            try:
                payload[0] = ("ok", fn())
            except Exception as exc:  # every rank raises it, so none waits for a collective that never comes
                payload[0] = ("error", exc)
        dist.broadcast_object_list(payload, src=0, group=self.control)
        kind, value = payload[0]
        if kind == "error":
            raise value
        return value

    def failure_text(self, exc: BaseException, text: str) -> str:
        """The failure as the run's status says it: which rank failed, and why.

        A rank > 0 leaves its error in the rendezvous store. Rank 0, when its own error is the lost
        connection to a peer (not a ValueError, which every rank raises alike), names the peer: the one that
        left an error, or the one whose process is gone (killed without a Python error: OOM killer, kill -9).
        """
        if not self.is_main:
            _store_set(FAILURE_KEY + str(self.rank), text)
            return f"rank {self.rank}: {text}"
        if isinstance(exc, ValueError):
            return f"rank 0: {text}"
        noted = [(r, _store_get(FAILURE_KEY + str(r))) for r in range(1, self.world_size)]
        noted = [(r, note) for r, note in noted if note]
        if noted:
            return "; ".join(f"rank {r} failed: {note}" for r, note in noted)
        gone = self._gone_peers()
        if gone:
            names = ", ".join(f"rank {r} (pid {pid} on {host})" for r, host, pid in gone)
            return (
                f"Worker {names} died without a Python error (killed by a signal: out of memory, kill -9 or a "
                f"lost node), so the group stopped; rank 0 saw: {_shorten(text)}"
            )
        return f"rank 0: {text}"

    def _gone_peers(self) -> list[tuple[int, str, int]]:
        """Ranks on this host whose process has exited (waits briefly: the socket closes before the exit)."""
        here = socket.gethostname()
        local = [
            (r, host, pid) for r, (host, pid) in enumerate(self.peers) if r != self.rank and host == here
        ]
        deadline = time.monotonic() + GONE_WAIT_S
        while True:
            gone = [peer for peer in local if _process_gone(peer[2])]
            if gone or time.monotonic() > deadline:
                return gone
            time.sleep(0.1)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie not yet reaped counts as gone). Linux /proc; False elsewhere."""
    if not Path("/proc/self").exists():
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].split()[0] in ("Z", "X")


def _store_set(key: str, value: str) -> None:
    with suppress(Exception):  # best effort: a broken store must not hide the error being reported
        dist.distributed_c10d._get_default_store().set(key, value)


def _store_get(key: str) -> str:
    try:  # check() does not wait for the key, get() would
        store = dist.distributed_c10d._get_default_store()
        return store.get(key).decode() if store.check([key]) else ""
    except Exception:
        return ""


def launched_by_torchrun() -> bool:
    """This process is one of several torchrun started (its environment names a group of 2 or more)."""
    env = os.environ
    try:
        return all(key in env for key in TORCHRUN_ENV) and int(env["WORLD_SIZE"]) >= 2
    except ValueError:
        return False


def _join(device_choice: str) -> Distributed | None:
    env = os.environ
    if not launched_by_torchrun():
        return None
    rank, local_rank, world = int(env["RANK"]), int(env["LOCAL_RANK"]), int(env["WORLD_SIZE"])
    device = resolve_device(device_choice)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(
            "Distributed training runs on CUDA (nccl) or the CPU (gloo), not {device_type}; use --device "
            "cpu.",
            device_type=device.type,
        )
    store = _attempt_store(rank, world)
    if backend == "gloo":
        # A gloo group that cannot connect its mesh fails after CONNECT_TIMEOUT instead of waiting forever,
        # so torchrun can restart it again.
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=connect_timeout())
    else:
        dist.init_process_group(backend, store=store, rank=rank, world_size=world, device_id=device)
    # nccl only moves CUDA tensors: flags and objects go through a gloo group on the CPU.
    control = dist.new_group(backend="gloo") if backend == "nccl" else None
    peers: list = [None] * world
    dist.all_gather_object(peers, (socket.gethostname(), os.getpid()), group=control)
    if backend == "gloo":  # connected: collectives get gloo's own generous default again
        dist.set_timeout(dist.default_pg_timeout)
    return Distributed(rank, local_rank, world, device, backend, control, peers)


def _attempt_store(rank: int, world: int) -> dist.Store:
    """The rendezvous store of this torchrun attempt, its keys under a prefix of their own.

    torchrun (c10d rendezvous, store sharing on by default) keeps ONE TCPStore across restarts and gives the
    workers no per-attempt prefix, so a restarted group found the dead group's addresses under the same keys
    (``default_pg/…/rank_1``) and gloo tried to connect to them: "Connection refused" until the connect
    timeout, or a hang in connectFullMesh. A prefix per ``TORCHELASTIC_RESTART_COUNT`` keeps attempts apart.
    """
    if _loopback_store_wanted():
        store = _loopback_store(rank, world)
    else:
        store, _, _ = next(dist.rendezvous("env://", rank, world, timeout=connect_timeout()))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"cnndash/attempt-{attempt}/", store)


def _loopback_store_wanted() -> bool:
    """Rank 0 hosts the store (torchrun's agent does not share its own) at a loopback address."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true":
        return False
    try:
        return ipaddress.ip_address(os.environ["MASTER_ADDR"]).is_loopback
    except (KeyError, ValueError):
        return False


def _loopback_store(rank: int, world: int) -> dist.Store:
    """The workers' TCPStore on MASTER_ADDR:MASTER_PORT, rank 0 listening on that loopback address only.

    ``env://`` would have rank 0's TCPStore listen on every interface (it binds the port, not the address),
    and its clients unpickle what they read. Rank 0 binds the socket itself and hands it to the store
    (``master_listen_fd``), so the store is reachable from this machine only."""
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    if rank != 0:
        return dist.TCPStore(host, port, world, False, timeout=connect_timeout())
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    # The store takes the listening socket over (it serves on it for the rest of the process).
    return dist.TCPStore(
        host, port, world, True, timeout=connect_timeout(), master_listen_fd=listener.detach()
    )


def connect_timeout() -> timedelta:
    """How long a gloo group may take to connect (``CNNDASH_DIST_CONNECT_TIMEOUT_S``, default 60 s)."""
    try:
        seconds = float(os.environ.get(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT_TIMEOUT_S))
    except ValueError:
        seconds = DEFAULT_CONNECT_TIMEOUT_S
    return timedelta(seconds=max(seconds, 1.0))


@contextmanager
def session(device_choice: str = "auto") -> Iterator[Distributed | None]:
    """The process group of this torchrun worker for the block (None outside torchrun or with one process)."""
    joined = _join(device_choice)
    try:
        yield joined
    finally:
        if joined is not None and dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def stop_on_signals(stop_event: threading.Event) -> Iterator[threading.Event]:
    """SIGTERM and SIGINT set ``stop_event`` for the block instead of killing the process.

    A torchrun worker gets SIGTERM when the group is asked to stop (Ctrl-C on torchrun, the app's Stop, a
    SLURM preemption) and when torchrun tears the group down after another worker failed; either way the
    next stop all-reduce ends the run cleanly (``stopped``) or fails on the dead peer (``failed``).
    """
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stop_event.set()) for sig in signals}
    try:
        yield stop_event
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
