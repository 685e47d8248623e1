"""Pick the compute device (CUDA, then Apple MPS, then CPU) and describe it for people."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from cnndash.errors import UserError
from cnndash.text import plural

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


class DeviceError(UserError):
    """The requested device does not exist on this machine."""


@dataclass(frozen=True)
class DeviceInfo:
    device: torch.device
    kind: str  # "cuda" | "mps" | "cpu"
    description: str  # e.g. "NVIDIA H100 80GB HBM3 · 79.1 GiB" or "2 threads · no GPU detected"
    threads: int = 0  # CPU threads torch uses (a CPU device), so a page can say it in its own words


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(choice: str | torch.device | None = "auto") -> torch.device:
    """Return the device for ``choice``: ``"auto"`` (CUDA → MPS → CPU) or an explicit one.

    An explicit device that is not present raises :class:`DeviceError` rather than silently falling back,
    so a user who asked for the GPU knows they are not getting it.
    """
    if isinstance(choice, torch.device):
        choice = str(choice)
    choice = (choice or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = choice.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "CUDA was requested but no CUDA GPU is visible to PyTorch; use --device auto or cpu."
        )
    if kind == "mps" and not _mps_available():
        raise DeviceError("Apple MPS was requested but is not available here; use --device auto or cpu.")
    if kind not in ("cuda", "mps", "cpu"):
        raise DeviceError(
            "Unknown device {choice}; choose one of {devices}.",
            choice=repr(choice),
            devices=", ".join(DEVICE_CHOICES),
        )
    return torch.device(choice)


def describe_device(device: torch.device | str | None = None) -> DeviceInfo:
    """Human description of ``device`` (default: the automatic choice)."""
    dev = resolve_device(device if device is not None else "auto")
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        text = f"{props.name} · {props.total_memory / 2**30:.1f} GiB"
        return DeviceInfo(dev, "cuda", text)
    if dev.type == "mps":
        return DeviceInfo(dev, "mps", "Apple GPU (MPS)")
    threads = torch.get_num_threads()
    return DeviceInfo(dev, "cpu", f"{plural(threads, 'thread')} · no GPU detected", threads)


def max_processes(choice: str | torch.device | None = "auto") -> int:
    """The most processes a data-parallel (torchrun) run on ``choice`` can use on this machine: one per CUDA
    GPU; on the CPU one per core and at least 2, so it can be tried anywhere (it is not faster there: see
    docs/distributed.md); 1 on Apple MPS (torch.distributed has no backend for it) or a missing device."""
    try:
        device = resolve_device(choice)
    except DeviceError:
        return 1
    if device.type == "cuda":
        return max(1, torch.cuda.device_count())
    if device.type == "cpu":
        return max(2, os.cpu_count() or 1)
    return 1
